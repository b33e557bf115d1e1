"""Fixtures of the map tests: the hand-made town of ``tests.maps.town``, its ground as tile
archives, and the browser tests' server (Chromium itself is tests/browser.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.settings import Settings
from tests.conftest import use_session
from tests.live import OneAtATime, serve
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


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """Settings the server of a test module changes (a module overrides this fixture)."""
    return {}


@pytest.fixture
def server(
    settings: Settings,
    session: Session,
    catalog: int,
    assets_dir: Path,
    server_settings: dict[str, Any],
) -> Iterator[str]:
    """uvicorn serving the app on a free loopback port; its sessions are the test's session."""
    build_town(session)
    app = create_app(
        settings.model_copy(
            update={
                "auth_required": False,
                "map_assets": "local",
                "map_assets_dir": str(assets_dir),
                **server_settings,
            }
        )
    )
    use_session(app, session)
    # Open event streams (the command room's live feed) are cut after a second when it stops.
    with serve(OneAtATime(app), graceful_shutdown_s=1) as url:
        yield url
