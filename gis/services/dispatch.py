"""Dispatch: who can get to a place first (by distance or by drive time), and unit tracking."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Unpack

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, Point
from sqlalchemy.orm import Session

from gis.errors import (
    OutsideCoverageError,
    UnknownCodeError,
    ValidationError,
)
from gis.layers.base import parse_key, point_lonlat, utcnow
from gis.layers.categories import Category, Platform, get_category
from gis.layers.incidents import Incident, get_incident
from gis.layers.regions import Region, RegionLevel
from gis.layers.units import (
    ResponderUnit,
    UnitFilters,
    UnitPosition,
    UnitStatus,
    UnitType,
    get_unit,
    latest_fix_at,
    nearest_first,
    nearest_units,
    nearest_units_query,
)
from gis.queries import Flow, Query, Row
from gis.services.clock import check_device_time
from gis.services.routing import RouteOptions, drive_times, route_lines
from gis.settings import DEFAULT_DISPATCH_MAX_OUTSIDE_M

MAX_K = 50
# Drive time is computed for this many straight-line-nearest candidates per unit asked for.
# Measured on the x100 demo county (80 random places, 2,108 units): the fastest unit was always
# among the 4 nearest, but the 5th fastest was up to the 27th nearest, so 4 per k (20 for k=5)
# missed one of the 5 fastest in ~11 % of places; 6 per k missed none. Each extra candidate
# costs routing time (20 → 30 candidates: +0–30 %).
CANDIDATES_PER_K = 6
MIN_CANDIDATES = 20
MAX_CANDIDATES = 200


class RankBy(StrEnum):
    """How nearest units are ranked."""

    DISTANCE = "distance"
    DRIVE_TIME = "drive_time"


@dataclass(frozen=True)
class RankedUnit:
    """A unit with its straight-line distance and, when ranked by drive time, its route."""

    unit: ResponderUnit
    distance_m: float
    reachable: bool | None = None
    eta_s: float | None = None
    route_m: float | None = None
    snap_m: float | None = None
    route: LineString | None = None  # WGS84, when asked for


@dataclass(frozen=True)
class NearestResult:
    """The answer to "who is nearest to this place"."""

    lon: float
    lat: float
    by: RankBy
    units: list[RankedUnit]
    candidates: int  # how many units were considered (routed, for drive time)


def parse_unit_type(value: str | None) -> UnitType | None:
    """A unit type, or ``UnknownCodeError`` listing the known ones."""
    return parse_key(UnitType, value, "unit type")


def parse_status(value: str | None) -> UnitStatus | None:
    """A unit status, or ``UnknownCodeError`` listing the three."""
    return parse_key(UnitStatus, value, "unit status", "unit statuses")


@dataclass(frozen=True)
class UnitKind:
    """The kind of unit a search for the nearest wants: of a platform and/or of a type (None:
    any); a case wants its category's."""

    platform: Platform | None = None
    unit_type: UnitType | None = None

    def filters(self, **more: Unpack[UnitFilters]) -> UnitFilters:
        """As ``nearest_units`` takes them, with ``more`` of its filters."""
        return UnitFilters(
            unit_type=self.unit_type.value if self.unit_type else None,
            platform=self.platform.value if self.platform else None,
            **more,
        )


ANY_KIND = UnitKind()


def check_k(k: int) -> None:
    """Reject a result size outside 1–50."""
    if not 1 <= k <= MAX_K:
        raise ValidationError(f"k must be between 1 and {MAX_K}, got {k}")


