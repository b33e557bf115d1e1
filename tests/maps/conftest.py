"""Fixtures of the map tests: the hand-made town of ``tests.maps.town``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.maps.tile_archives import tiles, write_mbtiles, write_pmtiles
from tests.maps.town import build_town

# A little more than the town (TOWN_BOUNDS), so its edge has ground under it.
ARCHIVE_BOUNDS = (110.98, 28.98, 111.06, 29.05)
ARCHIVE_ZOOMS = range(10, 17)


@pytest.fixture
def town(session: Session, catalog: int) -> dict[str, int]:
    """The hand-made town, inside the test's rolled-back transaction."""
    return build_town(session)


@pytest.fixture(scope="session")
def tile_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The town's ground as our own PNG tiles (z10–16), in an MBTiles and a PMTiles file."""
    folder = tmp_path_factory.mktemp("tiles")
    content = tiles(ARCHIVE_BOUNDS, ARCHIVE_ZOOMS)
    return {
        "mbtiles": write_mbtiles(folder / "town.mbtiles", content, ARCHIVE_BOUNDS),
        "pmtiles": write_pmtiles(folder / "town.pmtiles", content, ARCHIVE_BOUNDS),
    }
