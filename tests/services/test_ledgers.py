"""Importing units, cameras and members: the dry-run table, row-level errors that stop the
whole file, all-or-nothing idempotent commits, retiring, users, templates and exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import geodesic_distance_m, wgs84_to_gcj02
from gis.layers.base import point_lonlat
from gis.layers.cameras import Camera
from gis.layers.grids import GridMember, GridMemberGrid
from gis.layers.imports import ImportRun
from gis.layers.regions import Region
from gis.layers.units import ResponderUnit
from gis.layers.users import User
from gis.services import access
from gis.services.ledger_tables import read_table, read_table_file, write_table
from gis.services.ledgers import (
    COLUMNS,
    LedgerKind,
    commit_import,
    export_rows,
    plan_import,
)
from tests.services.ledger_town import GRID_E, GRID_W, ROAD_LATS, ROAD_LONS, TOWN, make_town
from tests.services.test_ledger_tables import xlsx

CAMERA_HEADER = ["编号", "名称", "类型", "朝向", "视角", "距离", "经度", "纬度"]


@pytest.fixture
def town(session: Session, catalog: int) -> Session:
    """The hand-made town in the test's transaction (with the category catalog)."""
    make_town(session)
    return session


def camera_rows(n: int = 12) -> list[list[Any]]:
    """Cameras on the roads of the town (WGS84)."""
    rows = []
    for i in range(n):
        if i % 2:
            lon, lat = 121.005 + 0.007 * i, ROAD_LATS[i % 3]
        else:
            lon, lat = ROAD_LONS[i % 3], 30.005 + 0.006 * i
        kind = "球机" if i % 4 == 0 else "枪机"
        rows.append([f"T21-{i:03d}", f"路口{i}", kind, (i * 30) % 360, None, None, lon, lat])
    return rows


def plan_of(session: Session, kind: LedgerKind, data: bytes, name: str, **options: Any) -> Any:
    """The plan of importing these bytes."""
    return plan_import(session, kind, read_table(data, name), **options)


def commit(session: Session, plan: Any, **options: Any) -> Any:
    """Commit a plan as the tests' actor."""
    return commit_import(session, plan, actor="test", filename="f", sha256="0" * 64, **options)


def test_cameras_dry_run_then_commit_then_same_file_changes_nothing(town: Session) -> None:
    data = xlsx([CAMERA_HEADER, *camera_rows()])
    plan = plan_of(town, LedgerKind.CAMERAS, data, "天眼台账.xlsx")
    assert plan.errors == [] and len(plan.added) == 12
    assert town.scalar(sa.select(sa.func.count()).where(Camera.code.like("T21-%"))) == 0
    result = commit(town, plan)
    assert result.summary["added"] == 12
    dome = town.scalars(sa.select(Camera).where(Camera.code == "T21-000")).one()
    fixed = town.scalars(sa.select(Camera).where(Camera.code == "T21-001")).one()
    assert (dome.kind, dome.fov_deg, dome.range_m) == ("dome", 360.0, 60.0)
    assert (fixed.kind, fixed.fov_deg, fixed.heading_deg, fixed.town_code) == (
        "fixed",
        60.0,
        30.0,
        TOWN,
    )
    again = plan_of(town, LedgerKind.CAMERAS, data, "天眼台账.xlsx")
    assert again.added == [] and again.changed == [] and len(again.unchanged) == 12
    # One field changed: only that camera, only that field; its view follows.
    rows = camera_rows()
    rows[1][3] = 200
    changed = plan_of(town, LedgerKind.CAMERAS, xlsx([CAMERA_HEADER, *rows]), "b.xlsx")
    assert [(r.key, f) for r, f in changed.changed] == [("T21-001", ["heading_deg"])]
    before = town.scalar(sa.select(sa.func.ST_AsText(Camera.view)).where(Camera.code == "T21-001"))
    commit(town, changed)
    after = town.scalar(sa.select(sa.func.ST_AsText(Camera.view)).where(Camera.code == "T21-001"))
    assert before != after
    runs = town.scalars(sa.select(ImportRun).order_by(ImportRun.id)).all()
    assert [(r.kind, r.added, r.changed, r.actor) for r in runs[-2:]] == [
        ("cameras", 12, 0, "test"),
        ("cameras", 0, 1, "test"),
    ]


