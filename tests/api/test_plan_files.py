"""A draft's grids exported as GeoPackage/GeoJSON (opened with real GDAL) and imported back as a
new draft; bad files refused with the reason and nothing saved; submit → withdraw → submit →
apply, with a submitted plan frozen; members offered by name."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Polygon, box, shape
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.plans import Plan
from gis.layers.users import Role
from gis.services.access import Principal
from tests.conftest import count
from tests.services.planfixtures import EAST, MID, NORTH, SOUTH, WEST, Village, make_village

PLANNER = Principal(user_id=None, name="planner-li", role=Role.PLANNER, town_codes=None)
VILLAGE_BOX = box(WEST, SOUTH, EAST, NORTH)
LAT_MID = (SOUTH + NORTH) / 2


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made two-grid village (committed: a refused import rolls its request back)."""
    made = make_village(session)
    session.commit()
    return made


@pytest.fixture
def planner(app: Any, village: Village) -> Iterator[TestClient]:
    """A client acting as a planner."""
    app.dependency_overrides[get_principal] = lambda: PLANNER
    with TestClient(app) as client:
        yield client


def _split_draft(client: TestClient, village: Village) -> dict[str, Any]:
    plan = client.post("/plans/editor/drafts", json={"village": village.village}).json()
    line = [[WEST - 0.001, LAT_MID], [MID + 0.002, LAT_MID]]
    edited = client.post(
        f"/plans/{plan['id']}/edits", json={"gesture": {"op": "split", "line": line}}
    )
    assert edited.status_code == 200, edited.text
    return dict(edited.json())


def _import(client: TestClient, village: Village, name: str, data: bytes, **extra: str) -> Any:
    return client.post(
        "/plans/editor/imports",
        params={"village": village.village},
        files={"file": (name, data, "application/octet-stream")},
        data=extra,
    )


def _geoms(plan: dict[str, Any]) -> dict[str, Any]:
    return {f["properties"]["code"]: shape(f["geometry"]) for f in plan["proposed"]["features"]}


def _write(frame: gpd.GeoDataFrame, path: Path, driver: str = "GPKG") -> bytes:
    frame.to_file(path, driver=driver, engine="pyogrio")
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_export_opens_in_gdal_and_imports_back_as_the_same_draft(
    planner: TestClient, village: Village, tmp_path: Path, fmt: str
) -> None:
    draft = _split_draft(planner, village)
    response = planner.get(f"/plans/{draft['id']}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert f"plan-{draft['id']}-{village.village}.{fmt}" in response.headers["content-disposition"]
    path = tmp_path / f"draft.{fmt}"
    path.write_bytes(response.content)
    # Real GDAL reads it: one layer "grids" of three polygons in WGS84, with our fields.
    info = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Layer name: grids" in info and "Feature Count: 3" in info
    assert "Polygon" in info and ("WGS 84" in info or "4326" in info)
    for field in ("code", "name", "members", "member_names"):
        assert f"{field}: String" in info
    features = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "王伟" in features  # the west grid's member, by name
    # Imported back: a new draft with the same grids, still tiling the village exactly.
    back = _import(planner, village, path.name, response.content)
    assert back.status_code == 201, back.text
    plan = back.json()
    assert plan["id"] != draft["id"] and plan["status"] == "draft"
    assert plan["valid"] and plan["coverage"]["valid"]
    before, after = _geoms(draft), _geoms(plan)
    assert before.keys() == after.keys()
    for code, geom in before.items():
        assert geom.equals_exact(after[code], 1e-12), code
    geoms = np.array(list(after.values()), dtype=object)
    assert shapely.coverage_union_all(geoms).symmetric_difference(VILLAGE_BOX).area < 1e-15
    members = {g["code"]: g["members"] for g in plan["balance"]["grids"]}
    assert members[village.west] == [village.member_w]
    assert plan["title"] == f"imported from {path.name}"


def test_import_in_cgcs2000_gauss_kruger_is_converted(
    planner: TestClient, village: Village, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"code": [village.west, village.east], "name": ["西", "东"]},
        geometry=[box(WEST, SOUTH, MID, NORTH), box(MID, SOUTH, EAST, NORTH)],
        crs="EPSG:4326",
    ).to_crs("EPSG:4549")
    response = _import(planner, village, "gk.gpkg", _write(frame, tmp_path / "gk.gpkg"))
    assert response.status_code == 201, response.text
    geoms = _geoms(response.json())
    assert geoms[village.west].symmetric_difference(box(WEST, SOUTH, MID, NORTH)).area < 1e-12


