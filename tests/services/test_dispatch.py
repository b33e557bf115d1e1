"""Nearest responders by distance against a brute-force geodesic computation, and AVL updates."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from pyproj import Geod
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, OutsideCoverageError, UnknownCodeError, ValidationError
from gis.geo import checked_wgs84
from gis.layers.base import utcnow
from gis.layers.categories import Platform, parse_platform
from gis.layers.units import ResponderUnit, UnitStatus, UnitType, unit_track
from gis.services import dispatch
from gis.services.dispatch import RankBy
from tests.conftest import count
from tests.services.dispatch_fixtures import add_regions, add_unit, lonlat

GEOD = Geod(ellps="WGS84")
PLATFORM_OF = {
    UnitType.POLICE_STATION: Platform.GOVERNANCE,
    UnitType.TRAFFIC_POLICE: Platform.GOVERNANCE,
    UnitType.EMERGENCY_TEAM: Platform.GOVERNANCE,
    UnitType.MARKET_OFFICE: Platform.MARKET,
    UnitType.ENFORCEMENT_SQUAD: Platform.ENFORCEMENT,
    UnitType.SERVICE_CENTRE: Platform.SERVICE,
}


@pytest.fixture
def random_units(session: Session) -> list[ResponderUnit]:
    """Sixty units of every type and status scattered over 12 km × 12 km (seeded)."""
    add_regions(session)
    rng = random.Random(4)
    units = []
    for index in range(60):
        unit_type = rng.choice(list(UnitType))
        units.append(
            add_unit(
                session,
                f"99U{index:03d}",
                rng.uniform(-6000, 6000),
                rng.uniform(-6000, 6000),
                unit_type=unit_type.value,
                platform=PLATFORM_OF[unit_type].value,
                status=rng.choice(list(UnitStatus)).value,
            )
        )
    return units


def brute_force(
    session: Session,
    lon: float,
    lat: float,
    *,
    k: int,
    kind: dispatch.UnitKind,
    available_only: bool,
) -> list[tuple[int, float]]:
    """Every unit in the database that passes the filters, ranked by pyproj's geodesic."""
    ranked = []
    for unit in session.scalars(sa.select(ResponderUnit)):
        if kind.platform is not None and unit.platform != kind.platform.value:
            continue
        if kind.unit_type is not None and unit.unit_type != kind.unit_type.value:
            continue
        if available_only and unit.status != UnitStatus.AVAILABLE.value:
            continue
        point = to_shape(unit.geom)
        _, _, distance = GEOD.inv(lon, lat, point.x, point.y)
        ranked.append((float(distance), unit.id))
    ranked.sort()
    return [(unit_id, distance) for distance, unit_id in ranked[:k]]


# (the kind of unit, available only)
FILTERS = [
    (dispatch.UnitKind(None, None), True),
    (dispatch.UnitKind(None, None), False),
    (dispatch.UnitKind(Platform.GOVERNANCE, None), True),
    (dispatch.UnitKind(Platform.MARKET, None), False),
    (dispatch.UnitKind(None, UnitType.POLICE_STATION), True),
    (dispatch.UnitKind(None, UnitType.SERVICE_CENTRE), False),
    (dispatch.UnitKind(Platform.GOVERNANCE, UnitType.TRAFFIC_POLICE), True),
    # Contradictory filters: nothing matches, and that is an empty answer, not an error.
    (dispatch.UnitKind(Platform.MARKET, UnitType.POLICE_STATION), False),
]


