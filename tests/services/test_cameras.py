"""Camera views (sectors in metres), what sees a place, grid coverage, and camera alerts."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, Polygon
from shapely.ops import unary_union
from sqlalchemy.orm import Session

from gis.errors import (
    ConflictError,
    NotFoundError,
    OutsideCoverageError,
    UnknownCodeError,
    ValidationError,
)
from gis.layers.cameras import CameraKind, CameraStatus, cameras_seeing
from gis.services import cameras
from tests.conftest import Cli, count
from tests.services.dispatch_fixtures import (
    TOWN,
    add_grid,
    add_regions,
    add_road,
    camera_kwargs,
    lonlat,
    to_utm,
    to_wgs,
)

GEOD = Geod(ellps="WGS84")


def ahead(lon: float, lat: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lon, lat) along ``bearing``."""
    out_lon, out_lat, _ = GEOD.fwd(lon, lat, bearing, metres)
    return float(out_lon), float(out_lat)


def seen_by(session: Session, lon: float, lat: float) -> list[str]:
    return [camera.code for camera, _, _ in cameras_seeing(session, lon, lat)]


@pytest.fixture
def county(session: Session) -> None:
    add_regions(session)


def test_fixed_camera_sees_ahead_within_range_only(session: Session, county: None) -> None:
    camera = cameras.create_camera(
        session, **camera_kwargs("99C-FIX", 0, 0, heading_deg=90.0, fov_deg=60.0, range_m=200.0)
    )
    lon, lat = lonlat(0, 0)
    assert camera.town_code == TOWN
    assert seen_by(session, *ahead(lon, lat, 90, 150)) == ["99C-FIX"]
    assert seen_by(session, *ahead(lon, lat, 115, 150)) == ["99C-FIX"]  # inside the 60° angle
    assert seen_by(session, *ahead(lon, lat, 270, 50)) == []  # behind
    assert seen_by(session, *ahead(lon, lat, 130, 100)) == []  # outside the angle
    assert seen_by(session, *ahead(lon, lat, 90, 210)) == []  # beyond range


def test_sector_crossing_north_sees_both_sides_of_north(session: Session, county: None) -> None:
    cameras.create_camera(
        session, **camera_kwargs("99C-N", 0, 0, heading_deg=350.0, fov_deg=40.0, range_m=300.0)
    )
    lon, lat = lonlat(0, 0)
    for bearing in (335, 345, 0, 5, 9):
        assert seen_by(session, *ahead(lon, lat, bearing, 250)) == ["99C-N"], bearing
    for bearing in (325, 15, 90, 170):
        assert seen_by(session, *ahead(lon, lat, bearing, 250)) == [], bearing


def test_dome_sees_all_round_and_seeing_is_nearest_first_with_bearing(
    session: Session, county: None
) -> None:
    cameras.create_camera(
        session, **camera_kwargs("99C-DOME", 0, 0, kind=CameraKind.DOME, range_m=150.0)
    )
    cameras.create_camera(
        session, **camera_kwargs("99C-FAR", -200, 0, heading_deg=90.0, fov_deg=30.0, range_m=400)
    )
    cameras.create_camera(
        session,
        **camera_kwargs("99C-OFF", 10, 0, kind=CameraKind.DOME, status=CameraStatus.OFFLINE),
    )
    lon, lat = lonlat(0, 0)
    target = ahead(lon, lat, 90, 100)
    found = cameras_seeing(session, *target)
    assert [c.code for c, _, _ in found] == ["99C-DOME", "99C-FAR"]
    assert found[0][1] == pytest.approx(100, abs=0.01)
    assert found[0][2] == pytest.approx(90, abs=0.05)  # bearing camera → point
    assert seen_by(session, *ahead(lon, lat, 200, 100)) == ["99C-DOME"]  # behind a fixed one


