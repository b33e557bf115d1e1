"""OGC API – Features Part 4 on draft plans: ``/ogc/collections/plan-{id}-grids`` lists a draft
plan's proposed grids and takes ``POST``, ``PUT``, ``PATCH`` and ``DELETE``, for the planners of
the plan's town (others 401/403, another town's plan 404, as ``/plans``). Every other
collection is read-only: a write there is 405 with ``Allow``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from shapely.geometry import shape

from gis.api.deps import SessionDep, SettingsDep, settings_of
from gis.api.ogc.documents import GEOJSON, base_url, collection_document
from gis.api.ogc.errors import ogc_error
from gis.api.ogc.router import router
from gis.api.security import PLAN, admit, allow, check_town, town_filter
from gis.errors import GisError, ValidationError
from gis.layers.base import utcnow
from gis.layers.plans import Plan, PlanScope
from gis.services import ogc, ogc_plans, planning
from gis.services.access import Principal
from gis.services.ogc_collections import get_collection
from gis.services.ogc_crs import parse_crs

READ_ONLY = "GET, OPTIONS"
EDITABLE_ITEMS = "GET, POST, OPTIONS"
EDITABLE_ITEM = "GET, PUT, PATCH, DELETE, OPTIONS"
MAX_LISTED = 100  # draft plans listed in /collections, newest first

Planner = Annotated[Principal | None, Depends(allow(*PLAN))]
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Draft plan id")]
Code = Annotated[str, Path(max_length=20, description="Grid code in the plan")]
ContentCrs = Annotated[
    str | None, Header(alias="Content-Crs", max_length=200, description="CRS of the body")
]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=500)]


def _plan(session: SessionDep, principal: Principal | None, plan_id: int, **kw: Any) -> Plan:
    plan = ogc_plans.draft_plan(session, plan_id, **kw)
    town = planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)
    check_town(principal, town, f"collection {ogc_plans.collection_id(plan_id)}")
    return plan


def plan_collection_json(request: Request, plan: Plan) -> dict[str, Any]:
    """The collection document of a draft plan's grids."""
    cid = ogc_plans.collection_id(plan.id)
    shapes = [shape(f["geometry"]) for f in ogc_plans.features(plan) if f.get("geometry")]
    extent = None
    if shapes:
        bounds = [s.bounds for s in shapes]
        extent = [min(b[0] for b in bounds), min(b[1] for b in bounds)]
        extent += [max(b[2] for b in bounds), max(b[3] for b in bounds)]
    return collection_document(
        f"{base_url(request)}/collections/{cid}",
        cid,
        title=f"Plan {plan.id} grids (draft) 规划网格草案 — {plan.title or plan.scope_code}",
        description=f"The grids draft plan {plan.id} proposes for {plan.scope_level} "
        f"{plan.scope_code}; editable by its town's planners. Applying the plan "
        "(POST /plans/{id}/apply) is what changes the current grids.",
        extent=extent,
    )


def plan_collections(
    request: Request, session: SessionDep, principal: Principal | None
) -> list[dict[str, Any]]:
    """The draft-plan collections the caller may edit (none unless a planner or admin)."""
    try:
        admit(principal, frozenset(PLAN), public=False, settings=settings_of(request))
    except GisError:
        return []
    towns = town_filter(principal, ogc_plans.plan_town())
    plans = ogc_plans.draft_plans(session, towns, MAX_LISTED)
    return [plan_collection_json(request, plan) for plan in plans]


def _feature_response(
    request: Request, plan: Plan, feature: dict[str, Any], crs_uri: str | None, status: int = 200
) -> Response:
    crs = parse_crs(crs_uri, "crs")
    served = ogc_plans.in_crs(feature, crs)
    href = f"{base_url(request)}/collections/{ogc_plans.collection_id(plan.id)}"
    served["links"] = [
        {"href": f"{href}/items/{feature['id']}", "rel": "self", "type": GEOJSON},
        {"href": href, "rel": "collection", "type": "application/json"},
    ]
    headers = {"Content-Crs": f"<{crs.uri}>", "ETag": ogc_plans.etag(feature)}
    if status == 201:
        headers["Location"] = f"{href}/items/{feature['id']}"
    return JSONResponse(served, status, headers=headers, media_type=GEOJSON)


_PLAN_PATH = "/collections/plan-{plan_id}-grids"


@router.get(_PLAN_PATH, summary="A draft plan's grids (collection)")
def plan_collection(
    request: Request, session: SessionDep, principal: Planner, plan_id: PlanId
) -> JSONResponse:
    """The editable collection of a draft plan's proposed grids."""
    return JSONResponse(plan_collection_json(request, _plan(session, principal, plan_id)))


@router.get(_PLAN_PATH + "/items", summary="A draft plan's proposed grids")
def plan_items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    plan_id: PlanId,
    limit: Annotated[int, Query(ge=1)] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    crs: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The plan's proposed grids (a plan has at most a few thousand), paged."""
    if limit > settings.ogc_max_limit:
        raise ValidationError(f"limit must be at most {settings.ogc_max_limit}")
    plan = _plan(session, principal, plan_id)
    out = parse_crs(crs, "crs")
    area = ogc.parse_bbox(bbox)
    found = ogc_plans.features(plan)
    if area is not None:
        within = parse_crs(bbox_crs, "bbox-crs")
        found = [f for f in found if ogc_plans.intersects_bbox(f, area, within)]
    page = found[offset : offset + limit]
    href = f"{base_url(request)}/collections/{ogc_plans.collection_id(plan_id)}/items"
    links = [{"href": f"{href}?limit={limit}&offset={offset}", "rel": "self", "type": GEOJSON}]
    if offset + limit < len(found):
        next_page = f"{href}?limit={limit}&offset={offset + limit}"
        links.append({"href": next_page, "rel": "next", "type": GEOJSON})
    body = {
        "type": "FeatureCollection",
        "features": [ogc_plans.in_crs(f, out) for f in page],
        "numberMatched": len(found),
        "numberReturned": len(page),
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out.uri}>"})


