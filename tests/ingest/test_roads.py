"""Road import: OSM-like attributes, CRS handling, noding and topology, and files refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import sqlalchemy as sa
from pyproj import Geod
from shapely.geometry import LineString, Point
from sqlalchemy.orm import Session

from gis.errors import UnknownCrsError, ValidationError
from gis.geo import wgs84_to_gcj02
from gis.ingest.roads import import_roads, parse_class, parse_oneway, parse_speed
from gis.layers.roads import Road
from gis.services.routing import RouteOptions, drive_times
from tests.conftest import Cli
from tests.services.dispatch_fixtures import UTM, add_regions, add_unit, lonlat, to_utm

GEOD = Geod(ellps="WGS84")


def feature(coords: list[tuple[float, float]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]},
    }


def write(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def roads(session: Session) -> list[Road]:
    return list(session.scalars(sa.select(Road).order_by(Road.id)))


@pytest.fixture
def osm_file(tmp_path: Path) -> Path:
    """A main road through a junction vertex shared with a side road, a T-junction, a footway,
    a reversed one-way and a point."""
    west, junction, east = lonlat(0, 0), lonlat(1000, 0), lonlat(2000, 0)
    return write(
        tmp_path / "osm.geojson",
        [
            feature([west, junction, east], highway="primary", maxspeed="60", name="Main St"),
            feature([junction, lonlat(1000, 800)], highway="residential"),
            feature([lonlat(1500, 600), lonlat(1500, 0)], highway="tertiary_link"),  # T
            feature([lonlat(0, 100), lonlat(500, 100)], highway="footway"),
            feature([lonlat(3000, 0), east], highway="secondary", oneway="-1", maxspeed="30 mph"),
            {
                "type": "Feature",
                "properties": {"highway": "primary"},
                "geometry": {"type": "Point", "coordinates": list(west)},
            },
        ],
    )


def test_osm_like_file_is_noded_with_speeds_and_topology(session: Session, osm_file: Path) -> None:
    report = import_roads(session, osm_file)
    assert report.features == 6 and report.lines == 4
    assert report.skipped == {"not a line": 1, "not drivable (footway)": 1}
    # Main St is split at the shared junction and at the T-junction: three pieces.
    main = [r for r in roads(session) if r.name == "Main St"]
    assert sorted(round(r.length_m) for r in main) == [500, 500, 1000]
    assert {r.speed_kmh for r in main} == {60.0}
    side = next(r for r in roads(session) if r.road_class == "residential")
    assert side.speed_kmh == 30.0  # the class default
    link = next(r for r in roads(session) if r.road_class == "tertiary")
    assert link.speed_kmh == 40.0
    oneway = next(r for r in roads(session) if r.road_class == "secondary")
    assert oneway.oneway and oneway.speed_kmh == pytest.approx(48.28, abs=0.01)
    # Reversed: drawn towards (3000, 0), so it now starts at the east end of Main St.
    assert report.segments == 6
    junction_nodes = {r.target for r in main} | {r.source for r in main}
    assert side.source in junction_nodes and link.target in junction_nodes
    assert oneway.source in junction_nodes
    assert report.nodes == 7


def test_imported_network_routes(session: Session, osm_file: Path) -> None:
    add_regions(session)
    import_roads(session, osm_file)
    unit = add_unit(session, "99RI-1", 1000, 800)
    lon, lat = lonlat(0, 0)
    times = drive_times(session, lon, lat, [unit.id], options=RouteOptions())
    # 800 m at 30 km/h, then 1000 m at 60 km/h.
    assert times[unit.id].eta_s == pytest.approx(800 / (30 / 3.6) + 1000 / (60 / 3.6), abs=1)


def test_projected_gpkg_with_class_field_is_converted(session: Session, tmp_path: Path) -> None:
    line = to_utm(LineString([lonlat(0, 0), lonlat(0, 700)]))
    frame = gpd.GeoDataFrame({"fclass": ["trunk"]}, geometry=[line], crs=UTM)
    path = tmp_path / "roads.gpkg"
    frame.to_file(path, driver="GPKG")
    report = import_roads(session, path)
    (road,) = roads(session)
    assert report.source_crs.endswith("32650")
    assert road.speed_kmh == 80.0 and road.length_m == pytest.approx(700, rel=1e-3)


def test_gcj02_override_moves_lines_back_to_wgs84(session: Session, tmp_path: Path) -> None:
    start, end = lonlat(0, 0), lonlat(500, 0)
    shifted = [wgs84_to_gcj02(*start), wgs84_to_gcj02(*end)]
    path = write(tmp_path / "gcj.geojson", [feature(shifted, road_class="primary")])
    import_roads(session, path, crs="GCJ-02")
    (road,) = roads(session)
    first = session.execute(
        sa.select(
            sa.func.ST_X(sa.func.ST_StartPoint(Road.geom)),
            sa.func.ST_Y(sa.func.ST_StartPoint(Road.geom)),
        )
    ).one()
    _, _, error_m = GEOD.inv(first[0], first[1], *start)
    assert error_m < 0.01 and road.road_class == "primary"


def test_import_replaces_the_network_unless_appending(session: Session, osm_file: Path) -> None:
    import_roads(session, osm_file)
    again = import_roads(session, osm_file)
    assert again.replaced == 6 and len(roads(session)) == 6
    import_roads(session, osm_file, replace=False)
    assert len(roads(session)) == 12


@pytest.mark.parametrize(
    ("features", "says"),
    [
        ([], "no usable road lines"),
        ([feature([lonlat(0, 0), lonlat(10, 0)], highway="footway")], "no usable road lines"),
        ([feature([lonlat(0, 0), lonlat(10, 0)], colour="red")], "no road class or speed"),
        ([feature([(500000.0, 3300000.0), (500100.0, 3300000.0)], highway="primary")], "CRS"),
    ],
)
def test_files_without_usable_lines_are_refused_and_write_nothing(
    session: Session, tmp_path: Path, features: list[dict[str, Any]], says: str
) -> None:
    path = write(tmp_path / "bad.geojson", features)
    before = len(roads(session))
    with pytest.raises(ValidationError, match=says):
        import_roads(session, path)
    assert len(roads(session)) == before


def test_only_points_and_unreadable_and_missing_files_are_refused(
    session: Session, tmp_path: Path
) -> None:
    points = gpd.GeoDataFrame({"highway": ["primary"]}, geometry=[Point(117.5, 30.5)], crs=4326)
    points.to_file(tmp_path / "points.geojson", driver="GeoJSON")
    with pytest.raises(ValidationError, match="no usable road lines"):
        import_roads(session, tmp_path / "points.geojson")
    (tmp_path / "junk.geojson").write_text("this is not json")
    with pytest.raises(ValidationError, match="cannot read"):
        import_roads(session, tmp_path / "junk.geojson")
    with pytest.raises(ValidationError, match="no such file"):
        import_roads(session, tmp_path / "missing.geojson")
    with pytest.raises(ValidationError, match="no field 'kmh'"):
        import_roads(
            session,
            write(
                tmp_path / "ok.geojson", [feature([lonlat(0, 0), lonlat(9, 0)], highway="primary")]
            ),
            speed_field="kmh",
        )
    with pytest.raises(UnknownCrsError):
        import_roads(session, tmp_path / "ok.geojson", crs="EPSG:999999")


@pytest.mark.parametrize(
    ("value", "speed"),
    [
        ("50", 50.0),
        ("30 mph", 48.28032),
        ("40;60", 40.0),
        ("none", None),
        ("signals", None),
        (0, None),
        (500, None),
        (None, None),
        (70, 70.0),
        ("80 km/h", 80.0),
    ],
)
def test_parse_speed_reads_osm_maxspeed(value: Any, speed: float | None) -> None:
    assert parse_speed(value) == (None if speed is None else pytest.approx(speed))


def test_parse_class_and_oneway() -> None:
    assert parse_class("Primary_Link") == "primary"
    assert parse_class("living_street") == "residential"
    assert parse_class(float("nan")) is None
    assert parse_oneway("yes") == (True, False)
    assert parse_oneway("-1") == (True, True)
    assert parse_oneway("no") == (False, False)


def test_cli_import_is_a_dry_run_without_commit(
    osm_file: Path, tmp_path: Path, cli: Cli, engine: Any
) -> None:
    with engine.connect() as connection:
        before = connection.execute(sa.text("SELECT count(*) FROM roads")).scalar_one()
    result = cli("roads", "import", str(osm_file))
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "segments after noding" in result.output
    bad = cli("roads", "import", str(tmp_path / "missing.geojson"))
    assert bad.exit_code == 2 and "no such file" in bad.output
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM roads")).scalar_one() == before


def test_shapefile_with_prj_imports_and_without_prj_needs_crs(
    session: Session, tmp_path: Path
) -> None:
    line = LineString([lonlat(0, 0), lonlat(0, 400)])
    frame = gpd.GeoDataFrame(
        {"highway": ["secondary"], "maxspeed": ["40"]}, geometry=[line], crs=4326
    )
    frame.to_file(tmp_path / "roads.shp")
    report = import_roads(session, tmp_path / "roads.shp")
    (road,) = roads(session)
    assert report.lines == 1 and road.speed_kmh == 40.0
    (tmp_path / "roads.prj").unlink()
    with pytest.raises(ValidationError, match="pass --crs"):
        import_roads(session, tmp_path / "roads.shp")
    assert import_roads(session, tmp_path / "roads.shp", crs="EPSG:4326").lines == 1
