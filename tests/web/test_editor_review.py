"""The editor's files, review and comparison in headless Chromium against a real server: members
picked by name; the draft downloaded as a GeoPackage (opened with GDAL's ogrinfo) and imported
back as a new draft; a bad file refused with the reason; submit freezes the draft, withdraw
reopens it; a stale apply says what changed and rebases; the compare swipe."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy.orm import Session

from gis.layers.base import utcnow
from gis.layers.grids import Grid
from tests.conftest import count
from tests.services.planfixtures import EAST, MID, NORTH, SOUTH, WEST, Village, make_village
from tests.web.test_editor import _click, _open, _wait_rows, server

pytestmark = pytest.mark.browser
__all__ = ["server"]  # the editor's uvicorn fixture, answering from this module's village


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The two-grid village, committed (a refused import rolls its request back)."""
    made = make_village(session)
    session.commit()
    return made


def _state(page: Any, expression: str) -> Any:
    return page.evaluate(f"window.gisEditor.state.{expression}")


def _settled(page: Any) -> None:
    page.wait_for_function("!window.gisEditor.state.busy")


def test_members_by_name_export_import_and_a_bad_file(
    browser: Any, server: str, village: Village, session: Session, tmp_path: Path
) -> None:
    page, errors = _open(browser, f"{server}/plans/editor?village={village.village}", server)
    first = _state(page, "plan.id")
    row = page.locator(f"#ed-balance tbody tr[data-code='{village.west}']")
    assert "王伟" in row.inner_text()  # by name, not id
    # Pick a second member for the west grid by name.
    _click(page, (WEST + MID) / 2, (SOUTH + NORTH) / 2)
    page.wait_for_selector("#ed-member-list label")
    assert page.locator("#ed-member-list label", has_text="王伟").locator("input").is_checked()
    page.locator("#ed-member-list label", has_text="李娜").locator("input").check()
    page.click("#ed-set-members")
    page.wait_for_function(
        f"document.querySelector(\"#ed-balance tr[data-code='{village.west}']\")"
        ".textContent.includes('李娜')"
    )
    page.screenshot(path=str(tmp_path / "1-members.png"))
    # Download the draft as a GeoPackage; GDAL opens it.
    with page.expect_download() as download:
        page.click("#ed-export-gpkg")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.suffix == ".gpkg"
    info = subprocess.run(
        ["ogrinfo", "-ro", "-al", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Layer name: grids" in info and "Feature Count: 2" in info
    assert "王伟,李娜" in info or "李娜,王伟" in info
    # Import it back: a new draft with the same grids and both members.
    page.set_input_files("#ed-import", str(path))
    page.wait_for_function(
        f"window.gisEditor.state.plan.id !== {first} && !window.gisEditor.state.busy"
    )
    second = _state(page, "plan.id")
    assert f"plan={second}" in page.url
    _wait_rows(page, 2)
    assert page.inner_text("#ed-valid").startswith("通过 Valid")
    assert "李娜" in page.locator(f"#ed-balance tr[data-code='{village.west}']").inner_text()
    page.wait_for_selector(f"#ed-plan-list li.current >> text=#{second}")
    assert page.locator("#ed-plan-list li").count() == 2
    page.screenshot(path=str(tmp_path / "2-imported.png"))
    # A file with a grid that crosses itself: refused with the reason, nothing saved.
    bowtie = Polygon([(WEST, SOUTH), (MID, NORTH), (MID, SOUTH), (WEST, NORTH), (WEST, SOUTH)])
    bad = tmp_path / "bad.gpkg"
    gpd.GeoDataFrame(
        {"code": [village.west, village.east]},
        geometry=[bowtie, box(MID, SOUTH, EAST, NORTH)],
        crs="EPSG:4326",
    ).to_file(bad, driver="GPKG", engine="pyogrio")
    plans = count(session, "plans")
    page.set_input_files("#ed-import", str(bad))
    page.wait_for_function("document.getElementById('ed-hint').textContent.includes('invalid')")
    assert "Self-intersection" in page.inner_text("#ed-import-result.bad")
    assert _state(page, "plan.id") == second
    assert count(session, "plans") == plans
    page.screenshot(path=str(tmp_path / "3-refused.png"))
    assert errors == []
    page.close()


def test_submit_freezes_withdraw_reopens_stale_apply_rebases_and_swipe(
    browser: Any, server: str, village: Village, session: Session, tmp_path: Path
) -> None:
    page, errors = _open(browser, f"{server}/plans/editor?village={village.village}", server)
    assert page.is_disabled("#ed-apply")
    page.click("#ed-submit")
    page.wait_for_function("window.gisEditor.state.plan.status === 'submitted'")
    assert page.inner_text("#ed-plan-state") == "已提交 Submitted"
    assert page.is_disabled("[data-tool=split]") and page.is_enabled("#ed-apply")
    assert page.is_visible("#ed-withdraw")
    page.screenshot(path=str(tmp_path / "1-submitted.png"))
    page.click("#ed-withdraw")
    page.wait_for_function("window.gisEditor.state.plan.status === 'draft'")
    assert page.is_enabled("[data-tool=split]") and page.is_disabled("#ed-apply")
    page.click("#ed-submit")
    page.wait_for_function("window.gisEditor.state.plan.status === 'submitted'")
    # Meanwhile another plan changes the village (as from a second window).
    west = session.scalars(
        sa.select(Grid).where(Grid.code == village.west, Grid.valid_to.is_(None))
    ).one()
    from gis.services import grid_versions

    grid_versions.write_versions(
        session,
        grid_versions.GridWrite(
            retire=[west],
            create=[
                grid_versions.NewGridVersion(
                    code=west.code,
                    name="改名 renamed",
                    village_code=west.village_code,
                    town_code=west.town_code,
                    households=west.households,
                    population=west.population,
                    geom=MultiPolygon([box(WEST, SOUTH, MID, NORTH)]),
                )
            ],
            actor="import",
            source="import",
            note="test",
            reason="renamed elsewhere",
            plan_id=None,
            cases_area=box(WEST, SOUTH, EAST, NORTH),
            snap_m=30.0,
        ),
        now=utcnow(),
    )
    session.commit()
    page.click("#ed-apply")
    page.wait_for_selector("#ed-apply-result.bad")
    assert f"{village.west} v2 created" in page.inner_text("#ed-apply-result")
    assert page.is_visible("#ed-rebase")
    page.screenshot(path=str(tmp_path / "2-stale.png"))
    page.click("#ed-rebase")
    page.wait_for_function("window.gisEditor.state.plan.status === 'draft'")
    _settled(page)
    page.click("#ed-submit")
    page.wait_for_function("window.gisEditor.state.plan.status === 'submitted'")
    page.click("#ed-apply")
    page.wait_for_function(
        "document.getElementById('ed-apply-result').textContent.includes('已应用')"
    )
    assert page.inner_text("#ed-plan-state") == "已应用 Applied"
    # Compare: the current grids left of the handle, the draft right of it.
    page.check("#ed-compare")
    page.wait_for_selector("#ed-swipe-range")
    page.evaluate(
        "() => { const r = document.getElementById('ed-swipe-range'); r.value = '25';"
        " r.dispatchEvent(new Event('input')); }"
    )
    clip = page.evaluate(
        "() => { const m = window.gisEditor.map; const nw = m.containerPointToLayerPoint([0, 0]);"
        " return [m.getPane('ed-before').style.clip, m.getPane('overlayPane').style.clip,"
        " nw.x + m.getSize().x * 0.25]; }"
    )
    edge = f"{clip[2]:g}px"
    assert edge in clip[0] and edge in clip[1]
    assert page.locator(".leaflet-ed-before-pane path.ed-before").count() == 2
    page.screenshot(path=str(tmp_path / "3-swipe.png"))
    page.uncheck("#ed-compare")
    assert page.evaluate("window.gisEditor.map.getPane('overlayPane').style.clip") == ""
    assert errors == []
    page.close()


def test_review_and_swipe_on_a_phone_and_a_wall(
    browser: Any, server: str, village: Village, tmp_path: Path
) -> None:
    for name, viewport in (("phone", (360, 740)), ("wall", (2560, 1440))):
        page, errors = _open(
            browser, f"{server}/plans/editor?village={village.village}", server, viewport
        )
        page.check("#ed-compare")
        page.wait_for_selector("#ed-swipe-range")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
        assert page.is_visible("#ed-export-gpkg") or page.locator("#ed-export-gpkg").count() == 1
        page.screenshot(path=str(tmp_path / f"{name}-swipe.png"), full_page=True)
        assert errors == []
        page.close()
