"""Boundary files: any CRS lands where it should, repairs are reported, round trips are exact."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box
from sqlalchemy.orm import Session

from gis.errors import UnknownCrsError, ValidationError
from gis.geo import geodesic_distance_m, wgs84_to_gcj02
from gis.ingest.boundaries import (
    Level,
    commit_import,
    export_frame,
    plan_import,
    read_boundaries,
    same_geometry,
    write_frame,
)
from gis.layers.grids import Grid, list_grids
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.plans import GridChange
from gis.layers.regions import Region, region_code
from tests.conftest import Cli
from tests.services.planfixtures import EAST, MID, NORTH, SOUTH, WEST, Village, make_village

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
NOW = datetime.fromisoformat("2026-11-20T00:00:00+00:00")


def realdata(relative: str) -> Path:
    """A file of the shared reference data; skipped when absent (a failure in CI)."""
    path = REALDATA / relative
    if not path.exists():
        if IN_CI:
            pytest.fail(f"CI needs the reference data file {path}")
        pytest.skip(f"reference data not available: {path}")
    return path


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".shp": "ESRI Shapefile"}[path.suffix]
    frame.to_file(path, driver=driver, engine="pyogrio")
    return path


def _towns_with_coordinates() -> list[dict[str, str]]:
    """Quzhou's town seats (2016) that have coordinates: GCJ-02 and the computed WGS84."""
    path = realdata("amap-vonng-adcode/quzhou_towns_gcj02_with_wgs84_computed.csv")
    with path.open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["wgs84_lng_computed"]]


# --- coordinate systems -------------------------------------------------------------------------

# A town-sized polygon around Kecheng, Quzhou, in WGS84 (lon, lat).
KNOWN = Polygon(
    [(118.85, 28.93), (118.89, 28.93), (118.90, 28.96), (118.86, 28.975), (118.85, 28.93)]
)


@pytest.mark.parametrize(
    "epsg",
    [
        "EPSG:4549",  # CGCS2000 / 3-degree Gauss-Kruger CM 120E (Quzhou's usual zone)
        "EPSG:4548",  # CM 117E, the zone just west
        "EPSG:4528",  # zone 40 (CM 120E) with the zone number prefixed to the easting
    ],
)
def test_projected_cgcs2000_gauss_kruger_file_lands_on_the_known_coordinates(
    tmp_path: Path, epsg: str
) -> None:
    to_gk = Transformer.from_crs("EPSG:4490", epsg, always_xy=True)
    projected = shapely.transform(
        KNOWN, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1]))
    )
    assert projected.bounds[0] > 100_000  # metres, not degrees
    path = _write(
        gpd.GeoDataFrame(
            {"code": ["330802001000"], "name": ["样例街道"]}, geometry=[projected], crs=epsg
        ),
        tmp_path / "gk.gpkg",
    )
    read = read_boundaries(path)
    assert read.declared_crs == epsg and not read.rejected
    (feature,) = read.features
    landed = feature.geom.geoms[0]
    worst = max(
        geodesic_distance_m(x1, y1, x2, y2)
        for (x1, y1), (x2, y2) in zip(landed.exterior.coords, KNOWN.exterior.coords, strict=True)
    )
    assert worst < 0.05  # metres: CGCS2000 and WGS84 agree to centimetres


def test_projected_file_without_crs_is_rejected_with_a_hint(tmp_path: Path) -> None:
    path = _write(
        gpd.GeoDataFrame(
            {"code": ["X"], "name": ["x"]}, geometry=[box(500_000, 3_200_000, 501_000, 3_201_000)]
        ),
        tmp_path / "nocrs.geojson",
    )
    read = read_boundaries(path)
    (problem,) = read.rejected
    assert "outside China" in problem.reason and "--crs" in problem.reason
    assert "EPSG:4549" in problem.reason
    landed = read_boundaries(path, crs="EPSG:4549").features[0].geom  # told the truth, it reads
    assert 120.0 < landed.centroid.x < 120.01 and 28.9 < landed.centroid.y < 28.95