def test_bad_rows_are_all_reported_and_nothing_is_written(town: Session) -> None:
    rows = camera_rows(6)
    rows[1][3] = 400  # bearing
    rows[2][0] = rows[3][0]  # duplicate code
    rows[4][6], rows[4][7] = rows[4][7], rows[4][6]  # swapped lon/lat
    rows[4][2], rows[4][4] = "枪机", 0  # and a fixed camera's fov of 0: both are reported
    rows[5][6], rows[5][7] = 119.5, 25.0  # outside every town
    plan = plan_of(town, LedgerKind.CAMERAS, xlsx([CAMERA_HEADER, *rows]), "bad.xlsx")
    found = {(e.row, e.column): e.reason for e in plan.errors}
    assert "heading_deg must be in [0, 360)" in found[(3, "朝向")]
    assert "more than once" in found[(4, "编号")] and "more than once" in found[(5, "编号")]
    assert "swapped" in found[(6, "经度")] and "fov_deg must be in (0, 360]" in found[(6, "视角")]
    assert "outside every town" in found[(7, "经度")]
    with pytest.raises(ValidationError, match="nothing written"):
        commit(town, plan)
    assert town.scalar(sa.select(sa.func.count()).where(Camera.code.like("T21-%"))) == 0


def test_a_gcj02_ledger_declared_wgs84_is_caught_and_reads_right_as_gcj02(town: Session) -> None:
    rows = camera_rows()
    for row in rows:
        row[6], row[7] = wgs84_to_gcj02(row[6], row[7])
    data = xlsx([CAMERA_HEADER, *rows])
    plan = plan_of(town, LedgerKind.CAMERAS, data, "phone.xlsx")
    [error] = [e for e in plan.errors if e.row is None]
    assert "looks like GCJ-02" in error.reason and "--crs GCJ-02" in error.reason
    good = plan_of(town, LedgerKind.CAMERAS, data, "phone.xlsx", crs="GCJ-02")
    assert good.errors == []
    commit(town, good)
    camera = town.scalars(sa.select(Camera).where(Camera.code == "T21-001")).one()
    lon, lat = point_lonlat(camera.geom)
    assert geodesic_distance_m(lon, lat, camera_rows()[1][6], camera_rows()[1][7]) < 0.01


UNIT_HEADER = ["编号", "名称", "类型", "电话", "经度", "纬度"]


def test_units_phone_type_and_jurisdiction(town: Session) -> None:
    rows = [
        ["T21-police", "测试派出所", "派出所", "0574-1234567", 121.03, 30.03],
        ["T21-market", "测试市场监管所", "市场监管所", "电话号码", 121.06, 30.03],
        ["T21-x", "某队", "消防队", "13800000000", 121.06, 30.03],
    ]
    plan = plan_of(town, LedgerKind.UNITS, xlsx([UNIT_HEADER, *rows]), "units.xlsx")
    found = {(e.row, e.column): e.reason for e in plan.errors}
    assert "not a phone number" in found[(3, "电话")]
    assert "unknown unit type" in found[(4, "类型")]
    plan = plan_of(town, LedgerKind.UNITS, xlsx([UNIT_HEADER, rows[0]]), "units.xlsx")
    commit(town, plan)
    unit = town.scalars(sa.select(ResponderUnit).where(ResponderUnit.code == "T21-police")).one()
    assert (unit.platform, unit.unit_type, unit.jurisdiction_code, unit.phone) == (
        "governance",
        "police_station",
        TOWN,
        "05741234567",
    )
    # Retiring: only with retire_missing, and the unit is kept, off duty.
    other = [["T21-market", "测试市场监管所", "市场监管所", "", 121.06, 30.03]]
    plan = plan_of(town, LedgerKind.UNITS, xlsx([UNIT_HEADER, *other]), "u.xlsx")
    assert "T21-police" in plan.retired and plan.summary()["retired"] == 0
    # A unit of another town is not this town's ledger's to retire.
    elsewhere = MultiPolygon([box(121.5, 30.5, 121.6, 30.6)])
    town.add(
        Region(
            code="330899202000", name="别镇", level="town", geom=from_shape(elsewhere, srid=4326)
        )
    )
    town.flush()
    town.add(
        ResponderUnit(
            code="T21-elsewhere",
            name="别处派出所",
            platform="governance",
            unit_type="police_station",
            jurisdiction_code="330899202000",
            geom=from_shape(Point(121.55, 30.55), srid=4326),
        )
    )
    plan = plan_of(
        town, LedgerKind.UNITS, xlsx([UNIT_HEADER, *other]), "u.xlsx", retire_missing=True
    )
    assert "T21-elsewhere" not in plan.retired
    commit(town, plan)
    town.refresh(unit)
    assert unit.status == "off_duty"


