"""The map pages on every screen, in headless Chromium: a town leader's phone (360 × 740, touch),
a laptop (1366 × 768) and the 4K wall (3840 × 2160), normal and kiosk. The network is closed:
the basemap is a local tile archive (our own PNGs) served by the service at /maps/tiles, and any
request elsewhere (a public tile server) is aborted. Screenshots of each screen are saved in the
test's tmp_path. Skipped locally without Chromium or Playwright; in CI that is a failure."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.layers.plans import PlanScope
from gis.layers.users import Role
from gis.services import access, planning
from gis.settings import Settings
from tests.browser import closed_network
from tests.maps.town import TOWN, VILLAGE_1
from tests.services.planfixtures import make_village, thirds

pytestmark = pytest.mark.browser

PHONE = (360, 740)
LAPTOP = (1366, 768)
WALL = (3840, 2160)
PERIOD = "&since=2026-10-01T00:00:00%2B08:00&until=2026-11-01T00:00:00%2B08:00"
COMMAND_ROOM = f"/maps/command-room?town={TOWN}{PERIOD}"

# The share of the screen the controls cover, sampled every 2 px: each visible control's box
# (Leaflet's controls, the title and legend panels, the buttons, banners, the kiosk bar).
COVERED_SHARE = """() => {
    const boxes = [...document.querySelectorAll(
        '.leaflet-control, .gis-panel, #gis-basemap-error, #gis-kiosk-bar, #gis-live')]
        .map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
    const w = innerWidth, h = innerHeight;
    let covered = 0, all = 0;
    for (let y = 1; y < h; y += 2) for (let x = 1; x < w; x += 2) {
        all++;
        if (boxes.some(r => x >= r.left && x < r.right && y >= r.top && y < r.bottom)) covered++;
    }
    return covered / all;
}"""
# Every visible thing a finger taps: buttons, links (not the credit line's), the layer list's
# and the metric switch's labels. Returns the ones smaller than 44 × 44 px.
SMALL_TARGETS = """() => [...document.querySelectorAll(
        'button, a, .leaflet-control-layers label, #gis-metric-switch label')]
    .filter(e => !e.closest('.leaflet-control-attribution, .leaflet-popup'))
    .map(e => [e.id || e.className || e.textContent.trim(), e.getBoundingClientRect()])
    .filter(([, r]) => r.width > 0 && r.height > 0 && (r.width < 44 || r.height < 44))
    .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
# The hand-made town's figures in the test period (tests/maps/test_command_room.py explains them).
TOWN_FIGURES = {
    "received": "7",
    "closure_rate": "57.1%",
    "on_time_rate": "75.0%",
    "overdue_open": "2",
    "open_now": "4",
    "overdue_now": "2",
}
ZOOM = "Object.values(window).find(v => v instanceof L.Map).getZoom()"
FIGURES = """() => Object.fromEntries([...document.querySelectorAll('.gis-figure')]
    .map(e => [e.dataset.figure, e.querySelector('b').textContent]))"""
VISIBLE_CONTROLS = """() => [...document.querySelectorAll('.leaflet-control, button, input')]
    .filter(e => !e.classList.contains('leaflet-control-attribution'))
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; })
    .map(e => e.className || e.tagName)"""


@pytest.fixture
def server_settings(tile_archives: dict[str, Path], request: Any) -> dict[str, Any]:
    """Every page draws the local archive unless a test asks otherwise; tokens are checked on
    every request (no cache), so an expired one is refused at once; figures are exact."""
    return {
        "basemap": "local",
        "basemap_file": str(tile_archives["pmtiles"]),
        "token_cache_s": 0,
        "stats_stale_after_s": 0,  # the figures exactly as of now, not stored facts
        **getattr(request, "param", {}),
    }


