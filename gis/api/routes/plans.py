"""Boundary plans: start from the current grids, propose, preview, apply (planners only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from gis.api.deps import SessionDep, SettingsDep
from gis.api.errors import domain_errors
from gis.api.geojson import Feature, FeatureCollection, geometry_json
from gis.api.routes.maps import BASEMAP_ERRORS, page_assets_url, render_page, request_basemap
from gis.api.schemas.plans import (
    BaseGridProperties,
    PlanBase,
    PlanCreate,
    PlanRead,
    PlanSummary,
)
from gis.api.schemas.types import one_of, read_from
from gis.api.security import PLAN, WATCH, allow, check_town
from gis.db import committing
from gis.errors import (
    InvalidCoordinatesError,
    InvalidGeometryError,
    ValidationError,
)
from gis.layers.plans import Plan, PlanScope, PlanStatus, get_plan, list_plans
from gis.maps.base import Basemap, parse_basemap
from gis.maps.plan import plan_map, preview_from_plan
from gis.services import planning
from gis.services.access import Principal

router = APIRouter(prefix="/plans", tags=["plans"])

Planner = Annotated[Principal | None, Depends(allow(*PLAN))]
Reader = Annotated[Principal | None, Depends(allow(*PLAN, *WATCH))]
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Plan id")]


def _actor(principal: Principal | None) -> str:
    return principal.name if principal is not None else "anonymous"


def _read(plan: Plan) -> PlanRead:
    return PlanRead.model_validate(
        {
            **PlanSummary.model_validate(plan).model_dump(),
            "valid": bool(plan.validation.get("valid")),
            "validation": plan.validation,
            "balance": plan.balance,
            "impact": plan.impact,
            "result": plan.result,
            "proposed": plan.proposed,
        }
    )


@router.get("/base/{code}", response_model=PlanBase)
def plan_base(
    session: SessionDep,
    principal: Planner,
    code: Annotated[str, Path(max_length=12, description="Village (or town) code")],
    level: Annotated[PlanScope, Query(description="village or town")] = PlanScope.VILLAGE,
) -> PlanBase:
    """The current grids of a village (or town) and the ``based_on_version`` to draw a plan on."""
    check_town(principal, planning.scope_town(session, level, code), f"{level.value} {code}")
    token, grids = planning.scope_version(session, level, code)
    features = [
        Feature[BaseGridProperties](
            id=g.code,
            geometry=geometry_json(g.geom),
            properties=read_from(BaseGridProperties, g, village=g.village_code),
        )
        for g in grids
    ]
    return PlanBase(
        scope_level=level,
        scope_code=code,
        based_on_version=token,
        grids=FeatureCollection[BaseGridProperties](
            features=features, number_matched=len(features), number_returned=len(features)
        ),
    )


@router.post(
    "",
    response_model=PlanRead,
    status_code=status.HTTP_201_CREATED,
    responses=domain_errors(
        (InvalidGeometryError, "a proposed geometry is empty or unreadable"),
        (InvalidCoordinatesError, "a proposed geometry has coordinates outside lon/lat range"),
        (ValidationError, "a grid code is blank, or the village has no town"),
    ),
)
def create_plan(
    body: PlanCreate, session: SessionDep, settings: SettingsDep, principal: Planner
) -> PlanRead:
    """Store a draft plan with its validation, workload balance and impact.

    A plan with validation errors is still stored (201, ``valid: false``) so the planner can see
    every problem on the map; it cannot be applied until a corrected plan replaces it.
    """
    level, code = body.scope
    check_town(principal, planning.scope_town(session, level, code), f"{level.value} {code}")
    plan = planning.create_plan(
        session,
        scope_level=level,
        scope_code=code,
        proposed=body.proposed.model_dump(mode="json", exclude_none=True),
        based_on_version=body.based_on_version,
        actor=_actor(principal),
        settings=settings,
        allow_multipart=body.allow_multipart,
        title=body.title,
    )
    session.commit()
    return _read(plan)


@router.get("", response_model=list[PlanSummary])
def plans(
    session: SessionDep,
    principal: Reader,
    scope: Annotated[str | None, Query(max_length=12, description="Village/town code")] = None,
    plan_status: Annotated[PlanStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[PlanSummary]:
    """Plans, newest first."""
    rows = list_plans(session, scope_code=scope, status=plan_status, limit=limit, offset=offset)
    visible = []
    for plan in rows:
        town = planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)
        if principal is None or principal.sees_town(town):
            visible.append(PlanSummary.model_validate(plan))
    return visible


def _visible_plan(session: SessionDep, principal: Principal | None, plan_id: int) -> Plan:
    plan = get_plan(session, plan_id)
    town = planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)
    check_town(principal, town, f"plan with id {plan_id}")
    return plan


@router.get("/{plan_id}", response_model=PlanRead)
def plan(session: SessionDep, principal: Reader, plan_id: PlanId) -> PlanRead:
    """One plan with its full report."""
    return _read(_visible_plan(session, principal, plan_id))


@router.get("/{plan_id}/map", response_class=HTMLResponse, responses=domain_errors(*BASEMAP_ERRORS))
def plan_preview(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    plan_id: PlanId,
    request: Request,
    basemap: Annotated[
        str | None,
        Query(
            description="osm, tianditu, tianditu_satellite, amap, intranet or local "
            "(default GIS_BASEMAP)",
            json_schema_extra=one_of([b.value for b in Basemap]),
        ),
    ] = None,
) -> HTMLResponse:
    """The preview: current grids dashed, proposed grids filled, problems red, moving cases."""
    plan = _visible_plan(session, principal, plan_id)
    chosen = request_basemap(request, settings, parse_basemap(basemap) if basemap else None)
    old = planning.grids_before(session, plan)
    preview = preview_from_plan(
        plan.id, plan.status, plan.proposed, plan.validation, plan.impact, old
    )
    m = plan_map(preview, basemap=chosen, tianditu_key=settings.tianditu_key)
    return HTMLResponse(render_page(m, request, page_assets_url(request, settings)))


@router.post("/{plan_id}/apply", response_model=PlanRead)
def apply_plan(
    session: SessionDep, settings: SettingsDep, principal: Planner, plan_id: PlanId
) -> PlanRead:
    """Apply a draft plan in one transaction: 409 if the grids changed since its base version or
    it is not a draft, 422 if it has validation errors; otherwise the new grid versions are in
    force from now and open cases have moved (one ``reassign_grid`` event each)."""
    _visible_plan(session, principal, plan_id)
    with committing(session):
        applied = planning.apply_plan(session, plan_id, actor=_actor(principal), settings=settings)
    return _read(applied)


@router.post("/{plan_id}/reject", response_model=PlanRead)
def reject_plan(session: SessionDep, principal: Planner, plan_id: PlanId) -> PlanRead:
    """Reject a draft plan; it stays on record."""
    _visible_plan(session, principal, plan_id)
    rejected = planning.reject_plan(session, plan_id, actor=_actor(principal))
    session.commit()
    return _read(rejected)