def nearest_responders(
    session: Session,
    *,
    lon: float,
    lat: float,
    kind: UnitKind = ANY_KIND,
    k: int = 5,
    available_only: bool = True,
    by: RankBy = RankBy.DISTANCE,
    options: RouteOptions | None = None,
    with_routes: bool = False,
    jurisdiction_codes: Sequence[str] | None = None,
) -> NearestResult:
    """The ``k`` units of ``kind`` nearest to a WGS84 point, by geodesic distance or by drive time.

    By drive time, the straight-line-nearest candidates are routed and re-ranked; reachable
    units come first by ETA, then the unreachable ones by distance (ETA null). With
    ``with_routes`` the returned reachable units carry their route as a line. With
    ``jurisdiction_codes`` only units with jurisdiction over one of them are considered.
    """
    check_k(k)
    filters = kind.filters(available_only=available_only, jurisdiction_codes=jurisdiction_codes)
    if by is RankBy.DISTANCE:
        found = nearest_units(session, lon, lat, k=k, **filters)
        ranked = [RankedUnit(unit, distance) for unit, distance in found]
        return NearestResult(lon, lat, by, ranked, len(found))

    pool = min(max(CANDIDATES_PER_K * k, MIN_CANDIDATES), MAX_CANDIDATES)
    found = nearest_units(session, lon, lat, k=pool, **filters)
    routes = drive_times(session, lon, lat, [unit.id for unit, _ in found], options=options)
    ranked = [
        RankedUnit(
            unit,
            distance,
            routes[unit.id].reachable,
            routes[unit.id].eta_s,
            routes[unit.id].route_m,
            routes[unit.id].snap_m,
        )
        for unit, distance in found
    ]
    ranked.sort(
        key=lambda r: (
            not r.reachable,
            r.eta_s if r.eta_s is not None else 0.0,
            r.distance_m,
            r.unit.id,
        )
    )
    ranked = ranked[:k]
    if with_routes:
        lines = route_lines(session, [routes[r.unit.id] for r in ranked])
        ranked = [replace(r, route=lines.get(r.unit.id)) for r in ranked]
    return NearestResult(lon, lat, by, ranked, len(found))


def nearest_by_distance_flow(
    lon: float,
    lat: float,
    *,
    k: int = 5,
    kind: UnitKind = ANY_KIND,
    available_only: bool = True,
) -> Flow[list[Row]]:
    """``nearest_responders`` by distance as a flow (``gis.queries``) that the API runs on
    asyncpg: the ``k`` nearest units as plain rows (``PLAIN_UNIT_COLUMNS``, ``lon``, ``lat``,
    ``distance_m``), nearest first."""
    check_k(k)
    statement, params = nearest_units_query(
        lon, lat, k=k, plain=True, **kind.filters(available_only=available_only)
    )
    rows: list[Row] = yield Query(statement, params, many=True, reused=True)
    return nearest_first(rows, k, lambda row: (float(row["distance_m"]), row["id"]))


def town_jurisdiction(session: Session, town_code: str) -> list[str]:
    """The jurisdictions whose units serve a town (属地管理): the town and its county."""
    town = session.get(Region, town_code)
    if town is None or town.level != RegionLevel.TOWN.value:
        raise UnknownCodeError(f"unknown town {town_code!r}: give a town (乡镇) code")
    return [town.code] + ([town.parent_code] if town.parent_code else [])


def serving_jurisdictions(session: Session, town_codes: Iterable[str] | None) -> set[str] | None:
    """The jurisdictions whose units serve any of these towns (``town_jurisdiction`` of each:
    the towns and their counties); None (every town) gives None."""
    if town_codes is None:
        return None
    towns = sorted(town_codes)
    rows = session.execute(
        sa.select(Region.code, Region.parent_code).where(
            Region.code.in_(towns), Region.level == RegionLevel.TOWN.value
        )
    )
    return {code for row in rows for code in row if code is not None}


def case_jurisdiction(session: Session, incident: Incident) -> list[str] | None:
    """The jurisdictions whose units serve a case: its town and county (None: unknown, any)."""
    if incident.town_code is not None:
        return town_jurisdiction(session, incident.town_code)
    return [incident.county_code] if incident.county_code else None


class Exclusion(StrEnum):
    """Why a nearby unit of the right type is not offered for a case."""

    BUSY = "busy"
    OFF_DUTY = "off_duty"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"


@dataclass(frozen=True)
class ExcludedUnit:
    """A nearby unit of the case's type that is not offered, and why."""

    unit: ResponderUnit
    distance_m: float
    reason: Exclusion