class Screen:
    """One page in its own browser context: its size, touch, the script errors and every
    response, and the requests the closed network refused."""

    def __init__(
        self, browser: Any, origin: str, size: tuple[int, int], *, touch: bool = False
    ) -> None:
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, has_touch=touch, is_mobile=touch
        )
        self.origin = origin
        self.page = self.context.new_page()
        self.errors = closed_network(self.page, origin)
        self.failed_loads: list[str] = []
        self.tiles: list[Any] = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.failed_loads.append(m.text),
        )
        self.page.on("response", lambda r: "/maps/tiles/" in r.url and self.tiles.append(r))

    def open(self, path: str) -> Any:
        """Go to ``path`` and wait until Leaflet and the page's modules have run."""
        response = self.page.goto(self.origin + path, wait_until="load")
        assert response is not None and response.status == 200, path
        self.page.wait_for_selector(
            ".leaflet-overlay-pane canvas, .leaflet-overlay-pane svg",
            state="attached",
            timeout=15_000,
        )
        # The page's modules run after the map's script: the basemap banner is theirs.
        self.page.wait_for_selector("#gis-basemap-error", state="attached", timeout=15_000)
        return self.page

    def wait_for_tiles(self) -> None:
        """Until the basemap's tiles in view have loaded (or failed)."""
        self.page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-tile-loaded').length > 0"
            " && !Object.values(window).some(v => v instanceof L.TileLayer && v.isLoading())",
            timeout=15_000,
        )

    def shot(self, path: Path) -> Path:
        """A screenshot of the whole screen."""
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 5_000
        return path

    def close(self) -> None:
        """Close the context (and its page)."""
        self.context.close()


def _tap_map(page: Any, x: int, y: int) -> None:
    """A tap on the map at (x, y), then a pause: two quick taps would zoom it in."""
    page.tap(".leaflet-container", position={"x": x, "y": y})
    page.wait_for_timeout(400)


def _tap_layer(page: Any, name: str) -> None:
    """A tap on a layer's label in the opened layer list, then a pause (as for the map)."""
    page.locator(".leaflet-control-layers label", has_text=name).tap()
    page.wait_for_timeout(400)


def _visible(page: Any, selector: str) -> bool:
    return bool(page.is_visible(selector))


def test_on_a_phone_the_controls_are_buttons_that_open_and_close_by_tap(
    browser: Any, server: str, tmp_path: Path
) -> None:
    screen = Screen(browser, server, PHONE, touch=True)
    page = screen.open(COMMAND_ROOM)
    screen.wait_for_tiles()
    # Closed: two buttons; the layer list and the legend are out of the way.
    assert _visible(page, "#gis-layers-button") and _visible(page, "#gis-legend-button")
    assert not _visible(page, ".leaflet-control-layers") and not _visible(page, "#gis-legend")
    visible_share = 1 - page.evaluate(COVERED_SHARE)
    assert visible_share >= 0.80, f"the map shows on {visible_share:.0%} of the phone"
    # The title is one line, and carries the key figures.
    title = page.locator("#gis-title").bounding_box()
    assert title is not None and title["height"] <= 40 and title["width"] <= PHONE[0]
    assert page.evaluate(FIGURES) == TOWN_FIGURES
    for figure in ("received", "closure_rate", "overdue_now"):  # the key figures, and only they
        assert _visible(page, f".gis-figure[data-figure={figure}] b")
    assert not _visible(page, ".gis-figure[data-figure=open_now]")
    assert not _visible(page, "#gis-title .gis-period")
    assert page.evaluate(SMALL_TARGETS) == []
    screen.shot(tmp_path / "phone-closed.png")

    # Tap: the layer list opens below its button; a tap inside it switches a layer and leaves
    # it open; a tap on the map closes it.
    zoom = page.evaluate(ZOOM)
    page.tap("#gis-layers-button")
    assert _visible(page, ".leaflet-control-layers")
    assert page.get_attribute("#gis-layers-button", "aria-expanded") == "true"
    assert page.evaluate(SMALL_TARGETS) == []
    page.locator(".leaflet-control-layers label", has_text="天眼 Cameras").tap()
    assert _visible(page, ".leaflet-control-layers")
    page.wait_for_timeout(400)
    assert page.evaluate(ZOOM) == zoom  # two quick taps in the controls are not a double tap
    screen.shot(tmp_path / "phone-layers-open.png")
    _tap_map(page, 180, 560)
    assert not _visible(page, ".leaflet-control-layers")
    assert page.get_attribute("#gis-layers-button", "aria-expanded") == "false"

    # The legend opens as a sheet; opening the layer list closes it; a tap outside closes all.
    page.tap("#gis-legend-button")
    assert _visible(page, "#gis-legend")
    assert page.evaluate(SMALL_TARGETS) == []  # the metric switch's radio labels too
    screen.shot(tmp_path / "phone-legend-open.png")
    page.tap("#gis-layers-button")
    assert _visible(page, ".leaflet-control-layers") and not _visible(page, "#gis-legend")
    _tap_map(page, 180, 620)
    assert not _visible(page, ".leaflet-control-layers") and not _visible(page, "#gis-legend")

    # The time view's slider, switched on from the layer list, fits the phone's width.
    page.tap("#gis-layers-button")
    _tap_layer(page, "时序热力")
    _tap_map(page, 60, 540)
    assert not _visible(page, ".leaflet-control-layers")
    slider = page.locator(".leaflet-bar-timecontrol").bounding_box()
    assert slider is not None and slider["x"] >= 0 and slider["x"] + slider["width"] <= PHONE[0]
    screen.shot(tmp_path / "phone-time-view.png")
    assert screen.errors == [] and screen.failed_loads == []
    screen.close()


