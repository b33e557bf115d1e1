"""The grids of draft plans as editable OGC collections (Features Part 4: create, replace,
update, delete), so a planner redraws a plan in QGIS.

A plan's proposal lives in ``plans.proposed`` (GeoJSON, lon/lat); each change rewrites that
proposal and runs the plan's own validation, balance and impact again
(``gis.services.planning``), as a new draft would. Only draft plans are served, and current
grids are never written here: applying the plan stays the one way grids change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
import sqlalchemy as sa
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from gis.errors import (
    ConflictError,
    InvalidGeometryError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from gis.layers.plans import Plan, PlanScope, PlanStatus, get_plan
from gis.layers.regions import Region
from gis.services import planning
from gis.services.ogc_crs import CRS84, Crs, supported
from gis.settings import Settings

PREFIX, SUFFIX = "plan-", "-grids"
# The properties a client reads and writes; members and allow_multipart stay as they are.
FIELDS: dict[str, str] = {
    "code": "string",
    "name": "string",
    "village": "string",
    "households": "integer",
    "population": "integer",
}
_KEPT = ("members", "allow_multipart")


def collection_id(plan_id: int) -> str:
    """The OGC collection id of a plan's grids."""
    return f"{PREFIX}{plan_id}{SUFFIX}"


def plan_town() -> sa.ColumnElement[str]:
    """The town of a plan's scope (joined with its region)."""
    return sa.case(
        (Plan.scope_level == PlanScope.TOWN.value, Plan.scope_code), else_=Region.parent_code
    )


