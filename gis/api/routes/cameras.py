"""Cameras (天眼): the layer, what can see a place, editing cameras, and camera-raised cases."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from gis.api.deps import IdempotencyKey, PageDep, SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import CATEGORY, OUTSIDE, SWAPPED, domain_errors
from gis.api.geojson import FeatureCollection, feature_collection, geometry_json
from gis.api.routes.incidents import REPLAY_HEADER
from gis.api.schemas.cameras import (
    AlertCreate,
    CameraCreate,
    CameraFields,
    CameraProperties,
    CameraRead,
    CameraUpdate,
    SeeingCamera,
    SeeingRead,
)
from gis.api.schemas.incidents import IncidentRead
from gis.api.schemas.types import CrsQuery, LatQuery, LonQuery
from gis.api.security import DISPATCH, MANAGE_LAYERS, Watcher, allow
from gis.db import translate_db_errors
from gis.errors import UnknownCodeError
from gis.geo import checked_wgs84, parse_crs
from gis.layers.base import point_lonlat
from gis.layers.cameras import Camera, CameraKind, CameraStatus, cameras_seeing, list_cameras
from gis.services import cameras as camera_service
from gis.services.access import Principal

router = APIRouter(tags=["cameras"], dependencies=[StaleReadOk])

TOWN = (UnknownCodeError, "town_code is not a town (GET /regions?level=town)")

CODE_PATTERN = r"^[A-Za-z0-9_.\-]+$"
CameraCode = Annotated[
    str, Path(min_length=1, max_length=40, pattern=CODE_PATTERN, description="Camera code")
]
Editor = Annotated[Principal | None, Depends(allow(*MANAGE_LAYERS))]
Operator = Annotated[Principal | None, Depends(allow(*DISPATCH))]


def _read(camera: Camera) -> CameraRead:
    """The full reply for one camera."""
    lon, lat = point_lonlat(camera.geom)
    props = CameraProperties.model_validate(camera, from_attributes=True)
    return CameraRead(**props.model_dump(), lon=lon, lat=lat, view=geometry_json(camera.view))


@router.get("/cameras", response_model=FeatureCollection[CameraProperties])
def cameras(
    session: SessionDep,
    page: PageDep,
    _: Watcher,
    town: Annotated[
        str | None, Query(max_length=12, pattern=CODE_PATTERN, description="Town code")
    ] = None,
    status_: Annotated[CameraStatus | None, Query(alias="status")] = None,
    kind: Annotated[CameraKind | None, Query()] = None,
    geometry: Annotated[
        Literal["location", "view"],
        Query(description="Feature geometry: the camera's point or its view polygon"),
    ] = "location",
) -> FeatureCollection[CameraProperties]:
    """Cameras as GeoJSON (points, or view sectors with ?geometry=view), by code."""
    rows, total = list_cameras(
        session,
        town_code=town,
        status=status_.value if status_ else None,
        kind=kind.value if kind else None,
        page=page,
    )
    return feature_collection(
        CameraProperties,
        rows,
        id_of=lambda c: c.code,
        geometry_of=lambda c: c.view if geometry == "view" else c.geom,
        number_matched=total,
    )


@router.get("/cameras/seeing", response_model=SeeingRead, responses=domain_errors(SWAPPED))
def seeing(
    session: SessionDep,
    _: Watcher,
    lon: LonQuery,
    lat: LatQuery,
    crs: CrsQuery = None,
    online_only: Annotated[bool, Query(description="Only cameras whose feed is up")] = True,
) -> SeeingRead:
    """Cameras whose view covers a place, nearest first, with the bearing camera → place."""
    wgs_lon, wgs_lat = checked_wgs84(lon, lat, crs)[:2]
    found = cameras_seeing(session, wgs_lon, wgs_lat, online_only=online_only)
    items = []
    for camera, distance, bearing in found:
        lon, lat = point_lonlat(camera.geom)
        items.append(
            SeeingCamera(
                **CameraFields.model_validate(camera).model_dump(),
                lon=lon,
                lat=lat,
                distance_m=round(distance, 2),
                bearing_deg=round(bearing % 360.0, 2),
            )
        )
    return SeeingRead(lon=wgs_lon, lat=wgs_lat, cameras=items)


@router.get("/cameras/{code}", response_model=CameraRead)
def camera(session: SessionDep, _: Watcher, code: CameraCode) -> CameraRead:
    """One camera with its view polygon."""
    return _read(camera_service.get_camera(session, code))


@router.post(
    "/cameras",
    response_model=CameraRead,
    status_code=status.HTTP_201_CREATED,
    responses=domain_errors(SWAPPED, OUTSIDE, TOWN),
)
def create_camera(
    session: SessionDep, settings: SettingsDep, _: Editor, body: CameraCreate
) -> CameraRead:
    """Add a camera; its view sector is computed in metres. A used code is 409."""
    lon, lat = checked_wgs84(body.lon, body.lat, body.crs)[:2]
    with translate_db_errors():
        created = camera_service.create_camera(
            session,
            **body.model_dump(exclude={"lon", "lat", "crs"}),
            lon=lon,
            lat=lat,
            max_outside_m=settings.dispatch_max_outside_m,
        )
        session.commit()
    return _read(created)


@router.patch(
    "/cameras/{code}", response_model=CameraRead, responses=domain_errors(SWAPPED, OUTSIDE, TOWN)
)
def update_camera(
    session: SessionDep, settings: SettingsDep, _: Editor, code: CameraCode, body: CameraUpdate
) -> CameraRead:
    """Change a camera (aim, range, kind, status, position…); its view follows."""
    changes = body.model_dump(exclude_unset=True)
    crs = changes.pop("crs", None)
    parse_crs(crs)
    if changes.get("lon") is not None and changes.get("lat") is not None:
        changes["lon"], changes["lat"] = checked_wgs84(changes["lon"], changes["lat"], crs)[:2]
    with translate_db_errors():
        updated = camera_service.update_camera(
            session, code, changes, max_outside_m=settings.dispatch_max_outside_m
        )
        session.commit()
    return _read(updated)


@router.post(
    "/cameras/{code}/alerts",
    response_model=IncidentRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "The case, saved and assigned like any report"},
        **domain_errors(CATEGORY),
    },
)
def raise_alert(
    session: SessionDep,
    settings: SettingsDep,
    _: Operator,
    code: CameraCode,
    body: AlertCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> IncidentRead:
    """Raise a case from a camera: it is reported at the centre of the camera's view."""
    with translate_db_errors():
        result = camera_service.raise_alert(
            session,
            code,
            category=body.category,
            note=body.note,
            settings=settings,
            idempotency_key=idempotency_key,
        )
        session.commit()
    response.headers["Location"] = f"/incidents/{result.incident.id}"
    if not result.created:
        # Intake's convention for a retried key: the first answer, flagged as a replay.
        response.headers[REPLAY_HEADER] = "true"
    return IncidentRead.from_detail(result.incident)