@router.get(_PLAN_PATH + "/items/{code}", summary="One proposed grid")
def plan_item(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan_id: PlanId,
    code: Code,
    crs: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One proposed grid, with its ``ETag``."""
    plan = _plan(session, principal, plan_id)
    return _feature_response(request, plan, ogc_plans.find(plan, code), crs)


@router.options(_PLAN_PATH + "/items", summary="Methods on a draft plan's grids")
def plan_items_options(session: SessionDep, principal: Planner, plan_id: PlanId) -> Response:
    """``Allow`` with ``POST``: QGIS offers editing only when it sees it."""
    _plan(session, principal, plan_id)
    return Response(status_code=204, headers={"Allow": EDITABLE_ITEMS})


@router.options(_PLAN_PATH + "/items/{code}", summary="Methods on a proposed grid")
def plan_item_options(
    session: SessionDep, principal: Planner, plan_id: PlanId, code: Code
) -> Response:
    """``Allow`` with ``PUT``, ``PATCH`` and ``DELETE``."""
    ogc_plans.find(_plan(session, principal, plan_id), code)
    return Response(status_code=204, headers={"Allow": EDITABLE_ITEM})


@router.post(_PLAN_PATH + "/items", status_code=201, summary="Add a grid to a draft plan")
def plan_create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    plan_id: PlanId,
    body: Annotated[Any, Body(description="A GeoJSON Feature in Content-Crs")],
    content_crs: ContentCrs = None,
) -> Response:
    """Add a grid (201, its URL in ``Location``); the plan is validated again."""
    crs = parse_crs(content_crs, "Content-Crs")
    plan = _plan(session, principal, plan_id, for_update=True)
    feature = ogc_plans.create(session, plan, body, crs, settings=settings, now=utcnow())
    session.commit()
    return _feature_response(request, plan, feature, None, 201)


def plan_change(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    plan_id: PlanId,
    code: Code,
    body: Annotated[Any, Body(description="A GeoJSON Feature (PATCH: a JSON merge patch of it)")],
    content_crs: ContentCrs = None,
    if_match: IfMatch = None,
) -> Response:
    """PUT replaces a grid's geometry and properties, PATCH changes what it sends (a JSON merge
    patch); 412 if ``If-Match`` is stale."""
    crs = parse_crs(content_crs, "Content-Crs")
    plan = _plan(session, principal, plan_id, for_update=True)
    feature = ogc_plans.change(
        session,
        plan,
        code,
        body,
        crs,
        merge=request.method == "PATCH",
        if_match=if_match,
        settings=settings,
        now=utcnow(),
    )
    session.commit()
    return _feature_response(request, plan, feature, None)


# One endpoint, two operations (each with its own id in /ogc/api).
router.put(
    _PLAN_PATH + "/items/{code}", summary="Replace a proposed grid", operation_id="replacePlanGrid"
)(plan_change)
router.patch(
    _PLAN_PATH + "/items/{code}", summary="Update a proposed grid", operation_id="updatePlanGrid"
)(plan_change)


@router.delete(_PLAN_PATH + "/items/{code}", status_code=204, summary="Remove a proposed grid")
def plan_delete(
    session: SessionDep,
    settings: SettingsDep,
    principal: Planner,
    plan_id: PlanId,
    code: Code,
    if_match: IfMatch = None,
) -> Response:
    """Take a grid out of the plan (204; 412 if ``If-Match`` is stale)."""
    plan = _plan(session, principal, plan_id, for_update=True)
    ogc_plans.delete(session, plan, code, if_match=if_match, settings=settings, now=utcnow())
    session.commit()
    return Response(status_code=204)


# --- every other collection is read-only ------------------------------------------------------


def _read_only(collection_id: str) -> Response:
    get_collection(collection_id)  # 404 for an unknown collection
    response = ogc_error(
        405,
        "method_not_allowed",
        f"collection {collection_id} is read-only: grids change only by applying a plan; "
        "a draft plan's grids are edited in collection plan-{id}-grids",
    )
    response.headers["Allow"] = READ_ONLY
    return response


_ITEMS = "/collections/{collection_id}/items"
CollectionId = Annotated[str, Path(max_length=40, description="Collection id")]
FeatureId = Annotated[str, Path(max_length=40, description="Feature id")]


@router.options(_ITEMS, summary="Methods on a read-only collection")
def items_options(collection_id: CollectionId) -> Response:
    """``Allow`` without ``POST``: QGIS keeps the layer read-only."""
    get_collection(collection_id)
    return Response(status_code=204, headers={"Allow": READ_ONLY})


@router.options(_ITEMS + "/{feature_id}", summary="Methods on a read-only feature")
def item_options(collection_id: CollectionId, feature_id: FeatureId) -> Response:
    """``Allow`` without ``PUT``, ``PATCH`` or ``DELETE``."""
    get_collection(collection_id)
    return Response(status_code=204, headers={"Allow": READ_ONLY})


@router.post(_ITEMS, summary="Not allowed on a read-only collection")
def items_post(collection_id: CollectionId) -> Response:
    """405 with ``Allow``."""
    return _read_only(collection_id)


def item_write(collection_id: CollectionId, feature_id: FeatureId) -> Response:
    """405 with ``Allow``."""
    return _read_only(collection_id)


for _method in ("put", "patch", "delete"):
    getattr(router, _method)(
        _ITEMS + "/{feature_id}",
        summary="Not allowed on a read-only collection",
        operation_id=f"{_method}ReadOnlyItem",
    )(item_write)