@pytest.mark.parametrize(
    ("kind", "available_only"),
    FILTERS,
    ids=[f"{kind.platform}-{kind.unit_type}-{available}" for kind, available in FILTERS],
)
def test_nearest_by_distance_equals_brute_force_geodesic(
    session: Session,
    random_units: list[ResponderUnit],
    kind: dispatch.UnitKind,
    available_only: bool,
) -> None:
    rng = random.Random(7)
    for _ in range(15):
        lon, lat = lonlat(rng.uniform(-8000, 8000), rng.uniform(-8000, 8000))
        k = rng.choice([1, 3, 5, 12, 50])
        result = dispatch.nearest_responders(
            session, lon=lon, lat=lat, k=k, kind=kind, available_only=available_only
        )
        expected = brute_force(session, lon, lat, k=k, kind=kind, available_only=available_only)
        assert [r.unit.id for r in result.units] == [unit_id for unit_id, _ in expected]
        for ranked, (_, distance) in zip(result.units, expected, strict=True):
            assert ranked.distance_m == pytest.approx(distance, abs=0.01)
            assert ranked.eta_s is None and ranked.reachable is None


@pytest.mark.parametrize("k", [0, 51, -1])
def test_k_outside_one_to_fifty_is_rejected(session: Session, k: int) -> None:
    with pytest.raises(ValidationError, match="k must be between 1 and 50"):
        dispatch.nearest_responders(session, lon=117.5, lat=30.5, k=k)


def test_unknown_platform_and_unit_type_name_the_known_ones() -> None:
    with pytest.raises(UnknownCodeError, match="known platforms: governance"):
        parse_platform("police")
    with pytest.raises(UnknownCodeError, match="police_station"):
        dispatch.parse_unit_type("sheriff")


def test_swapped_coordinates_are_rejected_before_any_query() -> None:
    with pytest.raises(ValidationError, match="swapped"):
        checked_wgs84(30.5, 117.5, None)


def test_gcj02_input_is_converted_to_wgs84() -> None:
    lon, lat, _ = checked_wgs84(117.505, 30.498, "GCJ-02")
    # GCJ-02 is a few hundred metres off WGS84 here; the converted point moved accordingly.
    _, _, shift = GEOD.inv(117.505, 30.498, lon, lat)
    assert 100 < shift < 1000


def test_avl_fix_moves_unit_keeps_track_and_sets_updated_at(session: Session) -> None:
    add_regions(session)
    unit = add_unit(session, "99AVL1", 0, 0)
    before = unit.updated_at
    lon, lat = lonlat(300, 400)
    updated, moved = dispatch.update_unit(
        session, unit.id, status=UnitStatus.BUSY, position=(lon, lat)
    )
    assert moved and updated.status == "busy" and updated.updated_at > before
    point = to_shape(updated.geom)
    assert (point.x, point.y) == pytest.approx((lon, lat))
    # A late fix taken before the newest one is logged but does not move the unit back.
    late = utcnow() - timedelta(minutes=5)
    _, moved_late = dispatch.update_unit(
        session, unit.id, position=lonlat(-300, 0), recorded_at=late
    )
    assert not moved_late
    assert to_shape(unit.geom).x == pytest.approx(lon)
    track = unit_track(session, unit.id)
    assert len(track) == 2 and track[0].recorded_at == late


def test_avl_fix_far_outside_the_county_is_rejected_and_writes_nothing(session: Session) -> None:
    add_regions(session)
    unit = add_unit(session, "99AVL2", 0, 0)
    fixes = count(session, "unit_positions")
    with pytest.raises(OutsideCoverageError, match="km from every town"):
        dispatch.update_unit(session, unit.id, status=UnitStatus.BUSY, position=lonlat(40_000, 0))
    assert count(session, "unit_positions") == fixes
    session.refresh(unit)
    assert unit.status == "available"


def test_avl_fix_just_outside_a_town_is_accepted(session: Session) -> None:
    add_regions(session)
    unit = add_unit(session, "99AVL3", 0, 0)
    _, moved = dispatch.update_unit(session, unit.id, position=lonlat(-15_000, 0))
    assert moved


def test_update_of_unknown_unit_is_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError):
        dispatch.update_unit(session, 987654321, status=UnitStatus.BUSY)


def test_update_without_changes_is_rejected(session: Session) -> None:
    with pytest.raises(ValidationError, match="nothing to change"):
        dispatch.update_unit(session, 1)


def test_rank_by_distance_is_the_default() -> None:
    assert RankBy("distance") is RankBy.DISTANCE
