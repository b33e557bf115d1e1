"""Dispatch: the units nearest to a place or to a case, by distance or by drive time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from gis.api.deps import ClockDep, PlatformDep, SessionDep, SettingsDep, database_of
from gis.api.errors import CATEGORY, SWAPPED, domain_errors
from gis.api.hot import fast_path
from gis.api.responses import json_response
from gis.api.schemas.dispatch import NearestRead, NearestUnit, SuggestedUnitsRead
from gis.api.schemas.queue import (
    BoardRead,
    BoardUnitRead,
    QueueItemRead,
    QueueRead,
    RespondersRead,
)
from gis.api.schemas.types import (
    MAX_ID,
    CrsQuery,
    LatQuery,
    LonQuery,
    unit_type_query,
)
from gis.api.security import DISPATCH, allow, authorize, case_filter, check_case, check_town
from gis.errors import UnknownCodeError
from gis.geo import checked_wgs84
from gis.layers.categories import get_category, parse_platform
from gis.layers.incidents import Incident, get_incident
from gis.layers.regions import RegionLevel, get_region
from gis.layers.units import PLAIN_UNIT_COLUMNS
from gis.services import dispatch, queue
from gis.services.access import Principal
from gis.services.dispatch import MAX_K, RankBy
from gis.services.live import feed_position
from gis.services.mapdata import CaseFilter
from gis.services.queue import MAX_QUEUE, QueueSort
from gis.services.routing import RouteOptions
from gis.settings import Settings

router = APIRouter(tags=["dispatch"])

Dispatcher = Annotated[Principal | None, Depends(allow(*DISPATCH))]

KQuery = Annotated[int, Query(ge=1, le=MAX_K, description=f"How many units (1–{MAX_K})")]
ByQuery = Annotated[
    RankBy, Query(description="distance (geodesic) or drive_time (over the road network)")
]
AvailableQuery = Annotated[bool, Query(description="Only units whose status is available")]
RouteQuery = Annotated[
    bool, Query(description="With by=drive_time: each reachable unit's route as GeoJSON")
]


@dataclass(frozen=True)
class Ranking:
    """How a dispatch answer ranks units: how many, which, by what, with routes or not."""

    k: int
    available_only: bool
    by: RankBy
    include_route: bool

    def arguments(self, settings: Settings) -> dict[str, Any]:
        """The ranking keywords of ``nearest_responders`` and ``suggested_units``."""
        return {
            "k": self.k,
            "available_only": self.available_only,
            "by": self.by,
            "options": RouteOptions.from_settings(settings),
            "with_routes": self.include_route,
        }


def ranking(
    k: KQuery = 5,
    available_only: AvailableQuery = True,
    by: ByQuery = RankBy.DISTANCE,
    include_route: RouteQuery = False,
) -> Ranking:
    """The ranking query parameters both dispatch endpoints take."""
    return Ranking(k, available_only, by, include_route)


RankingDep = Annotated[Ranking, Depends(ranking)]


JURISDICTION = (UnknownCodeError, "jurisdiction is not a town (GET /regions?level=town)")
TownCode = Annotated[
    str, Query(min_length=1, max_length=12, pattern=r"^[0-9]+$", description="Town code (乡镇)")
]


class _PlainNearest(BaseModel):
    """The query of the common ``GET /dispatch/nearest``: by distance, no jurisdiction, no
    routes. Anything else (or anything this does not parse) is the route's to answer."""

    model_config = {"extra": "forbid"}

    lon: float
    lat: float
    crs: str | None = Field(None, max_length=32)
    k: int = Field(5, ge=1, le=MAX_K)
    platform: str | None = Field(None, max_length=40)
    unit_type: str | None = Field(None, max_length=60)
    available_only: bool = True
    by: RankBy = RankBy.DISTANCE


_DISPATCHERS = frozenset(DISPATCH)


async def _fast_nearest(request: Request) -> Response | None:
    """The nearest units by distance, answered before the router (``gis.api.hot``) by a flow
    on asyncpg — a dispatcher's most frequent question, with no worker thread and no ORM on the
    way (bench/load). The same rules and reply as ``nearest``, which serves everything else."""
    await authorize(request, _DISPATCHERS)
    try:
        query = _PlainNearest.model_validate(dict(request.query_params))
    except ValidationError:
        return None
    if query.by is not RankBy.DISTANCE:
        return None
    wgs_lon, wgs_lat = checked_wgs84(query.lon, query.lat, query.crs)[:2]
    rows = await database_of(request).run(
        dispatch.nearest_by_distance_flow(
            wgs_lon,
            wgs_lat,
            k=query.k,
            kind=dispatch.UnitKind(
                parse_platform(query.platform), dispatch.parse_unit_type(query.unit_type)
            ),
            available_only=query.available_only,
        )
    )
    units = [
        NearestUnit(
            **{name: row[name] for name in PLAIN_UNIT_COLUMNS},
            lon=row["lon"],
            lat=row["lat"],
            distance_m=round(float(row["distance_m"]), 2),
        )
        for row in rows
    ]
    return json_response(
        NearestRead(
            lon=wgs_lon, lat=wgs_lat, by=RankBy.DISTANCE, candidates=len(units), units=units
        )
    )


