#!/usr/bin/env bash
# System packages the test suite needs beyond PostGIS: headless Chromium for the map tests.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser tests" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
    || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends chromium; } \
    || echo "could not install chromium; the browser tests will fail in CI" >&2
fi
