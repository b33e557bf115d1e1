"""End to end: the vector-tile page (/maps/tiles) in headless Chromium draws a town's layers
from the OGC API's tiles, on a phone and on a wall screen, with a clean console; a dispatcher
(login cookie) also gets the case and camera layers, anonymous callers only the public ones.
Skipped locally without Chromium or Playwright; in CI that is a failure (tests/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.users import Role
from gis.settings import Settings
from tests.browser import refuse_outside
from tests.conftest import use_session
from tests.ogc.conftest import live_server

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
WALL = {"width": 2560, "height": 1440}
# Non-blank pixels of every tile canvas, per Leaflet layer, in the order the page adds them.
DRAWN = """() => [...document.querySelectorAll('.leaflet-tile-pane > .leaflet-layer')].map(
  (layer) => [...layer.querySelectorAll('canvas')].reduce((sum, canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn += 1; }
    return sum + drawn;
  }, 0))"""


@pytest.fixture
def server(
    settings: Settings,
    session: Session,
    demo: object,
    assets_dir: Path,
) -> Iterator[str]:
    """The app with its map libraries served locally, on a loopback port."""
    local = settings.model_copy(update={"map_assets": "local", "map_assets_dir": str(assets_dir)})
    with live_server(use_session(create_app(local), session)) as url:
        yield url


def _open(browser: Any, url: str, viewport: dict[str, int], cookie: str | None = None) -> Any:
    context = browser.new_context(viewport=viewport)
    if cookie:
        origin = url.split("/maps/")[0]
        context.add_cookies([{"name": "gis_token", "value": cookie, "url": origin + "/"}])
    page = context.new_page()
    page.errors = []
    page.tile_statuses = []
    page.on("pageerror", lambda error: page.errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            page.errors.append(f"console: {message.text}")
            # The test's own pixel readbacks (DRAWN) make Chromium suggest willReadFrequently.
            if message.type in ("error", "warning") and "willReadFrequently" not in message.text
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            page.tile_statuses.append((response.url, response.status))
            if "/tiles/WebMercatorQuad/" in response.url and "tilejson" not in response.url
            else None
        ),
    )
    origin = url.split("/maps/")[0]
    refuse_outside(page, origin)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_function(
        "window.gisTiles && window.gisTiles.ready && "
        "Object.values(window.gisTiles.tilesLoaded).every((n) => n > 0)",
        timeout=20_000,
    )
    page.wait_for_timeout(300)  # the last tiles' canvases
    return page


@pytest.mark.parametrize("viewport", [PHONE, WALL], ids=["phone", "wall"])
def test_public_layers_are_drawn_from_tiles_on_phone_and_wall(
    browser: Any,
    server: str,
    town_codes: list[str],
    viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    page = _open(browser, f"{server}/maps/tiles?town={town_codes[0]}", viewport)
    assert page.evaluate("window.gisTiles.layers") == ["towns", "grids"]
    assert "矢量瓦片 Vector tiles" in page.inner_text("#gis-title")
    assert "网格 Grids" in page.inner_text("#gis-status")
    grid_tiles = [(u, s) for u, s in page.tile_statuses if "/collections/grids/" in u]
    assert (
        grid_tiles and {s for _, s in grid_tiles} <= {200, 204} and 200 in dict(grid_tiles).values()
    )
    towns_drawn, grids_drawn = page.evaluate(DRAWN)
    assert towns_drawn > 0 and grids_drawn > 1_000
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"]  # nothing overflows the phone's width
    page.screenshot(path=str(tmp_path / f"tiles-{viewport['width']}.png"))
    assert (tmp_path / f"tiles-{viewport['width']}.png").stat().st_size > 5_000
    assert page.errors == []
    page.context.close()


def test_a_dispatcher_also_sees_cases_and_camera_views(
    browser: Any,
    server: str,
    town_codes: list[str],
    headers_for: Any,
    tmp_path: Path,
) -> None:
    token = headers_for(Role.DISPATCHER, (town_codes[0],))["Authorization"].split()[1]
    page = _open(browser, f"{server}/maps/tiles?town={town_codes[0]}", WALL, cookie=token)
    assert page.evaluate("window.gisTiles.layers") == ["towns", "grids", "cameras", "incidents"]
    statuses = {s for u, s in page.tile_statuses if "/collections/incidents/" in u}
    assert 200 in statuses and statuses <= {200, 204}
    drawn = page.evaluate(DRAWN)
    assert all(n > 0 for n in drawn), drawn
    # The layer switch hides the cases: their canvases leave the map.
    page.locator(".leaflet-control-layers label", has_text="事件 Cases").click()
    assert page.evaluate(DRAWN)[:3] == drawn[:3] and len(page.evaluate(DRAWN)) == 3
    page.screenshot(path=str(tmp_path / "tiles-dispatcher.png"))
    assert page.errors == []
    page.context.close()


def test_unknown_town_is_404(client: Any, demo: object) -> None:
    assert client.get("/maps/tiles?town=999999999999").status_code == 404
    assert client.get("/web/tiles/other.js").status_code == 404
    assert client.get("/web/tiles/tiles.js").status_code == 200