def test_unknown_crs_is_refused_with_the_accepted_ones(tmp_path: Path) -> None:
    path = _write(
        gpd.GeoDataFrame({"code": ["X"]}, geometry=[KNOWN], crs="EPSG:4326"), tmp_path / "a.geojson"
    )
    with pytest.raises(UnknownCrsError, match="GCJ-02"):
        read_boundaries(path, crs="Mars-2000")


def test_gcj02_override_moves_a_polygon_back_by_the_gcj_offset(tmp_path: Path) -> None:
    # The same polygon as a phone map would draw it (GCJ-02), in a file claiming WGS84.
    ring = np.array(KNOWN.exterior.coords)
    lon, lat = wgs84_to_gcj02(ring[:, 0], ring[:, 1])
    shifted = Polygon(zip(lon, lat, strict=True))
    path = _write(
        gpd.GeoDataFrame({"code": ["X"], "name": ["x"]}, geometry=[shifted], crs="EPSG:4326"),
        tmp_path / "gcj.geojson",
    )
    trusted = read_boundaries(path).features[0].geom
    fixed = read_boundaries(path, crs="GCJ-02").features[0].geom
    assert same_geometry(fixed, KNOWN)
    offset = geodesic_distance_m(
        trusted.centroid.x, trusted.centroid.y, fixed.centroid.x, fixed.centroid.y
    )
    assert 500 < offset < 700  # the GCJ-02 offset around Quzhou is ~590 m


def test_bd09_and_cgcs2000_lonlat_files_land_on_the_known_polygon(tmp_path: Path) -> None:
    from gis.geo import wgs84_to_bd09

    ring = np.array(KNOWN.exterior.coords)
    lon, lat = wgs84_to_bd09(ring[:, 0], ring[:, 1])
    baidu = _write(
        gpd.GeoDataFrame({"code": ["B"]}, geometry=[Polygon(zip(lon, lat, strict=True))]),
        tmp_path / "baidu.geojson",
    )
    assert same_geometry(read_boundaries(baidu, crs="BD-09").features[0].geom, KNOWN)
    cgcs = _write(
        gpd.GeoDataFrame({"code": ["C"]}, geometry=[KNOWN], crs="EPSG:4490"), tmp_path / "c.gpkg"
    )
    read = read_boundaries(cgcs)
    assert read.declared_crs == "EPSG:4490"
    assert read.features[0].geom.symmetric_difference(KNOWN).area < 1e-14  # centimetres


def test_amap_shapefile_read_as_gcj02_puts_every_quzhou_town_in_its_county(
    session: Session,
) -> None:
    shp = realdata("amap-garybikini/zhejiang_district.shp")
    towns = _towns_with_coordinates()
    read = read_boundaries(shp, crs="GCJ-02", code_field="adcode", name_field="name")
    assert read.declared_crs == "EPSG:4326"  # the .prj claims WGS 84; it is GCJ-02
    assert not read.rejected
    names = {f.code: f.name for f in read.features}
    assert names["330802"] == "柯城区"  # no .cpg: read as UTF-8, not GDAL's Latin-1 guess
    plan = plan_import(session, read, level=Level.COUNTY)
    # Added, or changed where the demo county (committed by another test) has them already.
    assert len(plan.added) + len(plan.changed) == 90 and not plan.unplaced
    commit_import(session, plan, actor="test")
    inside = 0
    for town in towns:
        covered = session.execute(
            sa.select(
                sa.func.ST_Covers(
                    Region.geom,
                    sa.func.ST_SetSRID(
                        sa.func.ST_MakePoint(
                            float(town["wgs84_lng_computed"]), float(town["wgs84_lat_computed"])
                        ),
                        4326,
                    ),
                )
            ).where(Region.code == town["county_adcode"] + "000000")
        ).scalar_one()
        inside += bool(covered)
    # Every town seat that has coordinates lies in its own county once the file is converted
    # (trusting the .prj instead leaves 3 of the 97 outside: 后溪镇, 黄坛口乡, 齐溪镇).
    assert inside == len(towns), f"{len(towns) - inside} of {len(towns)} towns outside their county"
    # And the conversion moved the county by the GCJ-02 offset.
    kecheng = next(f for f in read.features if f.code == "330802").geom
    raw = read_boundaries(shp, code_field="adcode", name_field="name")
    as_declared = next(f for f in raw.features if f.code == "330802").geom
    shift = geodesic_distance_m(
        kecheng.centroid.x, kecheng.centroid.y, as_declared.centroid.x, as_declared.centroid.y
    )
    assert 500 < shift < 700