def draft_plans(session: Session, towns: sa.ColumnElement[bool], limit: int) -> list[Plan]:
    """Draft plans, newest first, whose town passes ``towns`` (a condition on ``plan_town``)."""
    query = (
        sa.select(Plan)
        .join(Region, Region.code == Plan.scope_code)
        .where(Plan.status == PlanStatus.DRAFT.value, towns)
        .order_by(Plan.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def draft_plan(session: Session, plan_id: int, *, for_update: bool = False) -> Plan:
    """A draft plan: 409 for a submitted one (withdraw it to edit), 404 for an applied,
    rejected or superseded one (no longer editable)."""
    plan = get_plan(session, plan_id, for_update=for_update)
    if plan.status == PlanStatus.SUBMITTED.value:
        raise ConflictError(
            f"plan {plan_id} is submitted for review and cannot be edited; withdraw it "
            f"(POST /plans/{plan_id}/withdraw) to edit it again"
        )
    if plan.status != PlanStatus.DRAFT.value:
        raise NotFoundError(
            f"plan {plan_id} is {plan.status}; only a draft plan's grids are a collection"
        )
    return plan


def features(plan: Plan) -> list[dict[str, Any]]:
    """The plan's proposed grids as stored (GeoJSON features, lon/lat)."""
    return list(plan.proposed.get("features", []))


def find(plan: Plan, code: str) -> dict[str, Any]:
    """The proposed grid ``code`` of the plan, or 404."""
    for feature in features(plan):
        if feature.get("id") == code:
            return feature
    raise NotFoundError(f"plan {plan.id} proposes no grid {code!r}")


def etag(feature: dict[str, Any]) -> str:
    """The entity tag of a stored feature: changes whenever the feature does."""
    text = json.dumps(feature, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'


def check_if_match(feature: dict[str, Any], if_match: str | None) -> None:
    """412 unless ``If-Match`` (when sent) names the feature's current entity tag or ``*``."""
    if if_match is None:
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in tags and etag(feature) not in tags:
        raise PreconditionFailedError(
            f"grid {feature.get('id')} changed since it was read (If-Match {if_match!r} is not "
            f"its ETag {etag(feature)}); read it again and redo the change"
        )


# --- coordinates ------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    # Authority axis order on both sides (no always_xy): CRS84 is lon/lat, EPSG:4326 and
    # EPSG:4490 lat/lon, EPSG:4549 northing/easting.
    return pyproj.Transformer.from_crs(source, target)


def _authority(crs: Crs) -> str:
    return "OGC:CRS84" if crs.uri == CRS84 else f"EPSG:{crs.srid}"


def _reproject(geom: BaseGeometry, source: Crs, target: Crs) -> BaseGeometry:
    if source.uri == target.uri:
        return geom
    transformer = _transformer(_authority(source), _authority(target))

    def move(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        a, b = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([a, b])

    return shapely.transform(geom, move)


def stored_geometry(raw: Any, crs: Crs, what: str) -> dict[str, Any]:
    """A (Multi)Polygon given in ``crs`` as lon/lat GeoJSON, or 400 with the reason it cannot
    be a grid (not polygonal, unreadable, not finite, or invalid — self-intersecting…)."""
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometryError(f"{what}: the geometry must be a Polygon or MultiPolygon")
    try:
        geom = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise InvalidGeometryError(f"{what}: unreadable geometry ({error})") from error
    except shapely.errors.GEOSException as error:
        raise InvalidGeometryError(f"{what}: unreadable geometry ({error})") from error
    coords = shapely.get_coordinates(geom)
    if coords.size == 0 or not np.isfinite(coords).all():
        raise InvalidGeometryError(f"{what}: the geometry is empty or not finite")
    lonlat = _reproject(geom, crs, _crs84())
    if not np.isfinite(shapely.get_coordinates(lonlat)).all():
        raise InvalidGeometryError(f"{what}: the coordinates are outside {crs.uri}")
    if not lonlat.is_valid:
        raise InvalidGeometryError(f"{what}: invalid geometry: {explain_validity(lonlat)}")
    return dict(mapping(lonlat))


def _crs84() -> Crs:
    return supported()[CRS84]


def in_crs(feature: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """A stored feature as served: its geometry in ``crs``, its readable properties."""
    geometry = feature.get("geometry")
    if geometry is not None and crs.uri != CRS84:
        moved = _reproject(shape(geometry), _crs84(), crs)
        geometry = dict(mapping(shapely.set_precision(moved, 10.0**-crs.decimals)))
    props = feature.get("properties") or {}
    return {
        "type": "Feature",
        "id": feature.get("id"),
        "geometry": geometry,
        "properties": {name: props.get(name) for name in FIELDS},
    }


def intersects_bbox(
    feature: dict[str, Any], bbox: tuple[float, float, float, float], crs: Crs
) -> bool:
    """Whether a stored feature meets a bbox given in ``crs`` (its axis order)."""
    area = _reproject(box(*bbox), crs, _crs84())
    geometry = feature.get("geometry")
    return geometry is not None and bool(shape(geometry).intersects(area))


# --- changes ----------------------------------------------------------------------------------


def _props(given: Any, what: str) -> dict[str, Any]:
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise ValidationError(f"{what}: properties must be a JSON object")
    unknown = sorted(set(given) - set(FIELDS) - set(_KEPT))
    if unknown:
        raise ValidationError(
            f"{what}: unknown properties {', '.join(unknown)}; a plan grid has {', '.join(FIELDS)}"
        )
    return dict(given)


def _new_code(plan: Plan) -> str:
    taken = {f.get("id") for f in features(plan)}
    n = 1
    while f"NEW-{n}" in taken:
        n += 1
    return f"NEW-{n}"


def _feature_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise ValidationError("the body must be one GeoJSON Feature")
    return body


def revise(
    session: Session,
    plan: Plan,
    proposed: list[dict[str, Any]],
    settings: Settings,
    now: datetime,
    *,
    scope: planning.Scope | None = None,
    shapes: Sequence[BaseGeometry | None] | None = None,
) -> None:
    """Store a new proposal on the plan with its validation, balance and impact, exactly as
    ``planning`` computes them for a new draft (repairs already reported are kept).

    ``scope`` (the plan's, already loaded) and ``shapes`` (the features' geometries already
    read, by index) only spare reading them again."""
    if scope is None:
        scope = planning.load_scope(session, PlanScope(plan.scope_level), plan.scope_code)
    before, before_balance = plan.proposed, plan.balance
    # Nothing is written until the new report is complete (one UPDATE, not one per query).
    with session.no_autoflush:
        plan.proposed = {"type": "FeatureCollection", "features": proposed}
        grids = planning.proposal_from_plan(plan, shapes=shapes)
        current = planning.current_grids(session, scope)
        # A change touches a grid or two: the others keep the estimates their shape already had.
        known = planning.known_estimates(
            before, before_balance, proposed, planning.version_token(current)
        )
        evaluation = planning.evaluate(
            session, scope, grids, current, settings=settings, now=now, known=known
        )
        plan.proposed = {"type": "FeatureCollection", "features": [g.feature() for g in grids]}
        plan.validation = evaluation.validation()
        plan.balance = evaluation.balance
        plan.impact = evaluation.impact
    remember_shapes(plan, [g.geom for g in grids])
    session.flush()


def remember_shapes(plan: Plan, geoms: list[BaseGeometry]) -> None:
    """Keep the proposal's geometries with the loaded plan (this session only), so what reads
    them next in the same request does not parse the GeoJSON again."""
    sa.inspect(plan).info["shapes"] = (plan.proposed, geoms)


def kept_shapes(plan: Plan) -> list[BaseGeometry] | None:
    """The proposal's geometries kept by ``remember_shapes``, if the proposal is still the same
    object (None otherwise)."""
    kept = sa.inspect(plan).info.get("shapes")
    if kept is None or kept[0] is not plan.proposed:
        return None
    return list(kept[1])


def create(
    session: Session,
    plan: Plan,
    body: Any,
    crs: Crs,
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Add a grid to a draft plan (its code from ``properties.code``, else a new ``NEW-n``);
    409 if the plan already proposes that code. Returns the stored feature."""
    feature = _feature_body(body)
    props = _props(feature.get("properties"), "the new grid")
    code = props.get("code") or feature.get("id") or _new_code(plan)
    if not isinstance(code, str):
        raise ValidationError("properties.code must be a text")
    if any(f.get("id") == code for f in features(plan)):
        raise ConflictError(f"plan {plan.id} already proposes grid {code!r}; PUT to replace it")
    what = f"grid {code}"
    new = {
        "type": "Feature",
        "id": code,
        "geometry": stored_geometry(feature.get("geometry"), crs, what),
        "properties": {**props, "code": code},
    }
    revise(session, plan, [*features(plan), new], settings, now)
    return find(plan, code)


def change(
    session: Session,
    plan: Plan,
    code: str,
    body: Any,
    crs: Crs,
    *,
    merge: bool,
    if_match: str | None,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Replace (``merge=False``: PUT) or update (``merge=True``: PATCH, JSON merge patch) one
    proposed grid; the code stays the feature's id. Returns the stored feature."""
    old = find(plan, code)
    check_if_match(old, if_match)
    if not isinstance(body, dict):
        raise ValidationError("the body must be a GeoJSON Feature (or, for PATCH, a part of one)")
    if not merge:
        _feature_body(body)
    what = f"grid {code}"
    props = _props(body.get("properties"), what)
    if props.get("code", code) != code:
        raise ValidationError(f"{what}: the code is the feature id; it cannot be changed")
    kept = {k: v for k, v in (old.get("properties") or {}).items() if merge or k in _KEPT}
    merged = {k: v for k, v in {**kept, **props}.items() if v is not None or not merge}
    geometry = old["geometry"]
    if "geometry" in body or not merge:
        geometry = stored_geometry(body.get("geometry"), crs, what)
    new = {"type": "Feature", "id": code, "geometry": geometry, "properties": {**merged}}
    new["properties"]["code"] = code
    revise(
        session, plan, [new if f.get("id") == code else f for f in features(plan)], settings, now
    )
    return find(plan, code)


def delete(
    session: Session,
    plan: Plan,
    code: str,
    *,
    if_match: str | None,
    settings: Settings,
    now: datetime,
) -> None:
    """Take one grid out of a draft plan (a plan keeps at least one grid)."""
    check_if_match(find(plan, code), if_match)
    rest = [f for f in features(plan) if f.get("id") != code]
    if not rest:
        raise ValidationError(f"grid {code} is the plan's last grid; reject the plan instead")
    revise(session, plan, rest, settings, now)
