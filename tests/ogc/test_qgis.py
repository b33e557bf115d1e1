"""QGIS itself (Debian python3-qgis, headless) reads the grids over OAPIF: the database's count,
with the grids where they are (no swapped axes). QGIS runs under the
system python3 in a subprocess (the venv cannot import qgis); skipped locally without it, a
failure in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.grids import Grid
from gis.settings import Settings
from tests.conftest import IN_CI, use_session
from tests.ogc.conftest import live_server

PROBE = Path(__file__).with_name("qgis_probe.py")
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin")


def _has_qgis() -> bool:
    if SYSTEM_PYTHON is None:
        return False
    found = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return found.returncode == 0


@pytest.fixture
def server(settings: Settings, session: Session, demo: object) -> Iterator[str]:
    """The API on a free loopback port, answering from the test's session."""
    if not _has_qgis():
        if IN_CI:
            pytest.fail("CI needs python3-qgis (scripts/test-deps.sh installs it)", pytrace=False)
        pytest.skip("python3-qgis is not installed (scripts/test-deps.sh installs it)")
    with live_server(use_session(create_app(settings), session)) as url:
        yield url + "/ogc"


def test_qgis_loads_the_grids_with_the_database_count_and_unswapped_axes(
    server: str, session: Session
) -> None:
    # QGIS 3.22's OAPIF provider predates Part 2: it always reads CRS84 and has no crs or
    # bbox-crs parameter, so EPSG:4490 cannot be asked of it (its axis order is tested in
    # tests/ogc/test_crs.py). 3.22 names CRS84 by its EPSG twin, keeping x = longitude.
    srsname, authid = "OGC:CRS84", "EPSG:4326"
    current = session.scalars(sa.select(Grid).where(Grid.valid_to.is_(None))).all()
    known = min(current, key=lambda g: g.code)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        [SYSTEM_PYTHON or "python3", str(PROBE), server, srsname, known.code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["valid"], done.stderr[-2000:]
    assert seen["crs"] == authid
    assert seen["count"] == len(current)
    # QGIS keeps x = longitude, y = latitude inside, whatever the CRS's axis order: a server
    # answering lon/lat for EPSG:4490 would put this centroid at (lat, lon).
    centroid = to_shape(known.geom).centroid
    x, y = seen["centroid"]
    assert abs(x - centroid.x) < 1e-3 and abs(y - centroid.y) < 1e-3
