"""Point → grid, village, town, county and grid member, as of a date (MapIt's point lookup)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gis.api.deps import DatabaseDep, SettingsDep
from gis.api.responses import json_response
from gis.api.schemas.incidents import LocateRead, SourcePoint
from gis.api.security import allow
from gis.errors import ValidationError
from gis.layers.users import Role
from gis.services.access import Principal
from gis.services.assignment import locate_flow
from gis.services.intake import checked_wgs84

router = APIRouter(tags=["locate"])


@router.get("/locate", response_model=LocateRead)
async def locate_point(
    database: DatabaseDep,
    settings: SettingsDep,
    # Every role may look a point up; it names the grid member, so not anonymous callers.
    _: Annotated[Principal | None, Depends(allow(*Role))],
    lon: Annotated[float, Query(description="Longitude in `crs`")],
    lat: Annotated[float, Query(description="Latitude in `crs`")],
    crs: Annotated[
        str, Query(max_length=32, description="EPSG:4326 (default), EPSG:4490, GCJ-02 or BD-09")
    ] = "EPSG:4326",
    at: Annotated[
        datetime | None,
        Query(description="Use the grid versions in force at this instant (default now)"),
    ] = None,
) -> Response:
    """The grid covering a point (lowest code on an edge; snapped or outside otherwise)."""
    if at is not None and at.tzinfo is None:
        raise ValidationError("at needs a UTC offset, e.g. 2026-01-01T00:00:00+08:00")
    wgs_lon, wgs_lat, parsed = checked_wgs84(lon, lat, crs)
    when = at or datetime.now(UTC)
    found = await database.run(
        locate_flow(
            wgs_lon,
            wgs_lat,
            at=when,
            snap_m=settings.snap_meters,
            coverage_margin_m=settings.coverage_margin_m,
        )
    )
    source = SourcePoint(crs=parsed.value, lon=lon, lat=lat)
    return json_response(
        LocateRead.from_location(found, lon=wgs_lon, lat=wgs_lat, source=source, at=when)
    )
