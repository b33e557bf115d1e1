"""Point → grid: inside, shared edge, shared vertex, snapped, town/county queues, out of area."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy.orm import Session

from gis.errors import OutsideCoverageError
from gis.geo import geodesic_distance_m, to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from gis.layers.grids import Grid
from gis.layers.incidents import LocationQuality
from gis.services.assignment import locate
from tests.services.intake_fixtures import (
    COUNTY,
    GRID_A,
    GRID_B,
    GRID_D,
    TOWN_1,
    TOWN_2,
    VILLAGE_1,
    Area,
    area,
)

__all__ = ["area"]  # the fixture, imported so pytest finds it


def test_point_strictly_inside_a_grid_is_inside_with_its_places_and_member(
    session: Session, area: Area
) -> None:
    found = locate(session, 110.005, 30.005)
    assert found.grid_code == GRID_A
    assert found.quality is LocationQuality.INSIDE
    assert (found.village_code, found.town_code, found.county_code) == (VILLAGE_1, TOWN_1, COUNTY)
    assert (found.village_name, found.town_name) == ("一村", "一号镇")
    assert found.member_id == area.member_a and found.member_name == "张网格"
    assert found.snap_distance_m is None


def test_point_on_shared_edge_goes_to_lowest_code(session: Session, area: Area) -> None:
    found = locate(session, 110.01, 30.005)  # the edge between A and B
    assert found.grid_code == GRID_A < GRID_B
    assert found.quality is LocationQuality.ON_EDGE


def test_point_on_vertex_shared_by_three_grids_goes_to_lowest_code(
    session: Session, area: Area
) -> None:
    found = locate(session, 110.01, 30.01)  # A, B and C meet here
    assert found.grid_code == GRID_A
    assert found.quality is LocationQuality.ON_EDGE


def test_point_just_outside_every_grid_is_snapped_to_the_nearest(
    session: Session, area: Area
) -> None:
    # 0.0003° east of D's east edge (outside every town): about 29 m at 30°N.
    found = locate(session, 110.0403, 30.005)
    assert found.grid_code == GRID_D
    assert found.quality is LocationQuality.SNAPPED
    expected = geodesic_distance_m(110.04, 30.005, 110.0403, 30.005)
    assert found.snap_distance_m == pytest.approx(expected, abs=0.01)
    assert found.town_code == TOWN_2


def test_snap_distance_is_configurable(session: Session, area: Area) -> None:
    found = locate(session, 110.0403, 30.005, snap_m=10.0)
    assert found.quality is LocationQuality.OUTSIDE
    assert found.grid_code is None


def test_point_in_a_gap_inside_a_town_goes_to_the_town_queue(session: Session, area: Area) -> None:
    found = locate(session, 110.015, 30.015)  # T1's quadrant without a grid, ~500 m from any
    assert found.quality is LocationQuality.OUTSIDE
    assert found.grid_id is None and found.member_id is None
    assert (found.town_code, found.county_code) == (TOWN_1, COUNTY)
    assert found.outside_distance_m == 0.0


def test_point_in_the_county_but_outside_every_town_goes_to_the_county_queue(
    session: Session, area: Area
) -> None:
    found = locate(session, 110.02, 29.95)
    assert found.quality is LocationQuality.OUTSIDE
    assert found.town_code is None and found.county_code == COUNTY


def test_point_beyond_the_county_goes_to_the_nearest_town_within_the_margin(
    session: Session, area: Area
) -> None:
    found = locate(session, 110.2, 30.3)
    assert found.quality is LocationQuality.OUTSIDE
    assert found.town_code == TOWN_2 and found.county_code == COUNTY
    # The nearest point of T2 is its north-east corner (110.04, 30.02).
    expected = geodesic_distance_m(110.04, 30.02, 110.2, 30.3)
    assert found.outside_distance_m == pytest.approx(expected, rel=1e-6)


def test_point_far_from_every_town_is_outside_coverage_with_the_distance(
    session: Session, area: Area
) -> None:
    with pytest.raises(OutsideCoverageError, match=r"not in the service area.*km away"):
        locate(session, 110.2, 30.3, coverage_margin_m=10_000)
    with pytest.raises(OutsideCoverageError) as caught:
        locate(session, 80.0, 45.0)
    assert caught.value.extra["distance_m"] > 1_000_000


def test_grid_version_in_force_at_the_date_is_used(session: Session, area: Area) -> None:
    old = session.query(Grid).filter(Grid.code == GRID_A).one()
    change = datetime(2026, 6, 1, tzinfo=UTC)
    old.valid_to = change
    session.flush()
    # Version 2 of A shrinks to its western half; B grows to take the eastern half.
    session.add(
        Grid(
            code=GRID_A,
            version=2,
            name="网格T1-A v2",
            village_code=VILLAGE_1,
            town_code=TOWN_1,
            geom=from_shape(MultiPolygon([box(110.00, 30.00, 110.005, 30.01)]), srid=4326),
            valid_from=change,
        )
    )
    session.flush()
    before = locate(session, 110.003, 30.005, at=datetime(2026, 1, 1, tzinfo=UTC))
    after = locate(session, 110.003, 30.005, at=datetime(2026, 7, 1, tzinfo=UTC))
    assert before.grid_code == after.grid_code == GRID_A
    assert before.grid_id == old.id and after.grid_id != old.id
    assert after.grid_name == "网格T1-A v2"
    # East of the new edge A no longer covers the point after the change: the gap snaps.
    east_before = locate(session, 110.0075, 30.005, at=datetime(2026, 1, 1, tzinfo=UTC))
    east_after = locate(session, 110.0075, 30.005, at=datetime(2026, 7, 1, tzinfo=UTC))
    assert east_before.quality is LocationQuality.INSIDE
    assert east_after.quality is LocationQuality.OUTSIDE


def test_before_any_grid_existed_the_point_is_outside(session: Session, area: Area) -> None:
    found = locate(session, 110.005, 30.005, at=datetime(2019, 1, 1, tzinfo=UTC))
    assert found.quality is LocationQuality.OUTSIDE and found.town_code == TOWN_1


@pytest.mark.parametrize("crs", ["GCJ-02", "BD-09"])
def test_same_place_in_an_obfuscated_crs_and_wgs84_gives_the_same_grid(
    session: Session, area: Area, crs: str
) -> None:
    # Near B's western edge, so the ~500 m GCJ-02 offset would change the grid if ignored.
    lon, lat = 110.0105, 30.002
    forward = wgs84_to_gcj02 if crs == "GCJ-02" else wgs84_to_bd09
    sent_lon, sent_lat = forward(lon, lat)
    back_lon, back_lat = to_wgs84(sent_lon, sent_lat, crs)
    assert geodesic_distance_m(lon, lat, back_lon, back_lat) < 0.01
    assert locate(session, back_lon, back_lat).grid_code == locate(session, lon, lat).grid_code
    assert locate(session, sent_lon, sent_lat).grid_code != GRID_B  # unconverted: wrong grid