@router.get(
    "/dispatch/nearest",
    response_model=NearestRead,
    responses=domain_errors(SWAPPED, JURISDICTION),
)
@fast_path(_fast_nearest)
def nearest(
    *,
    session: SessionDep,
    settings: SettingsDep,
    _: Dispatcher,
    platform: PlatformDep,
    lon: LonQuery,
    lat: LatQuery,
    crs: CrsQuery = None,
    unit_type: Annotated[str | None, unit_type_query()] = None,
    jurisdiction: Annotated[
        str | None,
        Query(
            max_length=12,
            pattern=r"^[0-9]+$",
            description="Only units with jurisdiction over this town or its county (属地管理)",
        ),
    ] = None,
    ranking: RankingDep,
) -> NearestRead:
    """The k units nearest to a place, with distance and (by drive time) ETA and route length."""
    wgs_lon, wgs_lat = checked_wgs84(lon, lat, crs)[:2]
    result = dispatch.nearest_responders(
        session,
        lon=wgs_lon,
        lat=wgs_lat,
        kind=dispatch.UnitKind(platform, dispatch.parse_unit_type(unit_type)),
        jurisdiction_codes=(
            None if jurisdiction is None else dispatch.town_jurisdiction(session, jurisdiction)
        ),
        **ranking.arguments(settings),
    )
    return NearestRead.of(result)


@router.get("/incidents/{incident_id}/suggested-units", response_model=SuggestedUnitsRead)
def suggested_units(
    session: SessionDep,
    settings: SettingsDep,
    principal: Dispatcher,
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id")],
    ranking: RankingDep,
) -> SuggestedUnitsRead:
    """Units of the type the case's category needs, nearest (or fastest) first."""
    check_case(principal, get_incident(session, incident_id))
    incident, result = dispatch.suggested_units(
        session,
        incident_id,
        **ranking.arguments(settings),
    )
    base = NearestRead.of(result)
    return SuggestedUnitsRead(
        **base.model_dump(),
        incident_id=incident.id,
        category_code=incident.category_code,
        town_code=incident.town_code,
        current_unit_id=incident.unit_id,
    )


@router.get(
    "/incidents/{incident_id}/responders",
    response_model=RespondersRead,
)
def responders(
    session: SessionDep,
    settings: SettingsDep,
    principal: Dispatcher,
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id")],
    k: KQuery = 5,
    include_route: Annotated[
        bool, Query(description="Each reachable unit's route as GeoJSON")
    ] = True,
) -> RespondersRead:
    """Who can go to a case: the available units of its category's type with jurisdiction over
    its town or county, fastest first by drive time (as `GET /dispatch/nearest?by=drive_time`
    with that unit type, platform and `jurisdiction`), and the nearest units left out with
    why: `busy`, `off_duty`, `out_of_jurisdiction`."""
    case = dispatch.case_context(session, incident_id)
    check_case(principal, case.incident)
    found = dispatch.case_responders(
        session,
        case,
        k=k,
        options=RouteOptions.from_settings(settings),
        with_routes=include_route,
    )
    return RespondersRead.of_case(found)


def _town(session: SessionDep, principal: Principal | None, town: str) -> str:
    """A town the caller may see, else 404 (unknown, or another town's: the same answer)."""
    region = get_region(session, town, level=RegionLevel.TOWN)
    check_town(principal, region.code, f"town with code {town!r}")
    return region.code


@router.get(
    "/dispatch/queue",
    response_model=QueueRead,
    responses=domain_errors(CATEGORY),
)
def dispatch_queue(
    session: SessionDep,
    principal: Dispatcher,
    now: ClockDep,
    town: TownCode,
    platform: PlatformDep,
    category: Annotated[
        str | None, Query(max_length=50, description="Only this category's cases")
    ] = None,
    sort: Annotated[
        QueueSort, Query(description="deadline (nearest first) or age (oldest report first)")
    ] = QueueSort.DEADLINE,
    limit: Annotated[
        int, Query(ge=1, le=MAX_QUEUE, description=f"Cases to list (1–{MAX_QUEUE})")
    ] = 200,
) -> QueueRead:
    """The active cases of a town that need a person — unassigned, outside every grid,
    escalated, overdue, reworked, raised from a camera, or new — with counts per bucket; the
    dispatcher's console shows it and follows `GET /events/stream?after=` from `after`."""
    code = _town(session, principal, town)
    if category is not None:
        get_category(session, category)
    # The feed id first: an event committed while the queue is read is replayed, never lost.
    after, _ = feed_position(session, None)
    found = queue.dispatch_queue(
        session,
        town_code=code,
        now=now,
        cases=CaseFilter(platform.value if platform else None, category),
        sort=sort,
        limit=limit,
        scope=case_filter(principal, Incident),
    )
    return QueueRead(
        town_code=found.town_code,
        now=found.now,
        after=after,
        counts=found.counts,
        total=found.total,
        items=[QueueItemRead.model_validate(item) for item in found.items],
    )


@router.get("/dispatch/board", response_model=BoardRead)
def unit_board(session: SessionDep, principal: Dispatcher, town: TownCode) -> BoardRead:
    """Every unit of a town (its own, and the county's standing in it): status, when its last
    position was taken, and how many active cases it holds. Change the status of a unit of
    `jurisdiction` with `PATCH /units/{id}`."""
    code = _town(session, principal, town)
    return BoardRead(
        town_code=code,
        jurisdiction=dispatch.town_jurisdiction(session, code),
        units=[
            BoardUnitRead.model_validate(u, from_attributes=True)
            for u in queue.unit_board(session, town_code=code)
        ],
    )