def test_datav_county_file_converted_contains_its_town_points() -> None:
    path = realdata("datav/330800_full.json")
    towns = _towns_with_coordinates()
    counties = {
        f.code: f.geom for f in read_boundaries(path, crs="GCJ-02", code_field="adcode").features
    }
    assert set(counties) == {"330802", "330803", "330822", "330824", "330825", "330881"}
    named = {
        "330803114000": "330803",  # 高家镇
        "330803110000": "330803",  # 大洲镇
        "330822111000": "330822",  # 球川镇
        "330881121000": "330881",  # 贺村镇
        "330824115000": "330824",  # 华埠镇
    }
    points = {
        t["code12"]: Point(float(t["wgs84_lng_computed"]), float(t["wgs84_lat_computed"]))
        for t in towns
    }
    for code, county in named.items():
        assert counties[county].covers(points[code]), code


# --- geometry problems --------------------------------------------------------------------------


def test_invalid_geometries_are_repaired_or_rejected_saying_which_and_why(tmp_path: Path) -> None:
    bowtie = Polygon([(WEST, SOUTH), (MID, NORTH), (MID, SOUTH), (WEST, NORTH), (WEST, SOUTH)])
    frame = gpd.GeoDataFrame(
        {"code": ["A", "B", "C", "C", None]},
        geometry=[
            bowtie,
            LineString([(WEST, SOUTH), (EAST, NORTH)]),
            box(WEST, SOUTH, MID, NORTH),
            box(MID, SOUTH, EAST, NORTH),
            box(WEST, SOUTH, EAST, NORTH),
        ],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "bad.geojson"))
    assert [f.code for f in read.features] == ["A"]
    assert read.repaired[0].code == "A" and "Self-intersection" in read.repaired[0].reason
    reasons = {(p.index, p.code): p.reason for p in read.rejected}
    assert "LineString" in reasons[(1, "B")]
    assert "more than once" in reasons[(2, "C")] and "more than once" in reasons[(3, "C")]
    assert "no value" in reasons[(4, None)]