def _refused(
    planner: TestClient, village: Village, session: Session, name: str, data: bytes
) -> dict[str, Any]:
    plans = count(session, "plans")
    response = _import(planner, village, name, data)
    assert 400 <= response.status_code < 500, response.text
    assert count(session, "plans") == plans  # nothing saved
    return dict(response.json())


def test_bad_files_are_refused_with_the_reason_and_nothing_saved(
    planner: TestClient, village: Village, session: Session, tmp_path: Path
) -> None:
    west, east = box(WEST, SOUTH, MID, NORTH), box(MID, SOUTH, EAST, NORTH)
    codes = [village.west, village.east]
    bowtie = Polygon([(WEST, SOUTH), (MID, NORTH), (MID, SOUTH), (WEST, NORTH), (WEST, SOUTH)])
    bad = _write(
        gpd.GeoDataFrame({"code": codes}, geometry=[bowtie, east], crs="EPSG:4326"),
        tmp_path / "bowtie.gpkg",
    )
    error = _refused(planner, village, session, "bowtie.gpkg", bad)
    assert error["code"] == "invalid_geometry" and "Self-intersection" in error["detail"]
    assert village.west in error["detail"]
    # Web Mercator: another CRS, named.
    mercator = gpd.GeoDataFrame({"code": codes}, geometry=[west, east], crs="EPSG:4326").to_crs(
        "EPSG:3857"
    )
    error = _refused(planner, village, session, "m.gpkg", _write(mercator, tmp_path / "m.gpkg"))
    assert error["code"] == "unknown_crs" and "EPSG:3857" in error["detail"], error
    # Gauss-Kruger metres in a file that claims WGS84.
    metres = mercator.set_crs("EPSG:4326", allow_override=True)
    error = _refused(planner, village, session, "lie.gpkg", _write(metres, tmp_path / "lie.gpkg"))
    assert error["code"] == "invalid_coordinates" and "CRS" in error["detail"]
    # Another place: the grids lie outside the village.
    away = gpd.GeoDataFrame(
        {"code": codes},
        geometry=[shapely.affinity.translate(g, 0.05, 0.0) for g in (west, east)],
        crs="EPSG:4326",
    )
    error = _refused(planner, village, session, "away.gpkg", _write(away, tmp_path / "away.gpkg"))
    assert "outside village" in error["detail"]
    # Not a grid layer, not a file GDAL reads, no code field.
    points = gpd.GeoDataFrame(
        {"code": ["P"]}, geometry=[shapely.Point(WEST + 0.001, SOUTH + 0.001)], crs="EPSG:4326"
    )
    error = _refused(planner, village, session, "p.gpkg", _write(points, tmp_path / "p.gpkg"))
    assert "Point" in error["detail"]
    error = _refused(planner, village, session, "x.gpkg", b"not a geopackage")
    assert error["code"] == "validation_error"
    nocode = gpd.GeoDataFrame({"label": ["a"]}, geometry=[west], crs="EPSG:4326")
    error = _refused(planner, village, session, "n.gpkg", _write(nocode, tmp_path / "n.gpkg"))
    assert "no field 'code'" in error["detail"]
    error = _refused(planner, village, session, "plan.shp", b"x")
    assert ".gpkg" in error["detail"]


def test_import_with_a_gap_is_a_draft_that_shows_it(
    planner: TestClient, village: Village, tmp_path: Path
) -> None:
    """A file that is readable but not a clean plan becomes a draft with its validation."""
    frame = gpd.GeoDataFrame(
        {"code": [village.west, village.east]},
        geometry=[box(WEST, SOUTH, MID - 0.001, NORTH), box(MID, SOUTH, EAST, NORTH)],
        crs="EPSG:4326",
    )
    collection = json.loads(frame.to_json())
    # A hand-written GeoJSON names members as a JSON list.
    collection["features"][1]["properties"]["members"] = [village.member_w]
    response = _import(planner, village, "gap.geojson", json.dumps(collection).encode())
    assert response.status_code == 201, response.text
    plan = response.json()
    assert not plan["valid"]
    assert any(p["kind"] == "gap" for p in plan["problems"])
    members = {g["code"]: g["members"] for g in plan["balance"]["grids"]}
    assert members[village.east] == [village.member_w]


