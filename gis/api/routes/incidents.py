"""Intake: report a case and get back, at once, its grid, platform, unit and deadline."""

from __future__ import annotations

import math
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.api.deps import (
    IdempotencyKey,
    PageDep,
    PlatformDep,
    SessionDep,
    SettingsDep,
    StaleReadOk,
    database_of,
    settings_of,
    status_query,
)
from gis.api.errors import CATEGORY, DEVICE_CLOCK, OUTSIDE, SWAPPED, domain_errors
from gis.api.geojson import FeatureCollection, feature_collection
from gis.api.responses import json_response
from gis.api.schemas.incidents import IncidentCreate, IncidentProperties, IncidentRead
from gis.api.schemas.types import MAX_ID, Time
from gis.api.security import (
    BEARER,
    REPORT,
    CaseReader,
    allow_hot,
    case_filter,
    check_case,
    uploader_of,
)
from gis.db import translate_db_errors
from gis.errors import InvalidCoordinatesError, ValidationError
from gis.layers.incidents import Incident, IncidentFilter, IncidentStatus, list_incidents
from gis.services.access import Principal
from gis.services.intake import get_incident_detail, report_flow

router = APIRouter(tags=["incidents"])


def use_autocommit(session: Session) -> None:
    """Run the session's statements in autocommit when it owns its connection.

    The hot paths are single statements, each atomic on its own (the intake inserts the incident
    and its events in ONE statement), so an explicit transaction only adds round trips: BEGIN and
    COMMIT, and for reads the closing ROLLBACK, to which psycopg 3 adds DEALLOCATE ALL, throwing
    away the prepared plans. A session handed an existing connection (a caller's transaction,
    the tests' rolled-back one) is left alone.
    """
    if not session.in_transaction() and isinstance(session.bind, Engine):
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


REPLAY_HEADER = "Idempotent-Replayed"

_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
BBOX_PATTERN = rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
_BBOX = re.compile(BBOX_PATTERN)


@router.post(
    "/incidents",
    response_model=IncidentRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=BEARER,
    responses={
        201: {"description": "Saved and assigned (or the first answer to a retried key)"},
        409: {"description": "The Idempotency-Key was used for a different report"},
        **domain_errors(
            SWAPPED,
            OUTSIDE,
            CATEGORY,
            DEVICE_CLOCK,
            (
                ValidationError,
                "a media: photo that was not uploaded first (POST /media), or that another "
                "user uploaded",
            ),
        ),
    },
)
async def create_incident(
    body: IncidentCreate,
    request: Request,
    principal: Annotated[Principal | None, Depends(allow_hot(*REPORT))],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Report a case: it is saved with its grid, platform, unit and deadline in one go."""
    flow = report_flow(
        body,
        settings=settings_of(request),
        idempotency_key=idempotency_key,
        uploader=uploader_of(principal),
    )
    result = await database_of(request).run(flow)
    headers = {"Location": f"/incidents/{result.incident.id}"}
    if not result.created:
        # The first answer again (Stripe's convention: same status, a header says it is a replay).
        headers[REPLAY_HEADER] = "true"
    return json_response(IncidentRead.from_detail(result.incident), 201, headers)


@router.get("/incidents/{incident_id}", response_model=IncidentRead, dependencies=[StaleReadOk])
def read_incident(
    session: SessionDep,
    settings: SettingsDep,
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: CaseReader,
) -> IncidentRead:
    """One incident with its assignment, the cameras that see it and possible duplicates."""
    use_autocommit(session)
    with translate_db_errors():
        detail = get_incident_detail(session, incident_id, settings=settings)
    check_case(principal, detail)
    return IncidentRead.from_detail(detail)


def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(
            max_length=200,
            json_schema_extra={"pattern": BBOX_PATTERN},
            description="minlon,minlat,maxlon,maxlat in WGS84 (min < max; 422 "
            "`invalid_coordinates` otherwise)",
            examples=["118.80,28.90,118.95,29.00"],
        ),
    ] = None,
) -> tuple[float, float, float, float] | None:
    """A WGS84 bounding box from ``minlon,minlat,maxlon,maxlat``."""
    if bbox is None:
        return None
    values = [float(p) for p in bbox.split(",")] if _BBOX.fullmatch(bbox) else []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidCoordinatesError(
            f"bbox must be four finite numbers minlon,minlat,maxlon,maxlat: {bbox!r}"
        )
    minlon, minlat, maxlon, maxlat = values
    if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
        raise InvalidCoordinatesError(
            "bbox must be minlon,minlat,maxlon,maxlat with min < max, lon in [-180, 180] and "
            f"lat in [-90, 90]: {bbox!r}"
        )
    return minlon, minlat, maxlon, maxlat


BboxDep = Annotated[tuple[float, float, float, float] | None, Depends(parse_bbox)]


@router.get(
    "/incidents",
    dependencies=[StaleReadOk],
    response_model=FeatureCollection[IncidentProperties],
    responses=domain_errors(
        (InvalidCoordinatesError, "bbox: min is not below max, or a bound is out of range"),
        (ValidationError, "the period is empty: until is not after since"),
    ),
)
def incidents(
    session: SessionDep,
    page: PageDep,
    bbox: BboxDep,
    principal: CaseReader,
    status_: Annotated[list[IncidentStatus] | None, status_query()] = None,
    platform: PlatformDep = None,
    town: Annotated[str | None, Query(max_length=12, description="Town code")] = None,
    grid: Annotated[str | None, Query(max_length=20, description="Grid code")] = None,
    category: Annotated[str | None, Query(max_length=50, description="Category code")] = None,
    since: Annotated[Time | None, Query(description="Reported at or after (with offset)")] = None,
    until: Annotated[Time | None, Query(description="Reported before (with offset)")] = None,
) -> FeatureCollection[IncidentProperties]:
    """Incidents as a GeoJSON FeatureCollection, newest first, filtered and paged."""
    filters = IncidentFilter(
        statuses=tuple(s.value for s in status_ or ()),
        platform=platform.value if platform else None,
        town_code=town,
        grid_code=grid,
        category=category,
        since=since,
        until=until,
        bbox=bbox,
        scope=case_filter(principal, Incident),
    )
    use_autocommit(session)
    with translate_db_errors():
        rows, total = list_incidents(session, filters, page)
    return feature_collection(
        IncidentProperties,
        rows,
        id_of=lambda r: r.id,
        geometry_of=lambda r: {"type": "Point", "coordinates": [r.lon, r.lat]},
        number_matched=total,
    )