def test_changing_heading_refreshes_the_view(session: Session, county: None) -> None:
    cameras.create_camera(
        session, **camera_kwargs("99C-TURN", 0, 0, heading_deg=0.0, fov_deg=30.0, range_m=200)
    )
    lon, lat = lonlat(0, 0)
    east = ahead(lon, lat, 90, 100)
    assert seen_by(session, *east) == []
    cameras.update_camera(session, "99C-TURN", {"heading_deg": 90.0})
    assert seen_by(session, *east) == ["99C-TURN"]
    cameras.update_camera(session, "99C-TURN", {"lon": lonlat(1000, 0)[0], "lat": lat})
    assert seen_by(session, *east) == []
    cameras.update_camera(session, "99C-TURN", {"kind": "ptz"})
    camera = cameras.get_camera(session, "99C-TURN")
    assert camera.fov_deg == 360.0


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"heading_deg": 360.0}, "heading_deg"),
        ({"heading_deg": -5.0}, "heading_deg"),
        ({"fov_deg": 0.0}, "fov_deg"),
        ({"fov_deg": 361.0}, "fov_deg"),
        ({"range_m": 0.0}, "range_m"),
        ({"range_m": 50_000.0}, "range_m"),
        ({"range_m": float("nan")}, "finite"),
    ],
)
def test_bad_view_fields_are_rejected_and_nothing_written(
    session: Session, county: None, fields: dict[str, float], says: str
) -> None:
    before = count(session, "cameras")
    with pytest.raises(ValidationError, match=says):
        cameras.create_camera(session, **camera_kwargs("99C-BAD", 0, 0, **fields))
    assert count(session, "cameras") == before


def test_camera_rules_on_codes_towns_and_places(session: Session, county: None) -> None:
    cameras.create_camera(session, **camera_kwargs("99C-ONE", 0, 0))
    with pytest.raises(ConflictError):
        cameras.create_camera(session, **camera_kwargs("99C-ONE", 10, 0))
    with pytest.raises(UnknownCodeError):
        cameras.create_camera(session, **camera_kwargs("99C-TWO", 0, 0, town_code="nowhere"))
    with pytest.raises(OutsideCoverageError):
        cameras.create_camera(session, **camera_kwargs("99C-FAR", 60_000, 0))
    with pytest.raises(NotFoundError):
        cameras.update_camera(session, "99C-NONE", {"heading_deg": 10.0})
    with pytest.raises(ValidationError, match="both lon and lat"):
        cameras.update_camera(session, "99C-ONE", {"lon": 117.5})


def test_view_centre_is_half_range_ahead_for_fixed_and_the_spot_for_domes(
    session: Session, county: None
) -> None:
    fixed = cameras.create_camera(
        session, **camera_kwargs("99C-CTR", 0, 0, heading_deg=45.0, range_m=300.0)
    )
    dome = cameras.create_camera(session, **camera_kwargs("99C-CTD", 0, 0, kind=CameraKind.DOME))
    lon, lat = lonlat(0, 0)
    assert cameras.view_centre(fixed) == pytest.approx(ahead(lon, lat, 45, 150))
    assert cameras.view_centre(dome) == pytest.approx((lon, lat))