@dataclass(frozen=True)
class CaseResponders:
    """Who can go to a case: the offered units by drive time, and the nearby ones excluded."""

    incident: Incident
    jurisdiction: list[str] | None
    result: NearestResult
    excluded: list[ExcludedUnit]


# How many of the straight-line-nearest units of the type are examined for exclusions.
EXCLUSION_POOL = 12


@dataclass(frozen=True)
class CaseContext:
    """A case with what choosing its units needs: its category and its jurisdiction."""

    incident: Incident
    category: Category
    jurisdiction: list[str] | None  # ``case_jurisdiction``


def case_context(session: Session, incident_id: int) -> CaseContext:
    """A case, its category and the jurisdictions serving it, read in one statement (or
    ``NotFoundError``)."""
    row = session.execute(
        sa.select(Incident, Category, Region)
        .join(Category, Category.code == Incident.category_code)
        .outerjoin(Region, Region.code == Incident.town_code)
        .options(sa.orm.defer(Region.geom))
        .where(Incident.id == incident_id)
    ).one_or_none()
    if row is None:
        get_incident(session, incident_id)  # not found: the usual error
    # ``row`` holds the three rows, so the session's identity map answers the getters below
    # without another statement (it keeps only what is referenced).
    incident = get_incident(session, incident_id)
    category = get_category(session, incident.category_code)
    return CaseContext(incident, category, case_jurisdiction(session, incident))


def case_responders(
    session: Session,
    case: CaseContext,
    *,
    k: int = 5,
    options: RouteOptions | None = None,
    with_routes: bool = True,
) -> CaseResponders:
    """The available units of the case's type with jurisdiction over its town or county,
    fastest first by drive time (what ``GET /dispatch/nearest`` answers for that type,
    platform and jurisdiction), and the nearest units left out: busy, off duty, or available
    but of another jurisdiction."""
    check_k(k)
    incident, category, jurisdiction = case.incident, case.category, case.jurisdiction
    result = _nearest_for_case(
        session,
        incident,
        category,
        k=k,
        by=RankBy.DRIVE_TIME,
        options=options,
        with_routes=with_routes,
        jurisdiction_codes=jurisdiction,
    )
    lon, lat = incident_lonlat(incident)
    offered = {r.unit.id for r in result.units}
    nearby = nearest_units(
        session,
        lon,
        lat,
        k=EXCLUSION_POOL,
        unit_type=category.unit_type,
        platform=category.platform,
        available_only=False,
    )
    excluded = []
    for unit, distance in nearby:
        if unit.id in offered:
            continue
        if unit.status == UnitStatus.OFF_DUTY.value:
            reason = Exclusion.OFF_DUTY
        elif unit.status == UnitStatus.BUSY.value:
            reason = Exclusion.BUSY
        elif jurisdiction is not None and unit.jurisdiction_code not in jurisdiction:
            reason = Exclusion.OUT_OF_JURISDICTION
        else:
            continue  # available and ours, only slower than the k offered
        excluded.append(ExcludedUnit(unit, distance, reason))
    return CaseResponders(incident, jurisdiction, result, excluded)


def incident_lonlat(incident: Incident) -> tuple[float, float]:
    """The WGS84 lon/lat of an incident."""
    return point_lonlat(incident.geom)


def _nearest_for_case(
    session: Session,
    incident: Incident,
    category: Category,
    *,
    jurisdiction_codes: Sequence[str] | None,
    **ranking: Any,
) -> NearestResult:
    """``nearest_responders`` for the unit type and platform of a case's category, at it."""
    lon, lat = incident_lonlat(incident)
    return nearest_responders(
        session,
        lon=lon,
        lat=lat,
        kind=UnitKind(Platform(category.platform), parse_unit_type(category.unit_type)),
        jurisdiction_codes=jurisdiction_codes,
        **ranking,
    )


