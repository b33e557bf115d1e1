"""End to end: a real uvicorn server on a loopback port serves the command-room page and its
Leaflet files; headless Chromium opens it, Leaflet draws, the layers are there and no script
fails. Skipped locally without Chromium or Playwright; in CI (CI=true) that is a failure.

The network is closed here, so the page loads Leaflet and the plugins from the service itself
(``/maps/assets``, fetched from the npm registry by ``gis map assets``); every other request
(map tiles) is aborted by the test, and those failed loads are not script errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gis.maps import command_room as cr
from tests.maps.conftest import closed_network
from tests.maps.town import TOWN, VILLAGE_1

pytestmark = pytest.mark.browser


def _open(browser: Any, url: str, origin: str) -> tuple[Any, list[str]]:
    """A page at ``url`` with outside requests aborted; returns it and the script errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = closed_network(page, origin)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    return page, errors


def test_command_room_page_draws_in_chromium_with_every_layer_and_no_script_error(
    browser: Any, server: str, tmp_path: Path
) -> None:
    url = (
        f"{server}/maps/command-room?town={TOWN}"
        "&since=2026-10-01T00:00:00%2B08:00&until=2026-11-01T00:00:00%2B08:00"
    )
    page, errors = _open(browser, url, server)
    page.wait_for_selector(".leaflet-control-layers", timeout=15_000)
    # Leaflet drew: panes, the vector canvas (grids, cameras), unit markers and clusters.
    page.wait_for_selector(".leaflet-overlay-pane canvas", state="attached", timeout=15_000)
    page.wait_for_selector(".awesome-marker", state="attached", timeout=15_000)
    labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert [label.strip() for label in labels] == list(cr.LAYERS)
    assert page.locator(".leaflet-marker-pane .awesome-marker").count() == 2  # the two units
    # The case markers are drawn on the canvas: ask Leaflet how many each cluster layer holds.
    clustered = page.evaluate(
        "Object.keys(window).filter(k => k.startsWith('fast_marker_cluster_'))"
        ".map(k => window[k].getLayers().length)"
    )
    assert clustered == [2, 2]  # open, overdue
    heat_points = page.evaluate(
        "Object.keys(window).filter(k => /^heat_map_\\d+$/.test(k) && window[k]._latlngs)"
        ".map(k => window[k]._latlngs.length)"
    )
    assert heat_points == [6]
    # Open the popup of the most urgent overdue case: assembled in the browser from the tables.
    page.evaluate(
        "Object.keys(window).filter(k => k.startsWith('fast_marker_cluster_'))"
        ".map(k => window[k])[1].getLayers()[0].openPopup()"
    )
    popup = page.inner_text(".leaflet-popup-content")
    assert "噪声扰民" in popup or "noise" in popup.lower()
    assert "状态 Status: accepted" in popup and "超期 overdue" in popup
    assert "期限 Deadline: 2026-10-10 09:00" in popup and "网格 Grid G3" in popup
    page.keyboard.press("Escape")
    assert "高家镇 综合信息指挥室 — Gaojia command room" in page.inner_text("#gis-title")
    # Recolour the grids by closure rate in the page: every grid takes its closure colour and
    # the legend shows that scale instead of the load one.
    page.check("input[name=gis-metric][value=closure]")
    recoloured = page.evaluate(
        "(() => { const k = Object.keys(window).find(k => k.startsWith('geo_json_') && "
        "window[k].getLayers && window[k].getLayers().some(l => l.feature && "
        "l.feature.properties.fill_closure)); const ls = window[k].getLayers(); "
        "return ls.length > 0 && ls.every(l => l.options.fillColor === "
        "l.feature.properties.fill_closure); })()"
    )
    assert recoloured is True
    assert page.is_visible(".gis-metric[data-metric=closure]")
    assert page.is_hidden(".gis-metric[data-metric=load]")
    # The time view starts off, its slider hidden; switched on, the plugin must run cleanly.
    assert page.locator(".timecontrol-play.play").is_hidden()
    page.get_by_text(cr.TIME_LAYER).click()
    page.wait_for_selector(".timecontrol-play.play", timeout=10_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "command-room.png"))
    assert (tmp_path / "command-room.png").stat().st_size > 10_000
    assert errors == []
    page.close()


def test_village_grids_page_draws_its_labels(browser: Any, server: str, tmp_path: Path) -> None:
    page, errors = _open(browser, f"{server}/maps/grids?village={VILLAGE_1}", server)
    page.wait_for_selector(".leaflet-control-layers", timeout=15_000)
    page.wait_for_selector(".leaflet-div-icon, .empty", state="attached", timeout=15_000)
    text = page.inner_text(".leaflet-marker-pane")
    assert "G1" in text and "李一" in text and "王二" in text
    page.screenshot(path=str(tmp_path / "village-grids.png"))
    assert errors == []
    page.close()
