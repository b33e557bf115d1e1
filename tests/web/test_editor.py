"""The planner's editor in headless Chromium against a real server: split, merge, undo, drag a
shared vertex, apply; and a gap made on purpose, drawn red and refused. The grids are checked in
the database afterwards, not only on the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import shape
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.plans import Plan
from gis.settings import Settings
from tests.browser import closed_network
from tests.conftest import use_session
from tests.live import serve
from tests.services.planfixtures import EAST, MID, NORTH, SOUTH, WEST, Village, make_village

pytestmark = pytest.mark.browser
VILLAGE_BOX = shapely.box(WEST, SOUTH, EAST, NORTH)
CUT_LAT = 28.903  # below every case of the fixture village


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made two-grid village (W and E halves, cases, members)."""
    return make_village(session)


@pytest.fixture
def server(
    settings: Settings, session: Session, village: Village, assets_dir: Path
) -> Iterator[str]:
    """uvicorn on a loopback port answering from the test's session."""
    app = create_app(
        settings.model_copy(
            update={
                "auth_required": False,
                "map_assets": "local",
                "map_assets_dir": str(assets_dir),
            }
        )
    )
    use_session(app, session)
    with serve(app) as url:
        yield url


def _open(
    browser: Any, url: str, origin: str, viewport: tuple[int, int] = (1280, 860)
) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    errors = closed_network(page, origin)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_function("window.gisEditor && window.gisEditor.state.ready", timeout=20_000)
    return page, errors


def _px(page: Any, lon: float, lat: float) -> tuple[float, float]:
    x, y = page.evaluate(
        "([lon, lat]) => { const m = window.gisEditor.map;"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )
    return float(x), float(y)


def _click(page: Any, lon: float, lat: float) -> None:
    page.mouse.click(*_px(page, lon, lat))


def _rows(page: Any) -> int:
    return int(page.locator("#ed-balance tbody tr").count())