def suggested_units(
    session: Session,
    incident_id: int,
    *,
    k: int = 5,
    available_only: bool = True,
    by: RankBy = RankBy.DISTANCE,
    options: RouteOptions | None = None,
    with_routes: bool = False,
    in_jurisdiction: bool = False,
) -> tuple[Incident, NearestResult]:
    """The units of the type an incident's category needs, nearest to it first (with
    ``in_jurisdiction``: only those of its town and county, ``case_jurisdiction``)."""
    check_k(k)
    incident = get_incident(session, incident_id)
    category = get_category(session, incident.category_code)
    result = _nearest_for_case(
        session,
        incident,
        category,
        k=k,
        available_only=available_only,
        by=by,
        options=options,
        with_routes=with_routes,
        jurisdiction_codes=case_jurisdiction(session, incident) if in_jurisdiction else None,
    )
    return incident, result


# One statement: are there towns at all, and is one within the distance? The geometry box test
# (degrees, widened generously: 1° of longitude is at least 0.5° of latitude's length below 60°)
# only lets the GiST index discard far towns; the decision is the geography distance.
_NEAR_TOWN_SQL = sa.text(
    """
    SELECT EXISTS (SELECT 1 FROM regions WHERE level = 'town') AS any_town,
           EXISTS (
               SELECT 1 FROM regions
               WHERE level = 'town'
                 AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                                       2.0 * CAST(:max_m AS float8) / 111320.0)
                 AND ST_DWithin(geom::geography,
                                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                                CAST(:max_m AS float8))
           ) AS near
    """
)


def check_near_county(
    session: Session,
    lon: float,
    lat: float,
    *,
    max_outside_m: float = DEFAULT_DISPATCH_MAX_OUTSIDE_M,
) -> None:
    """Reject a WGS84 position farther than ``max_outside_m`` from every town.

    With no towns loaded there is nothing to judge by, and the position is accepted.
    """
    row = session.execute(_NEAR_TOWN_SQL, {"lon": lon, "lat": lat, "max_m": max_outside_m}).one()
    if not row.any_town:
        return
    within = row.near
    if not within:
        raise OutsideCoverageError(
            f"position lon={lon:.6f}, lat={lat:.6f} is more than {max_outside_m / 1000:g} km from "
            "every town of the county; check the coordinates and their crs",
            lon=lon,
            lat=lat,
        )


def update_unit(
    session: Session,
    unit_id: int,
    *,
    status: UnitStatus | None = None,
    position: tuple[float, float] | None = None,
    source_crs: str = "EPSG:4326",
    recorded_at: datetime | None = None,
    max_outside_m: float = DEFAULT_DISPATCH_MAX_OUTSIDE_M,
    now: datetime | None = None,
    clock_skew_s: float = 0.0,
) -> tuple[ResponderUnit, bool]:
    """Change a unit's status and/or position (an AVL fix, WGS84); returns (unit, moved).

    Every fix is appended to the unit's track; a fix older than the newest one already stored
    (AVL can arrive out of order) joins the track but does not move the unit. ``recorded_at``
    is the device's clock, kept beside ``received_at`` (the server's ``now``) and refused when
    more than ``clock_skew_s`` ahead of it.
    """
    if status is None and position is None:
        raise ValidationError("nothing to change: give a status and/or a position (lon, lat)")
    unit = get_unit(session, unit_id)
    now = now or utcnow()
    moved = False
    if position is not None:
        lon, lat = position
        check_near_county(session, lon, lat, max_outside_m=max_outside_m)
        taken_at = recorded_at or now
        check_device_time("recorded_at", taken_at, now=now, skew_s=clock_skew_s)
        newest = latest_fix_at(session, unit_id)
        geom = from_shape(Point(lon, lat), srid=4326)
        session.add(
            UnitPosition(
                unit_id=unit_id,
                geom=geom,
                source_crs=source_crs,
                recorded_at=taken_at,
                received_at=now,
            )
        )
        if newest is None or taken_at >= newest:
            unit.geom = geom
            moved = True
    if status is not None:
        unit.status = status.value
    unit.updated_at = now
    session.flush()
    return unit, moved