# --- the database -------------------------------------------------------------------------------


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village of the planning tests."""
    return make_village(session)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_export_then_import_round_trip_keeps_geometries_equal(
    session: Session, village: Village, tmp_path: Path, fmt: str
) -> None:
    # Grids that are not axis-aligned boxes, with many decimals, to make the test bite.
    grid = session.scalars(sa.select(Grid).where(Grid.code == village.west)).one()
    wobbly = Polygon(
        [
            (WEST, SOUTH),
            (MID + 1.234567891e-4, SOUTH),
            (MID - 3.3e-5, NORTH),
            (WEST + 1e-7 / 3, NORTH),
        ]
    )
    from geoalchemy2.shape import from_shape

    grid.geom = from_shape(shapely.MultiPolygon([wobbly]), srid=4326)
    session.flush()
    frame = export_frame(session, Level.GRID, parent=village.village)
    path = tmp_path / f"grids.{fmt}"
    write_frame(frame, path, fmt)
    read = read_boundaries(path)
    assert {f.code for f in read.features} == {village.west, village.east}
    plan = plan_import(session, read, level=Level.GRID)
    assert plan.summary() == {"added": 0, "changed": 0, "unchanged": 2, "retired": 0, "unplaced": 0}
    stored = {g.code: to_shape(g.geom) for g in list_grids(session, village_code=village.village)}
    for feature in read.features:
        assert same_geometry(feature.geom, stored[feature.code])
        assert feature.parent_code == village.village


def test_grid_import_creates_dated_versions_retires_missing_grids_and_moves_cases(
    session: Session, village: Village, tmp_path: Path
) -> None:
    # The west grid grows east to 0.0005° past the middle; the east grid is dropped and replaced.
    frame = gpd.GeoDataFrame(
        {
            "code": [village.west, f"{village.village}-N"],
            "name": ["西片", "新东片"],
            "hh": [210, 190],
        },
        geometry=[box(WEST, SOUTH, MID + 0.0005, NORTH), box(MID + 0.0005, SOUTH, EAST, NORTH)],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "g.geojson"), households_field="hh")
    plan = plan_import(session, read, level=Level.GRID, parent=village.village)
    assert [c for c, _ in plan.retired] == [village.east]
    assert plan.changed[0][0].code == village.west
    assert set(plan.changed[0][1]) == {"name", "households", "geometry"}
    assert [f.code for f in plan.added] == [f"{village.village}-N"]
    written = commit_import(session, plan, actor="importer", now=NOW)
    assert written["added"] == 1 and written["changed"] == 1 and written["retired"] == 1
    current = {g.code: g for g in list_grids(session, village_code=village.village)}
    assert set(current) == {village.west, f"{village.village}-N"}
    assert (current[village.west].version, current[village.west].households) == (2, 210)
    assert current[village.west].valid_from == NOW
    old = session.scalars(sa.select(Grid).where(Grid.code == village.east)).one()
    assert old.valid_to == NOW
    assert [
        (g.code, g.version)
        for g in list_grids(
            session,
            village_code=village.village,
            at=datetime.fromisoformat("2026-06-01T00:00:00+00:00"),
        )
    ] == sorted([(village.east, 1), (village.west, 1)])
    # The open case in the old east grid now belongs to the new one, with an event.
    moved = session.get(Incident, village.cases["open_east_staying"])
    assert moved is not None
    session.refresh(moved)
    assert moved.grid_code == f"{village.village}-N"
    event = session.scalars(
        sa.select(IncidentEvent).where(IncidentEvent.incident_id == moved.id)
    ).one()
    assert event.action == "reassign_grid" and event.data["from_grid"] == village.east
    changes = session.scalars(
        sa.select(GridChange.change).where(GridChange.code == village.east)
    ).all()
    assert changes == ["retired"]


def test_region_import_with_unknown_parent_is_reported_not_written(
    session: Session, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["330899555001"], "name": ["x"]},
        geometry=[box(100.0, 20.0, 100.01, 20.01)],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "v.geojson"))
    plan = plan_import(session, read, level=Level.VILLAGE)
    assert not plan.added and "pass --parent" in plan.unplaced[0].reason


def test_cli_import_is_a_dry_run_unless_commit(database_url: str, tmp_path: Path, cli: Cli) -> None:
    path = _write(
        gpd.GeoDataFrame(
            {"adcode": ["339999"], "name": ["试验县"]}, geometry=[KNOWN], crs="EPSG:4326"
        ),
        tmp_path / "county.shp",
    )
    result = cli("boundaries", "import", str(path), "--level", "county", "--crs", "GCJ-02")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "added" in result.output
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT count(*) FROM regions WHERE code = '339999000000'")
            ).scalar_one()
            == 0
        )
    engine.dispose()
    bad = cli("boundaries", "import", str(tmp_path / "missing.gpkg"), "--level", "town")
    assert bad.exit_code == 2 and "no such file" in bad.output
    target = tmp_path / "c.gpkg"
    exported = cli("boundaries", "export", "--level", "town", "-o", str(target), "--format", "gpkg")
    # The session database holds only what committed fixtures left: maybe no town at all.
    if exported.exit_code == 0:
        assert target.exists() and "wrote" in exported.output
    else:
        assert exported.exit_code == 2 and "nothing to export" in exported.output


def test_geojson_written_by_export_is_plain_wgs84(
    session: Session, village: Village, tmp_path: Path
) -> None:
    path = tmp_path / "v.geojson"
    write_frame(export_frame(session, Level.VILLAGE, parent=village.town), path, "geojson")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    (feature,) = data["features"]
    assert feature["properties"]["code"] == village.village
    assert shapely.geometry.shape(feature["geometry"]).equals(box(WEST, SOUTH, EAST, NORTH))


def test_datav_province_file_repairs_exactly_the_two_invalid_cities() -> None:
    read = read_boundaries(realdata("datav/330000_full.json"), crs="GCJ-02", code_field="adcode")
    # The README: 宁波市 330200 and 舟山市 330900 self-intersect; the other nine are valid.
    assert sorted(p.code or "" for p in read.repaired) == ["330200", "330900"]
    assert all("Self-intersection" in p.reason for p in read.repaired)
    assert not read.rejected and len(read.features) == 11
    assert all(f.geom.is_valid for f in read.features)


# --- real codes ---------------------------------------------------------------------------------

DEMO_COUNTIES = {"330803000000", "330822000000", "330824000000", "330881000000"}


def test_datav_county_file_matches_the_demo_counties_by_code(
    session: Session, demo: dict[str, object]
) -> None:
    # DataV carries 6-digit adcodes (330803); our regions the 12-digit codes (330803000000).
    read = read_boundaries(realdata("datav/330800_full.json"), crs="GCJ-02", code_field="adcode")
    plan = plan_import(session, read, level=Level.COUNTY)
    assert {f.code for f, _ in plan.changed} == DEMO_COUNTIES
    assert {f.code for f in plan.added} == {"330802000000", "330825000000"}  # 柯城区, 龙游县
    assert plan.summary() == {"added": 2, "changed": 4, "unchanged": 0, "retired": 0, "unplaced": 0}
    commit_import(session, plan, actor="test")
    # One 衢江区, now with DataV's outline; importing the same file again changes nothing.
    assert session.scalars(sa.select(Region.code).where(Region.name == "衢江区")).all() == [
        "330803000000"
    ]
    again = plan_import(session, read, level=Level.COUNTY)
    assert again.summary()["unchanged"] == 6 and not again.added and not again.changed


def test_cli_reports_four_changed_and_two_added_for_the_datav_county_file(
    demo: dict[str, object], cli: Cli
) -> None:
    path = realdata("datav/330800_full.json")
    result = cli(
        "boundaries", "import", str(path), "--level", "county", "--crs", "GCJ-02",
        env={"COLUMNS": "200"},  # rich wraps the table to the terminal width
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in result.output.splitlines() if line.count("│") >= 4}  # fmt: skip
    assert (rows["added"], rows["changed"], rows["rejected"]) == ("2", "4", "0")
    assert "dry run" in result.output


@pytest.mark.parametrize(
    ("level", "code", "expected"),
    [
        ("county", "330803", "330803000000"),
        ("county", "330803000000", "330803000000"),
        ("town", "330803110", "330803110000"),
        ("town", " 330803110000", "330803110000"),
        ("village", "330803110001", "330803110001"),
        ("city", "330800", "330800000000"),
    ],
)
def test_region_codes_of_real_files_become_twelve_digits(
    level: str, code: str, expected: str
) -> None:
    assert region_code(code, level) == expected


def test_a_county_file_with_adcodes_adds_twelve_digit_regions(
    session: Session, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame({"adcode": [339997]}, geometry=[KNOWN], crs="EPSG:4326")
    plan = plan_import(
        session, read_boundaries(_write(frame, tmp_path / "c.geojson")), level=Level.COUNTY
    )
    assert [f.code for f in plan.added] == ["339997000000"]
    commit_import(session, plan, actor="test")
    assert session.get(Region, "339997000000") is not None


@pytest.mark.parametrize(
    ("level", "code", "why"),
    [
        (Level.COUNTY, "3308", "has 4 digits; a county code has 6 digits or 12 ending in 6 zeros"),
        (Level.COUNTY, "330803110000", "a county code has 6 digits or 12 ending in 6 zeros"),
        (Level.TOWN, "330803", "has 6 digits; a town code has 9 digits or 12 ending in 3 zeros"),
        (Level.VILLAGE, "330803110", "has 9 digits; a village code has 12 digits"),
        (Level.TOWN, "33O803110", "is not made of digits"),
    ],
)
def test_other_region_codes_are_rejected_saying_what_a_code_looks_like(
    session: Session, tmp_path: Path, level: Level, code: str, why: str
) -> None:
    frame = gpd.GeoDataFrame(
        {"code": [code, "330899001"], "name": ["bad", "ok"]},
        geometry=[KNOWN, box(100.0, 20.0, 100.01, 20.01)],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "r.geojson"))
    plan = plan_import(session, read, level=level)
    bad = [p for p in plan.unplaced if p.code == code]
    assert len(bad) == 1 and why in bad[0].reason
    assert code not in {f.code for f in plan.added}


def test_a_code_given_short_and_long_in_one_file_is_one_region_twice(
    session: Session, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"adcode": ["339998", "339998000000"], "name": ["甲", "甲"]},
        geometry=[KNOWN, KNOWN],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "twice.geojson"))
    plan = plan_import(session, read, level=Level.COUNTY)
    assert not plan.added
    assert [p.code for p in plan.unplaced] == ["339998000000", "339998000000"]
    assert all("more than once" in p.reason for p in plan.unplaced)


def test_a_short_parent_code_finds_its_twelve_digit_town(
    session: Session, village: Village, tmp_path: Path
) -> None:
    # A village file whose --parent (or parent field) is the town's 9-digit code.
    frame = gpd.GeoDataFrame(
        {"code": ["330899001002"], "name": ["新村"]},
        geometry=[box(WEST, SOUTH, EAST, NORTH)],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "v.geojson"))
    plan = plan_import(session, read, level=Level.VILLAGE, parent=village.town[:9])
    assert [(f.code, f.parent_code) for f in plan.added] == [("330899001002", village.town)]
    with pytest.raises(ValidationError, match="town code '3308990' has 7 digits"):
        plan_import(session, read, level=Level.VILLAGE, parent="3308990")


@pytest.mark.parametrize("snap_m", [50.0, 10.0])
def test_grid_import_snaps_moved_cases_within_the_given_distance(
    session: Session, village: Village, tmp_path: Path, snap_m: float
) -> None:
    # The east grid shrinks to end ~29 m west of the open east case (lon 118.8090).
    frame = gpd.GeoDataFrame(
        {"code": [village.west, village.east], "name": ["西片", "东片"], "hh": [200, 200]},
        geometry=[box(WEST, SOUTH, MID, NORTH), box(MID, SOUTH, 118.8087, NORTH)],
        crs="EPSG:4326",
    )
    read = read_boundaries(_write(frame, tmp_path / "g.geojson"), households_field="hh")
    plan = plan_import(session, read, level=Level.GRID, parent=village.village)
    commit_import(session, plan, actor="importer", now=NOW, snap_m=snap_m)
    case = session.get(Incident, village.cases["open_east_staying"])
    assert case is not None
    session.refresh(case)
    assert (case.grid_code, case.location_quality) == (
        (village.east, "snapped") if snap_m == 50.0 else (None, "outside")
    )