def test_on_a_phone_the_village_and_plan_maps_collapse_the_same_way(
    browser: Any, server: str, session: Session, settings: Settings, tmp_path: Path
) -> None:
    village = make_village(session)
    scope = planning.load_scope(session, PlanScope.VILLAGE, village.village)
    plan = planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village.village,
        proposed=thirds(village),
        based_on_version=planning.version_token(planning.current_grids(session, scope)),
        actor="planner-zhao",
        settings=settings,
    )
    for name, path, panels in (
        ("village", f"/maps/grids?village={VILLAGE_1}", ["#gis-layers-button"]),
        ("plan", f"/plans/{plan.id}/map", ["#gis-layers-button", "#gis-legend-button"]),
    ):
        screen = Screen(browser, server, PHONE, touch=True)
        page = screen.open(path)
        visible_share = 1 - page.evaluate(COVERED_SHARE)
        assert visible_share >= 0.80, f"{name}: the map shows on {visible_share:.0%}"
        assert page.evaluate(SMALL_TARGETS) == [], name
        for button in panels:
            target = page.get_attribute(button, "aria-controls")
            assert not _visible(page, f"#{target}")
            page.tap(button)
            assert _visible(page, f"#{target}"), f"{name}: {button} did not open"
            _tap_map(page, 180, 600)
            assert not _visible(page, f"#{target}"), f"{name}: a tap outside did not close"
        screen.shot(tmp_path / f"phone-{name}.png")
        # The plan's village lies beyond the test archive: the page says so, not a silent grey.
        covered = not _visible(page, "#gis-basemap-error")
        assert covered == (name == "village"), name
        assert screen.errors == [], name
        screen.close()


@pytest.mark.parametrize("size", [LAPTOP, WALL], ids=["laptop", "wall"])
def test_wide_screens_keep_the_controls_open_and_draw_the_local_basemap_offline(
    browser: Any, server: str, tmp_path: Path, size: tuple[int, int]
) -> None:
    screen = Screen(browser, server, size)
    page = screen.open(COMMAND_ROOM)
    screen.wait_for_tiles()
    assert _visible(page, ".leaflet-control-layers") and _visible(page, "#gis-legend")
    assert not _visible(page, "#gis-layers-button") and not _visible(page, "#gis-legend-button")
    assert _visible(page, "#gis-title .gis-period")  # the full title: period, English
    # The basemap came from the service's archive, with nothing else on the network.
    drawn = [r for r in screen.tiles if r.status == 200]
    assert len(drawn) >= 4 and all(r.status in (200, 204) for r in screen.tiles)
    assert all(r.url.startswith(server) for r in screen.tiles)
    assert all(r.headers["content-type"] == "image/png" and len(r.body()) > 100 for r in drawn)
    assert not _visible(page, "#gis-basemap-error")
    # Nothing on the page overlaps: title, layer list and legend are apart.
    boxes = [
        page.locator(s).bounding_box()
        for s in ("#gis-title", ".leaflet-control-layers", "#gis-legend")
    ]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a and b
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, (a, b)
    screen.shot(tmp_path / f"command-room-{size[0]}x{size[1]}.png")
    assert screen.errors == [] and screen.failed_loads == []
    screen.close()