MEMBER_HEADER = ["姓名", "电话", "所属网格", "所属村社"]


def test_members_by_grid_code_or_name_with_users_made_once(town: Session) -> None:
    rows = [
        ["王五", "13900000001", GRID_W, None],
        ["赵六", "139 0000 0002", "二网格", "导入测试村"],
        ["钱七", "13900000003", "三网格", None],
    ]
    plan = plan_of(town, LedgerKind.MEMBERS, xlsx([MEMBER_HEADER, *rows]), "m.xlsx")
    [error] = plan.errors
    assert (error.row, error.column, error.value) == (4, "所属网格", "三网格")
    plan = plan_of(town, LedgerKind.MEMBERS, xlsx([MEMBER_HEADER, *rows[:2]]), "m.xlsx")
    result = commit(town, plan, with_users=True)
    assert [name for name, _ in result.tokens] == ["member-13900000001", "member-13900000002"]
    principal = access.authenticate(town, result.tokens[1][1])
    assert principal.grid_codes == frozenset({GRID_E}) and principal.town_codes == {TOWN}
    member = town.scalars(sa.select(GridMember).where(GridMember.phone == "13900000002")).one()
    assert town.scalars(
        sa.select(GridMemberGrid.grid_code).where(GridMemberGrid.member_id == member.id)
    ).all() == [GRID_E]
    again = plan_of(town, LedgerKind.MEMBERS, xlsx([MEMBER_HEADER, *rows[:2]]), "m.xlsx")
    assert len(again.unchanged) == 2
    assert commit(town, again, with_users=True).tokens == []
    assert town.scalar(sa.select(sa.func.count()).where(User.name.like("member-1390000000%"))) == 2


def test_template_and_export_round_trip(town: Session, tmp_path: Path) -> None:
    commit(town, plan_of(town, LedgerKind.CAMERAS, xlsx([CAMERA_HEADER, *camera_rows()]), "a.xlsx"))
    for suffix in ("xlsx", "csv", "gpkg"):
        path = tmp_path / f"cameras.{suffix}"
        rows = [r for r in export_rows(town, LedgerKind.CAMERAS) if r["code"].startswith("T21-")]
        write_table(rows, COLUMNS[LedgerKind.CAMERAS], path, sheet="cameras")
        plan = plan_import(town, LedgerKind.CAMERAS, read_table_file(path))
        assert plan.errors == [], (suffix, plan.errors)
        assert plan.added == [] and plan.changed == [] and len(plan.unchanged) == 12, suffix


def test_units_and_members_exports_reimport_unchanged(town: Session, tmp_path: Path) -> None:
    units = [["T21-police", "测试派出所", "派出所", "0574-1234567", 121.03, 30.03]]
    commit(town, plan_of(town, LedgerKind.UNITS, xlsx([UNIT_HEADER, *units]), "u.xlsx"))
    members = [["王五", "13900000001", GRID_W, None], ["赵六", "13900000002", "二网格", None]]
    commit(town, plan_of(town, LedgerKind.MEMBERS, xlsx([MEMBER_HEADER, *members]), "m.xlsx"))
    for kind, key in ((LedgerKind.UNITS, "code"), (LedgerKind.MEMBERS, "phone")):
        mine = [
            r for r in export_rows(town, kind) if str(r[key]).startswith(("T21-", "1390000000"))
        ]
        path = tmp_path / f"{kind.value}.csv"
        write_table(mine, COLUMNS[kind], path)
        plan = plan_import(town, kind, read_table_file(path))
        assert plan.errors == [] and plan.added == [] and plan.changed == [], kind
        assert len(plan.unchanged) == len(mine) > 0
