"""A plan's review and files: submit and withdraw (``/plans/{id}/submit``, ``/withdraw``), the
grids as GeoPackage/GeoJSON for QGIS (``/plans/{id}/export``), and a file imported back as a new
draft of the editor (``/plans/editor/imports``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response

from gis.api.deps import SessionDep, SettingsDep, Upload, read_upload, upload_body
from gis.api.errors import ERROR_RESPONSES, domain_errors
from gis.api.routes.plan_editor import editor_read, town_check
from gis.api.routes.plans import PlanId, Planner, Reader, _actor, _read, _visible_plan
from gis.api.schemas.plan_editor import EditorRead
from gis.api.schemas.plans import PlanRead
from gis.db import committing
from gis.errors import (
    ConflictError,
    InvalidCoordinatesError,
    InvalidGeometryError,
    UnknownCrsError,
    ValidationError,
)
from gis.services import plan_files, plan_review
from gis.services.planning import PlanInvalidError

router = APIRouter(prefix="/plans", tags=["plans"])


@router.post(
    "/{plan_id}/submit",
    response_model=PlanRead,
    responses=domain_errors(
        (ConflictError, "the plan is not a draft, or the village changed since its base"),
        (PlanInvalidError, "the plan has validation errors"),
    ),
)
def submit_plan(session: SessionDep, principal: Planner, plan_id: PlanId) -> PlanRead:
    """Submit a draft for review (提交审核): it can no longer be edited until withdrawn; it is
    applied or rejected from here. 409 (with ``changed``) if the village changed since its
    base: rebase it first."""
    _visible_plan(session, principal, plan_id)
    with committing(session):
        plan = plan_review.submit(session, plan_id, actor=_actor(principal))
    return _read(plan)


@router.post(
    "/{plan_id}/withdraw",
    response_model=PlanRead,
    responses=domain_errors((ConflictError, "the plan is not submitted")),
)
def withdraw_plan(session: SessionDep, principal: Planner, plan_id: PlanId) -> PlanRead:
    """Withdraw a submitted plan (撤回): a draft again, editable."""
    _visible_plan(session, principal, plan_id)
    plan = plan_review.withdraw(session, plan_id)
    session.commit()
    return _read(plan)


ExportFormat = Literal["gpkg", "geojson"]


@router.get(
    "/{plan_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The plan's grids as a file (layer ``grids``, EPSG:4326)",
            "content": {
                plan_files.FORMATS["gpkg"].media_type: {
                    "schema": {"type": "string", "format": "binary"}
                },
                plan_files.FORMATS["geojson"].media_type: {"schema": {"type": "object"}},
            },
        }
    },
)
def export_plan(
    session: SessionDep,
    principal: Reader,
    plan_id: PlanId,
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="gpkg (GeoPackage) or geojson")
    ] = "gpkg",
) -> Response:
    """The plan's proposed grids as a GeoPackage or GeoJSON file for QGIS (导出): code, name,
    village, households, population, members (ids, ``3,7``) and member_names."""
    plan = _visible_plan(session, principal, plan_id)
    data = plan_files.export_plan(session, plan, fmt)
    spec = plan_files.FORMATS[fmt]
    name = plan_files.filename(plan, fmt)
    return Response(
        data,
        media_type=spec.media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def upload(request: Request, settings: SettingsDep) -> Upload:
    """The uploaded file (field ``file``) and the optional ``title``."""
    return await read_upload(request, settings, "file", "upload.gpkg")


@router.post(
    "/editor/imports",
    response_model=EditorRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **ERROR_RESPONSES,
        **domain_errors(
            (
                ValidationError,
                "the file cannot be read, has no code field, or a grid lies outside the village",
            ),
            (UnknownCrsError, "the file's CRS is not EPSG:4326, 4490 or 4549"),
            (InvalidGeometryError, "a grid is not a polygon, or is invalid (crosses itself…)"),
            (InvalidCoordinatesError, "coordinates are not lon/lat (a wrong CRS)"),
        ),
    },
    openapi_extra=upload_body(title={"type": "string", "maxLength": 200}),
)
def import_plan(
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    village: Annotated[
        str, Query(min_length=1, max_length=12, description="Village the file redraws")
    ],
    file: Annotated[Upload, Depends(upload)],
) -> EditorRead:
    """A new draft of the village from a GeoPackage/GeoJSON file (导入), e.g. one exported and
    edited in QGIS; validated like any plan. A file the editor cannot show (unreadable, another
    CRS, invalid or non-polygon geometry, grids outside the village) is refused with the reason
    and nothing is saved."""
    town_check(session, principal, village)
    title = (file.fields.get("title") or "")[:200] or None
    with committing(session):
        plan = plan_files.import_draft(
            session,
            village=village,
            data=file.data,
            name=file.filename,
            actor=_actor(principal),
            settings=settings,
            title=title,
        )
    return editor_read(session, plan)
