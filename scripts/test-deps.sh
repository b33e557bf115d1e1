#!/usr/bin/env bash
# System packages the test suite needs beyond PostGIS: headless Chromium for the map tests,
# GDAL's tools for the OGC API tests, nginx for the many-hosts test.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Chromium for the browser tests, a CJK font so screenshots show the Chinese labels, and npm
# to fetch Leaflet for the locally served map pages.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# GDAL's command-line tools: the OGC API tests read /ogc with ogrinfo/ogr2ogr (OAPIF driver).
command -v ogr2ogr >/dev/null 2>&1 || missing+=(gdal-bin)
# QGIS (headless, for the system python3): tests/ogc/test_qgis.py loads an OAPIF layer.
/usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || missing+=(python3-qgis)
# nginx (run by the tests as a plain process, never the system service): two API hosts behind
# one proxy, tests/api/test_many_hosts.py.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the browser tests" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
    || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends "${missing[@]}"; } \
    || echo "could not install ${missing[*]}; the browser tests will fail in CI" >&2
fi
# Leaflet and its plugins, fetched once from the npm registry for the locally served map pages.
.venv/bin/gis map assets >/dev/null || echo "could not fetch the map assets (npm)" >&2