def _wait_rows(page: Any, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#ed-balance tbody tr').length === {n}")


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


def _done(page: Any, n: int) -> None:
    try:
        page.wait_for_function(
            f"window.gisEditor.state.plan.history.done === {n} && !window.gisEditor.state.busy",
            timeout=15_000,
        )
    except Exception as error:  # say what the page shows
        raise AssertionError(
            f"{page.inner_text('#ed-status')} / {page.inner_text('#ed-hint')}"
        ) from error


def _tiles_exactly(geoms: list[Any]) -> None:
    array = np.array(geoms, dtype=object)
    assert shapely.coverage_is_valid(array)
    assert all(edge.is_empty for edge in shapely.coverage_invalid_edges(array))
    assert shapely.coverage_union_all(array).symmetric_difference(VILLAGE_BOX).area < 1e-15


def test_split_merge_undo_drag_and_apply(
    browser: Any, server: str, village: Village, session: Session, tmp_path: Path
) -> None:
    page, errors = _open(browser, f"{server}/plans/editor?village={village.village}", server)
    assert "plan=" in page.url  # a reload reopens the same draft
    assert _rows(page) == 2
    page.screenshot(path=str(tmp_path / "1-open.png"))
    # Split the west grid with a line drawn across it.
    page.click("[data-tool=split]")
    _click(page, WEST - 0.0008, CUT_LAT)
    _click(page, MID + 0.0008, CUT_LAT)
    page.click("#ed-finish")
    _wait_rows(page, 3)
    assert page.inner_text("#ed-valid").startswith("通过 Valid")
    page.screenshot(path=str(tmp_path / "2-split.png"))
    plan_id = page.evaluate("window.gisEditor.state.plan.id")
    codes = page.evaluate(
        "window.gisEditor.state.plan.proposed.features.map(f => f.properties.code)"
    )
    south = next(c for c in codes if c not in (village.west, village.east))
    # Merge the two west pieces back, then undo the merge.
    page.click("[data-tool=merge]")
    _click(page, (WEST + MID) / 2, (SOUTH + CUT_LAT) / 2)
    _click(page, (WEST + MID) / 2, 28.907)
    page.click("#ed-finish")
    _wait_rows(page, 2)
    assert page.inner_text("#ed-valid").startswith("通过 Valid")
    page.screenshot(path=str(tmp_path / "3-merge.png"))
    page.click("#ed-undo")
    _wait_rows(page, 3)
    # Drag the vertex the split made on the W|E boundary, shared by three grids, to the west.
    feature_e = page.evaluate(
        "code => window.gisEditor.state.plan.proposed.features"
        ".find(f => f.properties.code === code)",
        village.east,
    )
    shared = [
        xy
        for xy in shapely.get_coordinates(shape(feature_e["geometry"])).tolist()
        if xy[0] == MID and SOUTH < xy[1] < NORTH
    ]
    assert len(shared) == 1
    page.click("[data-tool=vertex]")
    _click(page, (WEST + MID) / 2, 28.907)
    page.wait_for_selector(".ed-vertex.shared")
    start = _px(page, *shared[0])
    target = _px(page, 118.802, shared[0][1])
    _drag(page, start, target)
    _done(page, 2)
    assert page.inner_text("#ed-valid").startswith("通过 Valid")
    page.screenshot(path=str(tmp_path / "4-drag.png"))
    # In the database: the saved draft still tiles the village exactly.
    session.expire_all()
    stored = session.get(Plan, plan_id)
    assert stored is not None and stored.validation["valid"]
    _tiles_exactly([shape(f["geometry"]) for f in stored.proposed["features"]])
    # The case at 118.804, 28.905 is now east of the moved boundary.
    assert "移动的在办案件 Open cases moving: 1" in page.inner_text("#ed-impact-text")
    # Compare with the current grids (a swipe), then submit and apply.
    page.check("#ed-compare")
    page.wait_for_selector("#ed-swipe-range")
    page.screenshot(path=str(tmp_path / "5-compare.png"))
    page.uncheck("#ed-compare")
    assert page.is_disabled("#ed-apply")  # a draft is submitted first
    page.click("#ed-submit")
    page.wait_for_function("window.gisEditor.state.plan.status === 'submitted'")
    page.click("#ed-apply")
    page.wait_for_function(
        "document.getElementById('ed-apply-result').textContent.includes('已应用')"
    )
    page.screenshot(path=str(tmp_path / "6-applied.png"))
    session.expire_all()
    current = session.scalars(
        sa.select(Grid).where(Grid.village_code == village.village, Grid.valid_to.is_(None))
    ).all()
    assert sorted(g.code for g in current) == sorted([village.west, village.east, south])
    assert {g.code: g.version for g in current}[village.east] == 2
    _tiles_exactly([to_shape(g.geom) for g in current])
    moved = session.get(Incident, village.cases["open_west_moving"])
    assert moved is not None and moved.grid_code == village.east
    assert errors == []
    page.close()


def test_a_gap_is_drawn_red_and_apply_is_refused(
    browser: Any, server: str, village: Village, tmp_path: Path
) -> None:
    page, errors = _open(browser, f"{server}/plans/editor?village={village.village}", server)
    page.click("[data-tool=vertex]")
    _click(page, (WEST + MID) / 2, 28.905)
    page.wait_for_selector(".ed-vertex")
    _drag(page, _px(page, WEST, NORTH), _px(page, WEST + 0.002, NORTH - 0.002))
    _done(page, 1)
    page.wait_for_selector("path.ed-gap", state="attached")
    assert page.inner_text("#ed-valid").startswith("1 个错误") or "错误" in page.inner_text(
        "#ed-valid"
    )
    assert page.locator("#ed-issues li.error[data-kind=gap]").count() == 1
    page.screenshot(path=str(tmp_path / "gap.png"))
    assert page.is_disabled("#ed-apply")  # only a submitted plan is applied…
    page.click("#ed-submit")  # …and a plan with errors is not submitted
    page.wait_for_selector("#ed-apply-result.bad")
    assert "校验未通过" in page.inner_text("#ed-apply-result")
    assert page.evaluate("window.gisEditor.state.plan.status") == "draft"
    # Undo restores the clean draft.
    page.click("#ed-undo")
    _done(page, 0)
    assert page.locator("path.ed-gap").count() == 0
    assert errors == []
    page.close()


def test_phone_and_wall_layouts(
    browser: Any, server: str, village: Village, tmp_path: Path
) -> None:
    for name, viewport in (("phone", (360, 740)), ("wall", (2560, 1440))):
        page, errors = _open(
            browser, f"{server}/plans/editor?village={village.village}", server, viewport
        )
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport[0]
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        assert errors == []
        page.close()
