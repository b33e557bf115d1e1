"""Point → grid, village, town, county and grid member, as of a date (MapIt's point lookup)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from gis.api.deps import database_of, settings_of
from gis.api.errors import OUTSIDE, SWAPPED, domain_errors
from gis.api.hot import hot_path, parse_query, query_parameters
from gis.api.responses import json_response
from gis.api.schemas.incidents import LocateRead, SourcePoint
from gis.api.schemas.types import CRS_NAMES, LAT_RANGE, LON_RANGE, Time, one_of
from gis.api.security import BEARER, authorize
from gis.geo import checked_wgs84
from gis.layers.users import Role
from gis.services.assignment import locate_flow

router = APIRouter(tags=["locate"])


EVERY_ROLE = frozenset(Role)


class LocateQuery(BaseModel):
    """The query of ``GET /locate`` (parsed by the endpoint itself: it is a hot path)."""

    lon: float = Field(description="Longitude in `crs`", json_schema_extra=LON_RANGE)
    lat: float = Field(description="Latitude in `crs`", json_schema_extra=LAT_RANGE)
    crs: str = Field(
        "EPSG:4326",
        max_length=32,
        description="EPSG:4326 (default), EPSG:4490, GCJ-02 or BD-09",
        json_schema_extra=one_of(CRS_NAMES),
    )
    at: Time | None = Field(
        None, description="Use the grid versions in force at this instant (default now)"
    )


@router.get(
    "/locate",
    response_model=LocateRead,
    openapi_extra={**BEARER, "parameters": query_parameters(LocateQuery)},
    responses=domain_errors(SWAPPED, OUTSIDE),
)
@hot_path
async def locate_point(request: Request) -> Response:
    """The grid covering a point (lowest code on an edge; snapped or outside otherwise).

    Every role may look a point up; it names the grid member, so not anonymous callers.
    """
    await authorize(request, EVERY_ROLE)
    query = parse_query(LocateQuery, request)
    at = query.at
    wgs_lon, wgs_lat, parsed = checked_wgs84(query.lon, query.lat, query.crs)
    when = at or datetime.now(UTC)
    settings = settings_of(request)
    found = await database_of(request).run(
        locate_flow(
            wgs_lon,
            wgs_lat,
            at=when,
            snap_m=settings.snap_meters,
            coverage_margin_m=settings.coverage_margin_m,
        )
    )
    source = SourcePoint(crs=parsed.value, lon=query.lon, lat=query.lat)
    return json_response(
        LocateRead.from_location(found, lon=wgs_lon, lat=wgs_lat, source=source, at=when)
    )
