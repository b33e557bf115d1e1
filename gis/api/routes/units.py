"""Responder units: the live layer (GeoJSON), status changes and AVL position fixes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from gis.api.deps import ClockDep, PageDep, PlatformDep, SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import DEVICE_CLOCK, OUTSIDE, SWAPPED, domain_errors
from gis.api.geojson import FeatureCollection, feature_collection
from gis.api.schemas.dispatch import FixProperties, UnitProperties, UnitRead, UnitUpdate
from gis.api.schemas.types import UNIT_STATUSES, Time, one_of, unit_type_query
from gis.api.security import DISPATCH, WATCH, allow, check_unit
from gis.errors import PermissionDeniedError
from gis.geo import checked_wgs84, parse_crs
from gis.layers import units as unit_layer
from gis.layers.users import Role
from gis.services import dispatch
from gis.services.access import Principal

router = APIRouter(tags=["units"], dependencies=[StaleReadOk])

UnitId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Unit id")]
Watcher = Annotated[Principal | None, Depends(allow(*WATCH, *DISPATCH))]
# A unit's own device reports its position and status; dispatchers may change any unit.
Updater = Annotated[Principal | None, Depends(allow(*DISPATCH, Role.UNIT))]


@router.get("/units", response_model=FeatureCollection[UnitProperties])
def units(
    session: SessionDep,
    page: PageDep,
    _: Watcher,
    platform: PlatformDep,
    type_: Annotated[str | None, unit_type_query(alias="type")] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=20,
            description="available, busy or off_duty",
            json_schema_extra=one_of(UNIT_STATUSES),
        ),
    ] = None,
    town: Annotated[
        str | None,
        Query(
            max_length=12,
            pattern=r"^[A-Za-z0-9_.\-]+$",
            description="Jurisdiction (town or county) code",
        ),
    ] = None,
) -> FeatureCollection[UnitProperties]:
    """Responder units as GeoJSON points, by code, with filters."""
    unit_type = dispatch.parse_unit_type(type_)
    unit_status = dispatch.parse_status(status)
    rows, total = unit_layer.list_units(
        session,
        platform=platform.value if platform else None,
        unit_type=unit_type.value if unit_type else None,
        status=unit_status.value if unit_status else None,
        jurisdiction_code=town,
        page=page,
    )
    return feature_collection(UnitProperties, rows, id_of=lambda u: u.id, number_matched=total)


@router.get("/units/{unit_id}", response_model=UnitRead)
def unit(session: SessionDep, _: Watcher, unit_id: UnitId) -> UnitRead:
    """One unit with its status and current position."""
    return UnitRead.of(unit_layer.get_unit(session, unit_id), moved=False)


@router.patch(
    "/units/{unit_id}",
    response_model=UnitRead,
    responses=domain_errors(SWAPPED, OUTSIDE, DEVICE_CLOCK),
)
def update_unit(
    session: SessionDep,
    settings: SettingsDep,
    principal: Updater,
    unit_id: UnitId,
    body: UnitUpdate,
    now: ClockDep,
) -> UnitRead:
    """Change a unit's status and/or record an AVL position fix (kept in its track): a
    unit's own token, or a dispatcher, command room or county of a town the unit serves (its
    own town's or the county's unit; another town's unit is 404).
    ``recorded_at`` is the device's time of the fix, stored beside the server's receipt time
    and refused when ahead of it by more than GIS_DEVICE_CLOCK_SKEW_S."""
    if principal is not None and principal.role is Role.UNIT:
        if principal.unit_id != unit_id:
            raise PermissionDeniedError("a unit's token may only update that unit")
    elif principal is not None:
        # A dispatcher changes the units that serve its towns (theirs and their county's);
        # another town's unit answers 404, as another town's case does.
        check_unit(
            principal,
            unit_layer.get_unit(session, unit_id),
            dispatch.serving_jurisdictions(session, principal.town_codes),
        )
    position = None
    source_crs = parse_crs(body.crs)
    if body.lon is not None and body.lat is not None:
        position = checked_wgs84(body.lon, body.lat, body.crs)[:2]
    unit, moved = dispatch.update_unit(
        session,
        unit_id,
        status=body.status,
        position=position,
        source_crs=source_crs.value,
        recorded_at=body.recorded_at,
        max_outside_m=settings.dispatch_max_outside_m,
        now=now,
        clock_skew_s=settings.device_clock_skew_s,
    )
    session.commit()
    return UnitRead.of(unit, moved=moved)


@router.get("/units/{unit_id}/track", response_model=FeatureCollection[FixProperties])
def unit_track(
    session: SessionDep,
    _: Watcher,
    unit_id: UnitId,
    since: Annotated[Time | None, Query(description="Only fixes taken since then")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Newest fixes to return")] = 1000,
) -> FeatureCollection[FixProperties]:
    """A unit's AVL track, oldest fix first."""
    unit_layer.get_unit(session, unit_id)
    fixes = unit_layer.unit_track(session, unit_id, since=since, limit=limit)
    return feature_collection(FixProperties, fixes, id_of=lambda f: f.id)
