"""Dispatch: the units nearest to a place or to a case, by distance or by drive time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from gis.api.deps import PlatformDep, SessionDep, SettingsDep
from gis.api.errors import SWAPPED, domain_errors
from gis.api.schemas.dispatch import NearestRead, SuggestedUnitsRead
from gis.api.schemas.types import (
    MAX_ID,
    UNIT_TYPES,
    CrsQuery,
    LatQuery,
    LonQuery,
    one_of,
)
from gis.api.security import DISPATCH, allow, check_case
from gis.geo import checked_wgs84
from gis.layers.incidents import get_incident
from gis.services import dispatch
from gis.services.access import Principal
from gis.services.dispatch import MAX_K, RankBy
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


@router.get("/dispatch/nearest", response_model=NearestRead, responses=domain_errors(SWAPPED))
def nearest(
    *,
    session: SessionDep,
    settings: SettingsDep,
    _: Dispatcher,
    platform: PlatformDep,
    lon: LonQuery,
    lat: LatQuery,
    crs: CrsQuery = None,
    unit_type: Annotated[
        str | None,
        Query(max_length=60, description="Unit type", json_schema_extra=one_of(UNIT_TYPES)),
    ] = None,
    ranking: RankingDep,
) -> NearestRead:
    """The k units nearest to a place, with distance and (by drive time) ETA and route length."""
    wgs_lon, wgs_lat = checked_wgs84(lon, lat, crs)[:2]
    result = dispatch.nearest_responders(
        session,
        lon=wgs_lon,
        lat=wgs_lat,
        platform=platform,
        unit_type=dispatch.parse_unit_type(unit_type),
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
