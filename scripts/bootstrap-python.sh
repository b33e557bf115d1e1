#!/usr/bin/env bash
# Create .venv with Python >= 3.11, installing Debian's venv support first if it is missing.
set -euo pipefail
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "python3 is missing; installing it" >&2
  $SUDO apt-get update && $SUDO apt-get install -y python3 python3-venv
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "gis needs Python 3.11 or newer; found $("$PY" --version). Install python3.11 and run" \
       "'make PYTHON=python3.11 demo'." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    echo "installing python3-venv" >&2
    $SUDO apt-get update && $SUDO apt-get install -y python3-venv
    rm -rf .venv && "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,dask]'