def test_submit_freezes_withdraw_reopens_and_apply_runs(
    planner: TestClient, village: Village, session: Session
) -> None:
    draft = _split_draft(planner, village)
    plan_id = draft["id"]
    submitted = planner.post(f"/plans/{plan_id}/submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert submitted.json()["submitted_by"] == "planner-li"
    listed = planner.get("/plans", params={"scope": village.village, "status": "submitted"})
    assert [p["id"] for p in listed.json()] == [plan_id]
    # Frozen: no gesture, no undo, no second submit.
    rename = {"op": "rename", "grid": village.west, "name": "甲"}
    frozen = planner.post(f"/plans/{plan_id}/edits", json={"gesture": rename})
    assert frozen.status_code == 409 and "withdraw" in frozen.json()["detail"]
    assert planner.post(f"/plans/{plan_id}/undo").status_code == 409
    assert planner.post(f"/plans/{plan_id}/submit").status_code == 409
    # Withdrawn: editable again.
    withdrawn = planner.post(f"/plans/{plan_id}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "draft"
    assert withdrawn.json()["submitted_by"] is None
    assert planner.post(f"/plans/{plan_id}/withdraw").status_code == 409
    edited = planner.post(f"/plans/{plan_id}/edits", json={"gesture": rename})
    assert edited.status_code == 200, edited.text
    assert planner.post(f"/plans/{plan_id}/submit").status_code == 200
    applied = planner.post(f"/plans/{plan_id}/apply")
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "applied"
    assert planner.post(f"/plans/{plan_id}/withdraw").status_code == 409


def test_an_invalid_or_stale_draft_cannot_be_submitted(
    planner: TestClient, village: Village, session: Session
) -> None:
    plan = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    gap = planner.post(
        f"/plans/{plan['id']}/edits",
        json={"gesture": {"op": "move_vertex", "from": [WEST, NORTH], "to": [WEST + 0.002, NORTH]}},
    )
    assert gap.status_code == 200 and not gap.json()["valid"]
    refused = planner.post(f"/plans/{plan['id']}/submit")
    assert refused.status_code == 422 and refused.json()["code"] == "plan_invalid"
    # Stale: another plan applied meanwhile (this one put back to draft, as in a second window).
    stale = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    other = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    rename = {"op": "rename", "grid": village.east, "name": "东"}
    planner.post(f"/plans/{other['id']}/edits", json={"gesture": rename})
    assert planner.post(f"/plans/{other['id']}/apply").status_code == 200
    row = session.get(Plan, stale["id"])
    assert row is not None
    row.status = "draft"
    session.commit()
    conflict = planner.post(f"/plans/{stale['id']}/submit")
    assert conflict.status_code == 409
    assert {c["code"] for c in conflict.json()["changed"]} >= {village.east}
    assert planner.post(f"/plans/{stale['id']}/rebase").status_code == 200
    assert planner.post(f"/plans/{stale['id']}/submit").status_code == 200


def test_a_submitted_plan_applied_on_a_stale_base_is_409_with_the_changes(
    planner: TestClient, village: Village, session: Session
) -> None:
    first = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    assert planner.post(f"/plans/{first['id']}/submit").status_code == 200
    other = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    rename = {"op": "rename", "grid": village.west, "name": "西"}
    planner.post(f"/plans/{other['id']}/edits", json={"gesture": rename})
    assert planner.post(f"/plans/{other['id']}/apply").status_code == 200
    row = session.get(Plan, first["id"])
    assert row is not None and row.status == "superseded"  # the apply says so
    row.status = "submitted"  # as if submitted from a second window after the apply
    session.commit()
    stale = planner.post(f"/plans/{first['id']}/apply")
    assert stale.status_code == 409 and stale.json()["changed"]


def test_the_editor_offers_members_by_name(planner: TestClient, village: Village) -> None:
    plan = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    names = {m["id"]: m["name"] for m in plan["members"]}
    assert names[village.member_w] == "王伟"
    assert set(names.values()) >= {"王伟", "李娜"}


def test_export_of_an_unknown_format_or_plan_is_4xx(planner: TestClient, village: Village) -> None:
    plan = planner.post("/plans/editor/drafts", json={"village": village.village}).json()
    assert planner.get(f"/plans/{plan['id']}/export", params={"format": "shp"}).status_code == 422
    assert planner.get("/plans/999999/export").status_code == 404