def test_kiosk_on_the_wall_shows_no_control_the_same_figures_a_clock_and_the_live_state(
    browser: Any, server: str, tmp_path: Path
) -> None:
    normal = Screen(browser, server, WALL)
    figures = normal.open(COMMAND_ROOM).evaluate(FIGURES)
    normal_size = normal.page.evaluate(
        "getComputedStyle(document.querySelector('.gis-figure b')).fontSize"
    )
    normal.close()
    screen = Screen(browser, server, WALL)
    page = screen.open(COMMAND_ROOM + "&kiosk=1")
    screen.wait_for_tiles()
    assert page.evaluate(VISIBLE_CONTROLS) == []
    assert page.evaluate(FIGURES) == figures == TOWN_FIGURES
    kiosk_size = page.evaluate("getComputedStyle(document.querySelector('.gis-figure b')).fontSize")
    assert float(kiosk_size.removesuffix("px")) >= 2 * float(normal_size.removesuffix("px"))
    assert _visible(page, "#gis-legend")  # discreet, but there
    assert re.fullmatch(r"\d\d:\d\d:\d\d\S*", page.inner_text("#gis-clock").split("\n")[0])
    # The live indicator (the live-updates module's element and state) sits in the kiosk's bar.
    assert _visible(page, "#gis-kiosk-bar #gis-live")
    assert page.get_attribute("#gis-live", "data-state") in ("connected", "reconnecting", "offline")
    assert page.locator("#gis-live").count() == 1
    assert not _visible(page, "#gis-expired")
    screen.shot(tmp_path / "kiosk-3840x2160.png")
    assert screen.errors == [] and screen.failed_loads == []
    screen.close()


@pytest.mark.parametrize("server_settings", [{"auth_required": True}], indirect=True)
def test_kiosk_says_on_screen_when_its_login_expired_and_stays_on_the_map(
    browser: Any, server: str, session: Session, tmp_path: Path
) -> None:
    user = access.add_user(session, name="wall-gaojia", role=Role.COMMAND_ROOM, town_codes=[TOWN])
    # Long enough for a loaded machine to serve the page with it, short enough to wait for.
    token = access.issue_token(session, user, valid_for=timedelta(seconds=20))
    screen = Screen(browser, server, LAPTOP)
    screen.context.add_cookies([{"name": "gis_token", "value": token, "url": server}])
    page = screen.open(COMMAND_ROOM + "&kiosk=1")
    url = page.url
    assert not _visible(page, "#gis-expired")
    page.wait_for_selector("#gis-expired", state="visible", timeout=45_000)
    assert "登录已过期" in page.inner_text("#gis-expired")
    assert "Login expired" in page.inner_text("#gis-expired")
    assert page.url == url and _visible(page, "#gis-title")  # no login page, the map stays
    screen.shot(tmp_path / "kiosk-expired.png")
    # The check that found it out was refused: a failed load, not a script error.
    assert screen.errors == []
    screen.close()


@pytest.mark.parametrize("server_settings", [{"auth_required": True}], indirect=True)
def test_kiosk_asks_again_soon_when_a_login_check_fails(
    browser: Any, server: str, session: Session, tmp_path: Path
) -> None:
    # The first check (at load) fails: without an answer the wall would wait a whole minute for
    # the next; it asks again within seconds, learns the expiry time and shows the notice then.
    user = access.add_user(session, name="wall-retry", role=Role.COMMAND_ROOM, town_codes=[TOWN])
    token = access.issue_token(session, user, valid_for=timedelta(seconds=20))
    screen = Screen(browser, server, LAPTOP)
    screen.context.add_cookies([{"name": "gis_token", "value": token, "url": server}])
    checks: list[int] = []

    def fail_first(route: Any) -> None:
        checks.append(1)
        if len(checks) == 1:
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    screen.page.route("**/maps/session*", fail_first)
    page = screen.open(COMMAND_ROOM + "&kiosk=1")
    page.wait_for_selector("#gis-expired", state="visible", timeout=45_000)
    assert len(checks) >= 2
    screen.shot(tmp_path / "kiosk-expired-after-retry.png")
    screen.close()


@pytest.mark.parametrize("server_settings", [{"basemap": "osm"}], indirect=True)
def test_a_public_basemap_the_network_cannot_reach_is_announced_not_a_silent_grey(
    browser: Any, server: str, tmp_path: Path
) -> None:
    screen = Screen(browser, server, LAPTOP)
    page = screen.open(COMMAND_ROOM)
    page.wait_for_selector("#gis-basemap-error", state="visible", timeout=15_000)
    text = page.inner_text("#gis-basemap-error")
    assert "底图加载失败" in text and "tile.openstreetmap.org" in text
    screen.shot(tmp_path / "basemap-unreachable.png")
    page.click("#gis-basemap-error button")
    assert not _visible(page, "#gis-basemap-error")
    assert screen.errors == []
    screen.close()
