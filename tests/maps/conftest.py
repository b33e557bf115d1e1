"""Fixtures of the map tests: the hand-made town of ``tests.maps.town``, its ground as tile
archives, and the browser tests' Chromium and server (one Chromium for the whole session)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.errors import GisError
from gis.maps.assets import assets_dir_for, assets_ready, fetch_assets
from gis.settings import Settings
from tests.conftest import use_session
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


IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs the browser test: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The fetched Leaflet files (fetched now from the npm registry if missing)."""
    directory = assets_dir_for(os.environ.get("GIS_MAP_ASSETS_DIR"))
    if not assets_ready(directory):
        try:
            fetch_assets(directory, log=lambda _: None)
        except GisError as error:
            _unavailable(f"map assets cannot be fetched: {error.detail}")
    return directory


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven over CDP by Playwright."""
    if CHROMIUM is None:
        _unavailable("chromium is not installed (scripts/test-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e .[dev])")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    import uvicorn

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
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def closed_network(page: Any, origin: str) -> list[str]:
    """Abort every request not to ``origin``; returns the list the page's script errors go to."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def on_console(message: Any) -> None:
        # A tile the closed network refused is a failed load, not a script error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(origin)
            else route.abort("internetdisconnected")
        ),
    )
    return errors