def test_grid_coverage_matches_shapely_in_utm_50n(session: Session, county: None) -> None:
    square = Polygon([(0, 0), (1000, 0), (1000, 1000), (0, 1000)])
    add_grid(session, "99G-COV", square)
    add_road(session, [(-200, 500), (1200, 500)], 1, 2, speed_kmh=36)
    add_road(session, [(500, -100), (500, 1100)], 3, 4, speed_kmh=36)
    specs = [
        camera_kwargs("99C-G1", 100, 500, heading_deg=90.0, fov_deg=50.0, range_m=600.0),
        camera_kwargs("99C-G2", 500, 500, kind=CameraKind.DOME, range_m=250.0),  # overlaps G1
        camera_kwargs("99C-G3", 1100, 1100, kind=CameraKind.PTZ, range_m=300.0),  # half outside
        camera_kwargs(
            "99C-G4", 200, 200, kind=CameraKind.DOME, range_m=400, status=CameraStatus.OFFLINE
        ),
    ]
    for spec in specs:
        cameras.create_camera(session, **spec)
    result = cameras.grid_coverage(session, "99G-COV")

    # The same views, measured independently with shapely in EPSG:32650.
    views = [
        cameras.view_polygon(
            spec.get("kind", CameraKind.FIXED),  # type: ignore[arg-type]
            spec["lon"],  # type: ignore[arg-type]
            spec["lat"],  # type: ignore[arg-type]
            spec.get("heading_deg", 0.0),  # type: ignore[arg-type]
            spec.get("fov_deg", 60.0),  # type: ignore[arg-type]
            spec["range_m"],  # type: ignore[arg-type]
        )
        for spec in specs[:3]
    ]
    grid_m = to_utm(to_wgs(square))
    seen_m = unary_union([to_utm(v) for v in views])
    roads_m = [
        to_utm(to_wgs(LineString(line))).intersection(grid_m)
        for line in ([(-200, 500), (1200, 500)], [(500, -100), (500, 1100)])
    ]
    expected_area = grid_m.intersection(seen_m).area
    expected_road = sum(road.intersection(seen_m).length for road in roads_m)
    assert result.cameras == 3
    assert result.area_m2 == pytest.approx(grid_m.area, rel=1e-6)
    assert result.covered_m2 == pytest.approx(expected_area, rel=1e-6)
    assert result.area_share == pytest.approx(expected_area / grid_m.area, rel=1e-6)
    assert result.road_m == pytest.approx(sum(r.length for r in roads_m), rel=1e-6)
    assert result.covered_road_m == pytest.approx(expected_road, rel=1e-6)
    blind = to_utm(shapely.from_wkb(result.blind_spots))
    assert blind.area == pytest.approx(grid_m.area - expected_area, rel=1e-5)


def test_grid_without_cameras_or_roads_is_uncovered(session: Session, county: None) -> None:
    add_grid(session, "99G-NONE", Polygon([(3000, 3000), (3500, 3000), (3500, 3500), (3000, 3500)]))
    result = cameras.grid_coverage(session, "99G-NONE")
    assert result.cameras == 0 and result.covered_m2 == 0 and result.area_share == 0
    assert result.road_share is None
    assert to_utm(shapely.from_wkb(result.blind_spots)).area == pytest.approx(
        result.area_m2, rel=1e-6
    )


def test_coverage_by_grid_lists_worst_first(session: Session, county: None) -> None:
    add_grid(session, "99G-A", Polygon([(0, 0), (500, 0), (500, 500), (0, 500)]))
    add_grid(session, "99G-B", Polygon([(500, 0), (1000, 0), (1000, 500), (500, 500)]))
    cameras.create_camera(
        session, **camera_kwargs("99C-A", 250, 250, kind=CameraKind.DOME, range_m=200)
    )
    rows = cameras.coverage_by_grid(session, town_code=TOWN)
    assert [r.grid_code for r in rows] == ["99G-B", "99G-A"]
    assert rows[0].area_share == 0 and rows[1].area_share > 0.4
    with pytest.raises(NotFoundError):
        cameras.grid_coverage(session, "99G-NOPE")


def test_cli_coverage_prints_a_table_and_refuses_unknown_towns(cli: Cli) -> None:
    result = cli("cameras", "coverage", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "worst first" in result.output
    unknown = cli("cameras", "coverage", "--town", "nowhere")
    assert unknown.exit_code == 2 and "unknown town" in unknown.output


def test_demo_county_coverage_is_consistent(session: Session, demo: dict[str, object]) -> None:
    import sqlalchemy as sa

    town = session.execute(
        sa.text("SELECT code FROM regions WHERE level = 'town' ORDER BY code LIMIT 1")
    ).scalar_one()
    rows = cameras.coverage_by_grid(session, town_code=town)
    assert rows and all(r.town_code == town for r in rows)
    shares = [r.area_share for r in rows]
    assert shares == sorted(shares)  # worst first
    assert all(0 <= s <= 1 for s in shares) and any(s > 0 for s in shares)
    for row in rows[:3] + rows[-3:]:
        full = cameras.grid_coverage(session, row.grid_code)
        blind = to_utm(shapely.from_wkb(full.blind_spots))
        # Blind spots and the seen part add up to the grid (areas in metres, UTM 50N here).
        assert blind.area + full.covered_m2 == pytest.approx(full.area_m2, rel=1e-3)
        assert full.covered_road_m <= full.road_m + 1e-6
