"""Boundary plans: validate a proposed redraw, measure workload balance and impact, apply it safely.

A plan redraws the grids of one village (or of every village of a town). Its life:

1. The planner reads the scope's current grids and their **version token** (``scope_version``):
   a hash of the ids of the grid versions in force in the scope. Any change to the scope's grids
   (a new version, a new grid, a retired grid, by a plan or an import) gives a new token, which a
   bare "max version" number would not (retiring a grid does not raise any version).
2. ``create_plan`` stores the proposal with its report: **validation** (geometry repaired or
   rejected, overlaps, gaps, grids outside their village, multi-piece grids, duplicate or taken
   codes, unknown members), **balance** (households, population, incidents in 12 months and
   cameras per grid against the village mean) and **impact** (open cases that would change grid,
   historic cases that keep theirs, cameras and members affected).
3. ``apply_plan`` runs in the caller's transaction: it locks the scope (its region rows, then its
   current grids, ``FOR UPDATE``), refuses with ``ConflictError`` (409) when the token moved,
   re-validates against the locked state and refuses with ``PlanInvalidError`` (422) on errors,
   then links the members and hands the change to ``gis.services.grid_versions`` (the one
   versioned grid write, shared with boundary imports): the old versions get ``valid_to = now``,
   the new ones ``valid_from = now`` (so "the grid at time T" is always exactly one version) and
   the open cases move set-based. Two applies on one token: one wins, the other waits on the
   lock and then sees a new token; a wait past the lock timeout is a 409 through ``gis.db``.

Areas are m² on the WGS84 ellipsoid of the region the lon/lat coordinates draw
(``gis.geo.area_m2``), never square degrees. Overlaps, gaps and outside parts are computed on the
coordinates as given, by snap-rounding overlays on a 1e-12° grid (``OVERLAY_GRID_DEG``), and only
then measured: an exact split has no gap at all (docs/planning.md, issue 24).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from gis.errors import (
    ConflictError,
    InvalidCoordinatesError,
    InvalidGeometryError,
    NotFoundError,
    ValidationError,
)
from gis.geo import area_m2, areas_m2, check_lonlat
from gis.layers.base import utcnow
from gis.layers.grids import Grid, GridMember, GridMemberGrid, list_grids
from gis.layers.incidents import FINAL_STATUSES
from gis.layers.plans import (
    PENDING_STATUSES,
    GridChange,
    Plan,
    PlanScope,
    PlanStatus,
    get_plan,
)
from gis.layers.regions import Region, RegionLevel
from gis.services import grid_versions
from gis.settings import Settings

_FINAL = sorted(status.value for status in FINAL_STATUSES)
MAX_GRIDS_PER_PLAN = 2_000
JIT_FREE_GRIDS = 100  # up to this many proposed grids, no statement of a check nears JIT costs
MAX_LISTED = 1_000  # moved cases / cameras listed in a report; the totals are always exact
# Validation's overlays snap-round onto this grid (degrees, ~0.1 µm). GEOS's default floating
# overlay can answer wrongly when edges coincide to within a few ulps, as the two sides of an
# exact split do: a village minus a union holding a zero-area hole came back whole (issue 24).
# Snap-rounding is robust; the grid is ~70 ulps of a longitude near 120°, so the shapes move
# by at most 0.05 µm — no tolerance is involved.
OVERLAY_GRID_DEG = 1e-12


class PlanInvalidError(ValidationError):
    """The plan's validation has errors (or blocking warnings), so it cannot be applied."""

    code = "plan_invalid"


# --- geometry helpers ---------------------------------------------------------------------------


def polygonal(geom: BaseGeometry | None) -> MultiPolygon:
    """The polygonal parts of any geometry (overlay and make_valid results included)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            if not part.is_empty:
                polygons.append(part)
        elif hasattr(part, "geoms"):  # a MultiPolygon inside a GeometryCollection
            polygons.extend(polygonal(part).geoms)
    return MultiPolygon(polygons)


def geojson(geom: BaseGeometry | None) -> dict[str, Any] | None:
    """A GeoJSON geometry dict (full precision: JSON floats round-trip exactly), or None."""
    if geom is None or geom.is_empty:
        return None
    return dict(mapping(geom))


def repair(geom: BaseGeometry) -> tuple[MultiPolygon, str | None]:
    """A valid MultiPolygon for ``geom`` and the reason it needed repair (None if valid)."""
    if geom.is_valid:
        return polygonal(geom), None
    reason = explain_validity(geom)
    fixed = polygonal(shapely.make_valid(geom))
    return fixed, reason


# --- the proposal -------------------------------------------------------------------------------


@dataclass
class ProposedGrid:
    """One grid of a proposal, its geometry repaired if it had to be."""

    index: int
    code: str
    name: str | None  # None: keep the current grid's name (or the code for a new grid)
    geom: MultiPolygon
    village_code: str | None = None
    households: int | None = None
    population: int | None = None
    member_ids: list[int] = field(default_factory=list)
    allow_multipart: bool = False
    repaired_from: dict[str, Any] | None = None
    repair_reason: str | None = None
    area: float | None = field(default=None, repr=False, compare=False)  # m², see grid_areas

    def feature(self) -> dict[str, Any]:
        """The normalised GeoJSON feature stored in the plan."""
        return {
            "type": "Feature",
            "id": self.code,
            "geometry": geojson(self.geom),
            "properties": {
                "code": self.code,
                "name": self.name,
                "village": self.village_code,
                "households": self.households,
                "population": self.population,
                "members": self.member_ids,
                "allow_multipart": self.allow_multipart,
            },
        }


def grid_areas(grids: list[ProposedGrid]) -> list[float]:
    """Each grid's area in m² (``gis.geo.area_m2``), measured once per grid and kept on it."""
    missing = [g for g in grids if g.area is None]
    if missing:
        for grid, area in zip(missing, areas_m2([g.geom for g in missing]), strict=True):
            grid.area = float(area)
    return [float(g.area) for g in grids if g.area is not None]


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what} must be a whole number ≥ 0, got {value!r}")
    return value


def _members(value: Any, what: str) -> list[int]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
        raise ValidationError(f"{what} must be a grid-member id or a list of ids, got {value!r}")
    return sorted(set(items))


def check_coordinates(geom: BaseGeometry, what: str) -> None:
    """Finite lon/lat inside the valid ranges, or ``InvalidCoordinatesError`` saying which."""
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        raise InvalidGeometryError(f"{what}: the geometry is empty")
    if not bool(shapely.is_valid_input(geom)) or not all(
        math.isfinite(float(v)) for v in coords.flat
    ):
        raise InvalidCoordinatesError(f"{what}: coordinates must be finite numbers")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    try:
        check_lonlat(min_lon, min_lat)
        check_lonlat(max_lon, max_lat)
    except InvalidCoordinatesError as error:
        raise InvalidCoordinatesError(f"{what}: {error.detail}") from error


def parse_proposal(
    collection: dict[str, Any],
    *,
    allow_multipart: bool = False,
    shapes: Sequence[BaseGeometry | None] | None = None,
) -> list[ProposedGrid]:
    """Read a GeoJSON FeatureCollection of proposed grids (WGS84), repairing what can be repaired.

    Structural problems (not polygons, NaN, out-of-range or swapped coordinates, missing code)
    raise at once: they cannot be shown on a map. Geometric ones (self-intersections…) are
    repaired here and reported by ``validate``. ``shapes``: the features' geometries already
    read (by feature index; None where not), so a caller that holds them does not parse the
    GeoJSON again; they are checked and repaired like the others.
    """
    features = collection.get("features")
    if collection.get("type") != "FeatureCollection" or not isinstance(features, list):
        raise ValidationError("proposed must be a GeoJSON FeatureCollection with a features list")
    if not features:
        raise ValidationError("proposed has no features: a plan needs at least one grid")
    if len(features) > MAX_GRIDS_PER_PLAN:
        raise ValidationError(f"a plan may propose at most {MAX_GRIDS_PER_PLAN} grids")
    grids = []
    for index, feature in enumerate(features):
        what = f"feature {index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ValidationError(f"{what} is not a GeoJSON Feature")
        props = feature.get("properties") or {}
        code = props.get("code", feature.get("id"))
        if not isinstance(code, str) or not code.strip() or len(code.strip()) > 20:
            raise ValidationError(f"{what}: properties.code must be a text of 1–20 characters")
        code = code.strip()
        what = f"feature {index} (grid {code})"
        name = props.get("name") or None
        if name is not None and (not isinstance(name, str) or len(name) > 100):
            raise ValidationError(
                f"{what}: properties.name must be a text of at most 100 characters"
            )
        village = props.get("village")
        if village is not None and (not isinstance(village, str) or len(village) > 12):
            raise ValidationError(f"{what}: properties.village must be a village code")
        raw = feature.get("geometry")
        # A tuple, not a set: "type" may be any JSON value, a list or an object too.
        if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
            raise InvalidGeometryError(f"{what}: the geometry must be a Polygon or MultiPolygon")
        try:
            given = shapes[index] if shapes is not None and index < len(shapes) else None
            geom = given if given is not None else shape(raw)
        except (
            ValueError,
            TypeError,
            AttributeError,
            IndexError,
            KeyError,  # a Polygon without "coordinates", or coordinates that are not lists
            shapely.errors.GEOSException,
        ) as e:
            raise InvalidGeometryError(f"{what}: unreadable geometry ({e})") from e
        check_coordinates(geom, what)
        fixed, reason = repair(geom)
        grids.append(
            ProposedGrid(
                index=index,
                code=code,
                name=name,
                geom=fixed,
                village_code=village,
                households=_int_or_none(props.get("households"), f"{what}: households"),
                population=_int_or_none(props.get("population"), f"{what}: population"),
                member_ids=_members(props.get("member", props.get("members")), f"{what}: member"),
                allow_multipart=allow_multipart or bool(props.get("allow_multipart", False)),
                repaired_from=geojson(geom) if reason else None,
                repair_reason=reason,
            )
        )
    return grids


def proposal_from_plan(
    plan: Plan, *, shapes: Sequence[BaseGeometry | None] | None = None
) -> list[ProposedGrid]:
    """The stored (already repaired) proposal of a plan (``shapes``: see ``parse_proposal``)."""
    grids = parse_proposal(plan.proposed, allow_multipart=plan.allow_multipart, shapes=shapes)
    # Repairs were reported when the plan was made; keep them in the report at apply time.
    repairs = {
        issue["grids"][0]: issue
        for issue in plan.validation.get("issues", [])
        if issue["kind"] == "repaired"
    }
    for grid in grids:
        if grid.code in repairs:
            grid.repaired_from = repairs[grid.code].get("original")
            grid.repair_reason = repairs[grid.code].get("reason")
    return grids


def among(column: Any, values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter, where ``IN`` would bind, compile and plan
    one parameter per value (a check's ~40 codes: milliseconds per statement, more under load)."""
    return column == sa.any_(sa.literal(list(values), type_=ARRAY(column.type)))


# --- the scope ----------------------------------------------------------------------------------


@dataclass
class Scope:
    """The region a plan redraws and the villages in it."""

    level: PlanScope
    code: str
    town_code: str
    geom: MultiPolygon
    villages: dict[str, MultiPolygon]


def load_scope(session: Session, level: PlanScope, code: str) -> Scope:
    """The village (or town) a plan redraws, with its villages' boundaries."""
    region = session.get(Region, code)
    if region is None or region.level != level.value:
        raise NotFoundError(f"no {level.value} with code {code!r}")
    geom = polygonal(to_shape(region.geom))
    if level is PlanScope.VILLAGE:
        if region.parent_code is None:
            raise ValidationError(f"village {code} has no town; fix the regions first")
        return Scope(level, code, region.parent_code, geom, {code: geom})
    villages = session.scalars(
        sa.select(Region).where(
            Region.parent_code == code, Region.level == RegionLevel.VILLAGE.value
        )
    ).all()
    return Scope(level, code, code, geom, {v.code: polygonal(to_shape(v.geom)) for v in villages})


def _scope_grid_filter(scope: Scope) -> sa.ColumnElement[bool]:
    if scope.level is PlanScope.VILLAGE:
        return Grid.village_code == scope.code
    return Grid.town_code == scope.code


def current_grids(session: Session, scope: Scope, *, lock: bool = False) -> list[Grid]:
    """The scope's grid versions in force, by code (row-locked when ``lock``)."""
    if lock:
        return grid_versions.lock_current(session, _scope_grid_filter(scope))
    query = sa.select(Grid).where(Grid.valid_to.is_(None), _scope_grid_filter(scope))
    return sorted(session.scalars(query), key=lambda g: g.code)


def version_token(grids: list[Grid]) -> str:
    """The version token of a set of grid versions: a hash of their ids (order-free)."""
    text = ",".join(str(i) for i in sorted(g.id for g in grids))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scope_version(session: Session, level: PlanScope, code: str) -> tuple[str, list[Grid]]:
    """The current version token of a scope and its current grids (the planner's starting point)."""
    scope = load_scope(session, level, code)
    grids = current_grids(session, scope)
    return version_token(grids), grids


# --- validation ---------------------------------------------------------------------------------


def _issue(
    kind: str,
    severity: str,
    grids: list[str],
    message: str,
    *,
    geometry: BaseGeometry | None = None,
    area: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "grids": grids,
        "message": message,
        "area_m2": None if area is None else round(area, 3),
        "geometry": geojson(geometry),
        **extra,
    }


_INTERIORS_MEET = "T********"  # DE-9IM: the interiors share points, so an overlay may have area


def _interiors_meet(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Whether two polygonal geometries share interior points (robust predicate, no overlay)."""
    return bool(shapely.relate_pattern(a, b, _INTERIORS_MEET))


def _union(geoms: npt.NDArray[Any]) -> BaseGeometry:
    """The union of polygons: by cancelling shared edges when they form a valid coverage (edges
    that match vertex for vertex, as unchanged grids do; exact and fast), else by a snap-rounding
    overlay."""
    if shapely.coverage_is_valid(geoms):
        return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms, grid_size=OVERLAY_GRID_DEG)


def _assign_villages(scope: Scope, grids: list[ProposedGrid]) -> list[dict[str, Any]]:
    """Give each grid its village: the scope's village, or (town plans) the one it overlaps most."""
    issues = []
    codes = list(scope.villages)
    villages = shapely.STRtree([scope.villages[code] for code in codes])
    for grid in grids:
        if scope.level is PlanScope.VILLAGE:
            if grid.village_code not in (None, scope.code):
                issues.append(
                    _issue(
                        "wrong_village",
                        "error",
                        [grid.code],
                        f"grid {grid.code} names village {grid.village_code} but the plan "
                        f"redraws village {scope.code}",
                    )
                )
            grid.village_code = scope.code
            continue
        if grid.village_code is not None:
            if grid.village_code not in scope.villages:
                issues.append(
                    _issue(
                        "wrong_village",
                        "error",
                        [grid.code],
                        f"village {grid.village_code} of grid {grid.code} is not in town "
                        f"{scope.code}",
                    )
                )
                grid.village_code = None
            continue
        meeting = [
            codes[k]
            for k in sorted(villages.query(grid.geom, predicate="intersects").tolist())
            if _interiors_meet(grid.geom, scope.villages[codes[k]])
        ]
        if meeting:  # on a border between villages: the one it overlaps most
            grid.village_code = max(
                meeting,
                key=lambda code: (
                    shapely.intersection(
                        grid.geom, scope.villages[code], grid_size=OVERLAY_GRID_DEG
                    ).area
                    if len(meeting) > 1
                    else 0.0
                ),
            )
        else:
            issues.append(
                _issue(
                    "outside",
                    "error",
                    [grid.code],
                    f"grid {grid.code} overlaps no village of town {scope.code}",
                    geometry=grid.geom,
                    area=area_m2(grid.geom),
                )
            )
    return issues


def validate(
    session: Session,
    scope: Scope,
    grids: list[ProposedGrid],
    *,
    settings: Settings,
) -> list[dict[str, Any]]:
    """Every problem of a proposal, each with the geometry that shows it; errors block apply."""
    tolerance = settings.overlap_tolerance_m2
    issues: list[dict[str, Any]] = []
    for grid, grid_area in zip(grids, grid_areas(grids), strict=True):
        if grid.repair_reason:
            if grid.geom.is_empty:
                issues.append(
                    _issue(
                        "invalid_geometry",
                        "error",
                        [grid.code],
                        f"grid {grid.code} is invalid ({grid.repair_reason}) and has no area "
                        "left after repair; redraw it",
                        original=grid.repaired_from,
                        reason=grid.repair_reason,
                    )
                )
            else:
                issues.append(
                    _issue(
                        "repaired",
                        "warning",
                        [grid.code],
                        f"grid {grid.code} was invalid ({grid.repair_reason}); it was repaired "
                        "(geometry = the repaired shape, original = what was sent)",
                        geometry=grid.geom,
                        area=grid_area,
                        original=grid.repaired_from,
                        reason=grid.repair_reason,
                    )
                )
        elif grid.geom.is_empty or grid_area <= tolerance:
            issues.append(
                _issue(
                    "invalid_geometry",
                    "error",
                    [grid.code],
                    f"grid {grid.code} has no area; draw a polygon",
                )
            )
    # Codes: unique in the plan, and not used by a current grid elsewhere (codes are county-wide).
    by_code: dict[str, list[ProposedGrid]] = defaultdict(list)
    for grid in grids:
        by_code[grid.code].append(grid)
    for code, same in sorted(by_code.items()):
        if len(same) > 1:
            issues.append(
                _issue(
                    "duplicate_code",
                    "error",
                    [code],
                    f"code {code} is used by {len(same)} proposed grids (features "
                    f"{', '.join(str(g.index) for g in same)}); codes must be unique",
                )
            )
    taken = session.execute(
        sa.select(Grid.code, Grid.village_code).where(
            Grid.valid_to.is_(None),
            among(Grid.code, list(by_code)),
            sa.not_(_scope_grid_filter(scope)),
        )
    ).all()
    for taken_code, village in taken:
        issues.append(
            _issue(
                "code_taken",
                "error",
                [taken_code],
                f"code {taken_code} belongs to a current grid of village {village}, outside "
                "this plan",
            )
        )
    issues.extend(_assign_villages(scope, grids))
    issues.extend(_member_issues(session, scope, grids))
    drawable = [g for g in grids if not g.geom.is_empty]
    # Multi-piece grids: a grid member patrols one area.
    for grid in drawable:
        if len(grid.geom.geoms) < 2:
            continue
        areas = sorted(((area_m2(p), p) for p in grid.geom.geoms), key=lambda ap: -ap[0])
        real = [p for area, p in areas if area > tolerance]
        if len(real) > 1:
            detached = MultiPolygon(real[1:])
            severity = "warning" if grid.allow_multipart else "error"
            issues.append(
                _issue(
                    "multi_piece",
                    severity,
                    [grid.code],
                    f"grid {grid.code} has {len(real)} separate pieces (geometry = the pieces "
                    "detached from the largest)"
                    + (
                        "; allowed for this grid"
                        if grid.allow_multipart
                        else "; set allow_multipart if that is intended"
                    ),
                    geometry=detached,
                    area=area_m2(detached),
                    pieces=len(real),
                )
            )
    # Overlaps between proposed grids (only pairs whose interiors meet: neighbours that merely
    # share an edge need no overlay).
    geoms = np.array([g.geom for g in drawable], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    meet = shapely.relate_pattern(geoms[left], geoms[right], _INTERIORS_MEET)
    for i, j in zip(left[meet].tolist(), right[meet].tolist(), strict=True):
        a, b = drawable[i], drawable[j]
        overlap = polygonal(shapely.intersection(a.geom, b.geom, grid_size=OVERLAY_GRID_DEG))
        area = area_m2(overlap)
        if area > tolerance:
            issues.append(
                _issue(
                    "overlap",
                    "error",
                    sorted([a.code, b.code]),
                    f"grids {a.code} and {b.code} overlap by {area:,.1f} m² "
                    f"(tolerance {tolerance} m², GIS_OVERLAP_TOLERANCE_M2)",
                    geometry=overlap,
                    area=area,
                )
            )
    # Grids outside their village.
    for grid in drawable:
        village_geom = scope.villages.get(grid.village_code or "")
        if village_geom is not None:
            shapely.prepare(village_geom)  # once: many grids are tested against one village
        if village_geom is None or village_geom.covers(grid.geom):
            continue
        outside = polygonal(shapely.difference(grid.geom, village_geom, grid_size=OVERLAY_GRID_DEG))
        area = area_m2(outside)
        if area > tolerance:
            issues.append(
                _issue(
                    "outside",
                    "error",
                    [grid.code],
                    f"{area:,.1f} m² of grid {grid.code} lies outside village {grid.village_code}",
                    geometry=outside,
                    area=area,
                )
            )
    # Gaps: the grids must cover each village (the union of those that reach into it).
    targets = (
        {scope.code: scope.geom}
        if scope.level is PlanScope.VILLAGE
        else {code: geom for code, geom in scope.villages.items()}
    )
    for code, target in sorted(targets.items()):
        union = _union(geoms[tree.query(target, predicate="intersects")])
        gap = polygonal(shapely.difference(target, union, grid_size=OVERLAY_GRID_DEG))
        area = area_m2(gap)
        if area > tolerance:
            pieces = [p for p in gap.geoms if area_m2(p) > tolerance / 10]
            issues.append(
                _issue(
                    "gap",
                    "error",
                    [],
                    f"{area:,.1f} m² of village {code} is in no proposed grid "
                    f"({len(pieces)} piece(s)); the grids must cover the village",
                    geometry=MultiPolygon(pieces) if pieces else gap,
                    area=area,
                    village=code,
                )
            )
    return issues


def _member_issues(
    session: Session, scope: Scope, grids: list[ProposedGrid]
) -> list[dict[str, Any]]:
    wanted = sorted({m for g in grids for m in g.member_ids})
    if not wanted:
        return []
    found = {
        m.id: m for m in session.scalars(sa.select(GridMember).where(among(GridMember.id, wanted)))
    }
    issues = []
    for grid in grids:
        for member_id in grid.member_ids:
            member = found.get(member_id)
            if member is None:
                issues.append(
                    _issue(
                        "unknown_member",
                        "error",
                        [grid.code],
                        f"grid member {member_id} of grid {grid.code} does not exist",
                    )
                )
            elif not member.active:
                issues.append(
                    _issue(
                        "inactive_member",
                        "warning",
                        [grid.code],
                        f"grid member {member_id} ({member.name}) of grid {grid.code} is inactive",
                    )
                )
            elif member.town_code != scope.town_code:
                issues.append(
                    _issue(
                        "member_other_town",
                        "warning",
                        [grid.code],
                        f"grid member {member_id} ({member.name}) belongs to town "
                        f"{member.town_code}, not {scope.town_code}",
                    )
                )
    return issues


# --- balance and impact -------------------------------------------------------------------------
#
# Both count points (cases, cameras) in proposed polygons. The points near the proposal are read
# once, by one indexed query each (a village's ~3k cases), and counted in-process against the
# ~40 proposed polygons with shapely (``covered_by``: a point on an edge counts, as ``ST_Covers``
# says; on a shared edge the lowest code wins, as everywhere). Sending 40 polygons to PostGIS and
# probing the cases' index once per polygon cost 100–170 ms a check (bench/plans/editor.py).
# Only the households/population estimate (an overlay with the grids in force) stays in SQL, and
# only for the grids that need it: a draft's unchanged grids keep their estimate
# (``known_estimates``).

_PROPOSED_CTE = """
proposed AS MATERIALIZED (  -- each polygon built once, so PostGIS can prepare it once
    SELECT t.k, ST_SetSRID(ST_GeomFromWKB(t.wkb), 4326) AS geom
      FROM unnest(CAST(:keys AS int[]), CAST(:wkbs AS bytea[])) AS t(k, wkb)
)
"""


@dataclass
class Surroundings:
    """The cases and cameras a proposal's balance and impact count: those in the bounding box
    of the scope and the proposal, and the cases filed under the scope's current grids."""

    case_id: npt.NDArray[np.int64]
    case_status: npt.NDArray[Any]
    case_open: npt.NDArray[np.bool_]
    case_recent: npt.NDArray[np.bool_]  # reported in the last 12 months
    case_grid: npt.NDArray[Any]  # the grid code each case is filed under (or None)
    case_points: npt.NDArray[Any]
    camera_code: npt.NDArray[Any]
    camera_name: npt.NDArray[Any]
    camera_grid: npt.NDArray[Any]  # the current grid covering it (lowest code), or None
    camera_points: npt.NDArray[Any]


def _envelope(scope: Scope, grids: list[ProposedGrid]) -> dict[str, float]:
    bounds = np.array(
        [scope.geom.bounds, *(g.geom.bounds for g in grids if not g.geom.is_empty)], dtype=float
    )
    bounds = bounds[np.isfinite(bounds).all(axis=1)]
    return {
        "xmin": float(bounds[:, 0].min()),
        "ymin": float(bounds[:, 1].min()),
        "xmax": float(bounds[:, 2].max()),
        "ymax": float(bounds[:, 3].max()),
    }


_BOX = "ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326)"


def surroundings(
    session: Session,
    scope: Scope,
    grids: list[ProposedGrid],
    current: list[Grid],
    *,
    now: datetime,
) -> Surroundings:
    """Read the cases and cameras a check of ``grids`` counts (one statement, two indexed
    scans: under load each round trip to PostgreSQL cost 10–25 ms, bench/plans/editor.py)."""
    rows = session.execute(
        sa.text(
            f"""
            SELECT 'case' AS kind, i.id, i.status AS code, NULL AS name, i.grid_code,
                   i.status <> ALL(:final) AS is_open, i.reported_at >= :since AS recent,
                   ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
              FROM incidents i
             WHERE i.geom && {_BOX} OR i.grid_code = ANY(:old_codes)
            UNION ALL
            SELECT 'camera', c.id, c.code, c.name,
                   (SELECT g.code FROM grids g
                     WHERE g.valid_to IS NULL AND ST_Covers(g.geom, c.geom)
                     ORDER BY g.code LIMIT 1),
                   NULL, NULL, ST_X(c.geom), ST_Y(c.geom)
              FROM cameras c
             WHERE c.geom && {_BOX}
            """  # noqa: S608
        ),
        {
            **_envelope(scope, grids),
            "final": _FINAL,
            "since": now - timedelta(days=365),
            "old_codes": [g.code for g in current],
        },
    ).all()
    cases = sorted((r for r in rows if r.kind == "case"), key=lambda r: r.id)
    cameras = sorted((r for r in rows if r.kind == "camera"), key=lambda r: r.code)

    def column(rows: Any, k: int, dtype: Any = object) -> npt.NDArray[Any]:
        return np.array([r[k] for r in rows], dtype=dtype)

    def points(rows: Any, x: int, y: int) -> npt.NDArray[Any]:
        xy = np.array([(r[x], r[y]) for r in rows], dtype=float).reshape(-1, 2)
        return np.asarray(shapely.points(xy), dtype=object).reshape(-1)

    return Surroundings(
        case_id=column(cases, 1, np.int64),
        case_status=column(cases, 2),
        case_open=column(cases, 5, bool),
        case_recent=column(cases, 6, bool),
        case_grid=column(cases, 4),
        case_points=points(cases, 7, 8),
        camera_code=column(cameras, 2),
        camera_name=column(cameras, 3),
        camera_grid=column(cameras, 4),
        camera_points=points(cameras, 7, 8),
    )


def _covered(
    geoms: npt.NDArray[Any], points: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(point, polygon) index pairs where the polygon covers the point (``ST_Covers``)."""
    if not len(geoms) or not len(points):
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    # The tree holds the points and the polygons probe it: each polygon is then prepared once
    # (the other way round, every point would test an unprepared polygon: ~10× slower).
    pairs = shapely.STRtree(points).query(geoms, predicate="covers")
    return pairs[1], pairs[0]


def _lowest_code(
    codes: list[str], pairs: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]], count: int
) -> npt.NDArray[Any]:
    """For each of ``count`` points, the lowest code among the polygons covering it (or None):
    the tie-break on a shared edge."""
    order = sorted(range(len(codes)), key=lambda k: codes[k])
    rank = np.empty(len(codes), dtype=np.intp)
    rank[order] = np.arange(len(codes))
    best = np.full(count, len(codes), dtype=np.intp)
    np.minimum.at(best, pairs[0], rank[pairs[1]])
    by_rank = np.array([codes[k] for k in order] + [None], dtype=object)
    return by_rank[best]


def _drawable(grids: list[ProposedGrid]) -> list[ProposedGrid]:
    return [g for g in grids if not g.geom.is_empty]


def _estimates(session: Session, grids: list[ProposedGrid]) -> dict[int, tuple[float, float]]:
    """Households and population of each grid, estimated from the grids in force by the share
    of each one's area it covers (one overlay per (current, proposed) pair, in PostGIS)."""
    if not grids:
        return {}
    rows = session.execute(
        sa.text(
            f"""
            WITH {_PROPOSED_CTE}
            SELECT p.k, est.hh, est.pop
              FROM proposed p
              CROSS JOIN LATERAL (
                    SELECT COALESCE(sum(g.households * x.share), 0) AS hh,
                           COALESCE(sum(g.population * x.share), 0) AS pop
                      FROM grids g
                     CROSS JOIN LATERAL (
                           SELECT ST_Area(ST_Intersection(g.geom, p.geom)::geography)
                                  / NULLIF(ST_Area(g.geom::geography), 0) AS share) x
                     WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, p.geom)) est
            """  # noqa: S608
        ),
        {"keys": [g.index for g in grids], "wkbs": [shapely.to_wkb(g.geom) for g in grids]},
    ).all()
    return {int(r.k): (float(r.hh), float(r.pop)) for r in rows}


Estimate = tuple[float | None, float | None]


def _geometry_key(geometry: Any) -> str:
    """A GeoJSON geometry as comparable text: the same whether its coordinates are lists (read
    from the database) or tuples (made by shapely), full float precision."""
    return json.dumps(geometry, separators=(",", ":"))


def known_estimates(
    before: dict[str, Any],
    before_balance: dict[str, Any],
    after: list[dict[str, Any]],
    version: str,
) -> dict[int, Estimate]:
    """The households/population estimates of a draft's previous check that still hold for
    its new features: by feature index, for the features whose code and geometry are unchanged,
    when the previous check was measured against the same grids in force (``version``, the
    scope's token: a token never comes back once the grids change). An estimate depends only
    on the grid's shape and the grids in force, so it is the same as measured again."""
    if not before_balance or before_balance.get("version") != version:
        return {}
    entries: dict[str, dict[str, Any]] = {}
    geometries: dict[str, Any] = {}
    twice: set[str] = set()
    for entry in before_balance.get("grids", []):
        twice.update({entry["code"]} & entries.keys())
        entries[entry["code"]] = entry
    for feature in before.get("features", []):
        code = (feature.get("properties") or {}).get("code", feature.get("id"))
        twice.update({code} & geometries.keys())
        geometries[code] = _geometry_key(feature.get("geometry"))
    known: dict[int, Estimate] = {}
    for index, feature in enumerate(after):
        code = (feature.get("properties") or {}).get("code", feature.get("id"))
        if not isinstance(code, str) or code in twice or code not in entries:
            continue
        if feature.get("geometry") is None or geometries.get(code) != _geometry_key(
            feature.get("geometry")
        ):
            continue
        entry = entries[code]
        hh = float(entry["households"]) if entry.get("households_estimated") else None
        pop = float(entry["population"]) if entry.get("population_estimated") else None
        if hh is not None or pop is not None:
            known[index] = (hh, pop)
    return known


def balance(
    session: Session,
    scope: Scope,
    grids: list[ProposedGrid],
    *,
    settings: Settings,
    now: datetime,
    around: Surroundings | None = None,
    known: dict[int, Estimate] | None = None,
) -> dict[str, Any]:
    """Workload per proposed grid and its deviation from its village's mean.

    ``around``: the cases and cameras already read for this check (else read here); ``known``:
    households/population estimates still valid, by grid index (``known_estimates``)."""
    if around is None:
        around = surroundings(session, scope, grids, [], now=now)
    known = known or {}
    drawable = _drawable(grids)
    geoms = np.array([g.geom for g in drawable], dtype=object)
    slot = {id(g): k for k, g in enumerate(drawable)}
    point, polygon = _covered(geoms, around.case_points)
    recent = around.case_recent[point] if len(point) else np.zeros(0, dtype=bool)
    incidents = np.bincount(polygon[recent], minlength=len(drawable))
    cameras = np.bincount(_covered(geoms, around.camera_points)[1], minlength=len(drawable))
    wanted = [
        g
        for g in drawable
        if (g.households is None and known.get(g.index, (None, None))[0] is None)
        or (g.population is None and known.get(g.index, (None, None))[1] is None)
    ]
    measured = _estimates(session, wanted)
    threshold = settings.plan_balance_threshold
    areas = grid_areas(grids)
    per_grid: list[dict[str, Any]] = []
    for grid, area in zip(grids, areas, strict=True):
        k = slot.get(id(grid))
        hh, pop = measured.get(grid.index, known.get(grid.index, (None, None)))
        entry: dict[str, Any] = {
            "code": grid.code,
            "village": grid.village_code,
            "area_m2": round(float(area), 1),
            "households": grid.households
            if grid.households is not None
            else round(hh if hh is not None else 0.0),
            "households_estimated": grid.households is None,
            "population": grid.population
            if grid.population is not None
            else round(pop if pop is not None else 0.0),
            "population_estimated": grid.population is None,
            "incidents_12m": int(incidents[k]) if k is not None else 0,
            "cameras": int(cameras[k]) if k is not None else 0,
            "members": grid.member_ids,
        }
        per_grid.append(entry)
    metrics = ("households", "population", "incidents_12m", "cameras")
    by_village: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for entry in per_grid:
        by_village[entry["village"]].append(entry)
    means: dict[str, dict[str, float]] = {}
    for village, entries in by_village.items():
        mean = {m: sum(e[m] for e in entries) / len(entries) for m in metrics}
        means[village or ""] = {m: round(v, 2) for m, v in mean.items()}
        for entry in entries:
            entry["deviation"] = {
                m: (round(entry[m] / mean[m] - 1.0, 3) if mean[m] > 0 else None) for m in metrics
            }
            # Cameras are equipment, not work: they are shown but do not flag a grid.
            entry["flagged"] = sorted(
                m
                for m in ("households", "population", "incidents_12m")
                if entry["deviation"][m] is not None and abs(entry["deviation"][m]) > threshold
            )
    return {"threshold": threshold, "village_means": means, "grids": per_grid}


def impact(
    session: Session,
    scope: Scope,
    grids: list[ProposedGrid],
    current: list[Grid],
    *,
    around: Surroundings | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What the plan would change: cases, cameras, members, grid codes."""
    if around is None:
        around = surroundings(session, scope, grids, current, now=now or utcnow())
    drawable = _drawable(grids)
    geoms = np.array([g.geom for g in drawable], dtype=object)
    codes = [g.code for g in drawable]
    area = scope.geom
    shapely.prepare(area)
    # The cases of the scope: in its area, or filed under one of its current grids.
    old_codes = {g.code for g in current}
    in_scope = shapely.intersects(area, around.case_points) | np.array(
        [c in old_codes for c in around.case_grid], dtype=bool
    )
    to_code = _lowest_code(codes, _covered(geoms, around.case_points), len(around.case_points))
    moving = in_scope & (to_code != around.case_grid)
    open_moves = np.flatnonzero(moving & around.case_open)
    historic = int((moving & ~around.case_open).sum())
    camera_to = _lowest_code(
        codes, _covered(geoms, around.camera_points), len(around.camera_points)
    )
    camera_moves = np.flatnonzero(
        shapely.intersects(area, around.camera_points) & (camera_to != around.camera_grid)
    )
    old_by_code = {g.code: g for g in current}
    new_codes = {g.code for g in grids}
    changed = []
    unchanged = []
    for grid in grids:
        old = old_by_code.get(grid.code)
        if old is None:
            continue
        if _same_grid(old, grid):
            unchanged.append(grid.code)
        else:
            changed.append(grid.code)
    return {
        "grids": {
            "added": sorted(new_codes - set(old_by_code)),
            "retired": sorted(set(old_by_code) - new_codes),
            "changed": sorted(changed),
            "unchanged": sorted(unchanged),
        },
        "open_cases_moving": len(open_moves),
        "moves": [
            {
                "incident_id": int(around.case_id[k]),
                "status": around.case_status[k],
                "from": around.case_grid[k],
                "to": to_code[k],
                "lon": float(shapely.get_x(around.case_points[k])),
                "lat": float(shapely.get_y(around.case_points[k])),
            }
            for k in open_moves[:MAX_LISTED]
        ],
        "historic_cases_keeping_grid": historic,
        "cameras_changing_grid": len(camera_moves),
        "cameras": [
            {
                "code": around.camera_code[k],
                "name": around.camera_name[k],
                "from": around.camera_grid[k],
                "to": camera_to[k],
            }
            for k in camera_moves[:MAX_LISTED]
        ],
        "members": _member_impact(session, grids, current),
    }


def _member_impact(
    session: Session, grids: list[ProposedGrid], current: list[Grid]
) -> list[dict[str, Any]]:
    """Members whose set of grids changes: retired grids lose their links, named members gain."""
    proposed_codes = {g.code for g in grids}
    retired = {g.code for g in current} - proposed_codes
    codes = sorted({g.code for g in current} | proposed_codes)
    links = session.execute(
        sa.select(GridMemberGrid.member_id, GridMemberGrid.grid_code).where(
            among(GridMemberGrid.grid_code, codes)
        )
    ).all()
    before: dict[int, set[str]] = defaultdict(set)
    for member_id, code in links:
        before[member_id].add(code)
    after = {m: c - retired for m, c in before.items()}
    for grid in grids:
        if grid.member_ids:
            for member_codes in after.values():
                member_codes.discard(grid.code)
            for member_id in grid.member_ids:
                after.setdefault(member_id, set()).add(grid.code)
    moving = [m for m in sorted(after) if after[m] != before.get(m, set())]
    names = (
        dict(
            session.execute(
                sa.select(GridMember.id, GridMember.name).where(among(GridMember.id, moving))
            ).all()
        )
        if moving
        else {}
    )
    return [
        {
            "member_id": member_id,
            "name": names.get(member_id),
            "before": sorted(before.get(member_id, set())),
            "after": sorted(after[member_id]),
        }
        for member_id in moving
    ]


def _same_grid(old: Grid, new: ProposedGrid) -> bool:
    """True when a proposed grid equals the current version (no new version is needed)."""
    if new.name is not None and old.name != new.name:
        return False
    if new.households is not None and new.households != old.households:
        return False
    if new.population is not None and new.population != old.population:
        return False
    stored = to_shape(old.geom)
    if stored.equals_exact(new.geom, 0.0):  # a draft's untouched grid: vertex for vertex
        return True
    old_geom = shapely.normalize(stored)
    return bool(old_geom.equals_exact(shapely.normalize(new.geom), 1e-9)) or bool(
        old_geom.equals(new.geom)
    )


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Validation, balance and impact of a proposal against the scope as it is now."""

    issues: list[dict[str, Any]]
    balance: dict[str, Any]
    impact: dict[str, Any]

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Issues that block apply."""
        return [i for i in self.issues if i["severity"] == "error"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Issues shown to the planner that do not block apply (unless configured to)."""
        return [i for i in self.issues if i["severity"] == "warning"]

    def validation(self) -> dict[str, Any]:
        """The JSON stored in ``plans.validation``."""
        return {
            "valid": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "issues": self.issues,
        }


def evaluate(
    session: Session,
    scope: Scope,
    grids: list[ProposedGrid],
    current: list[Grid],
    *,
    settings: Settings,
    now: datetime,
    known: dict[int, Estimate] | None = None,
) -> Evaluation:
    """Validate a proposal and measure its balance and impact.

    ``known``: households/population estimates of unchanged grids from the draft's previous
    check (``known_estimates``); without it everything is measured."""
    if len(grids) > JIT_FREE_GRIDS:
        # These few statements are cheap but a large plan's estimated cost triggers JIT
        # compilation, which costs more than the statements themselves; likewise parallel
        # workers: starting them costs more than these index scans (bench/plans). Off for this
        # transaction only. A village's statements are estimated far below jit_above_cost
        # (2k–20k against 100k), and under load the round trip alone cost 13–25 ms.
        session.execute(
            sa.text(
                "SELECT set_config('jit', 'off', true), "
                "set_config('max_parallel_workers_per_gather', '0', true)"
            )
        )
    issues = validate(session, scope, grids, settings=settings)
    around = surroundings(session, scope, grids, current, now=now)
    report = balance(session, scope, grids, settings=settings, now=now, around=around, known=known)
    # The grids in force the estimates were measured against (``known_estimates`` checks it).
    report["version"] = version_token(current)
    for entry in report["grids"]:
        if entry["flagged"]:
            devs = ", ".join(f"{m} {entry['deviation'][m]:+.0%}" for m in entry["flagged"])
            issues.append(
                _issue(
                    "imbalanced",
                    "warning",
                    [entry["code"]],
                    f"grid {entry['code']} deviates from its village mean beyond "
                    f"±{settings.plan_balance_threshold:.0%}: {devs}",
                )
            )
    return Evaluation(issues, report, impact(session, scope, grids, current, around=around))


def create_plan(
    session: Session,
    *,
    scope_level: PlanScope,
    scope_code: str,
    proposed: dict[str, Any],
    based_on_version: str,
    actor: str,
    settings: Settings,
    allow_multipart: bool = False,
    title: str | None = None,
    now: datetime | None = None,
) -> Plan:
    """Validate and store a draft plan; 409 if ``based_on_version`` is not the scope's token."""
    now = now or utcnow()
    scope = load_scope(session, scope_level, scope_code)
    grids = parse_proposal(proposed, allow_multipart=allow_multipart)
    current = current_grids(session, scope)
    token = version_token(current)
    if based_on_version != token:
        raise ConflictError(
            f"the grids of {scope_level.value} {scope_code} changed: based_on_version "
            f"{based_on_version!r} is not the current {token!r}; start again from "
            f"GET /plans/base/{scope_code}",
            current_version=token,
        )
    evaluation = evaluate(session, scope, grids, current, settings=settings, now=now)
    plan = Plan(
        scope_level=scope_level.value,
        scope_code=scope_code,
        title=title,
        proposed={"type": "FeatureCollection", "features": [g.feature() for g in grids]},
        allow_multipart=allow_multipart,
        based_on_version=token,
        status=PlanStatus.DRAFT.value,
        validation=evaluation.validation(),
        balance=evaluation.balance,
        impact=evaluation.impact,
        created_by=actor,
        created_at=now,
    )
    session.add(plan)
    session.flush()
    return plan


def lock_scope(session: Session, scope: Scope, lock_timeout_s: float) -> None:
    """Serialise changes to one scope: lock its region rows (town and villages), in code order."""
    grid_versions.lock_regions(
        session, {scope.code, *scope.villages}, lock_timeout_s=lock_timeout_s
    )


def apply_plan(
    session: Session,
    plan_id: int,
    *,
    actor: str,
    settings: Settings,
    now: datetime | None = None,
) -> Plan:
    """Apply a draft plan in the caller's transaction (409 stale or not draft, 422 invalid)."""
    # Lock order: the scope's region rows first, then the plan row, then the grids. Every apply
    # (and import) of a scope takes the region lock first, so they queue there instead of
    # deadlocking on each other's plan rows (apply marks the other drafts superseded).
    scope_of = get_plan(session, plan_id)
    scope = load_scope(session, PlanScope(scope_of.scope_level), scope_of.scope_code)
    # A lock wait past the timeout is SQLSTATE 55P03: gis.db makes it a 409 to retry.
    lock_scope(session, scope, settings.plan_lock_timeout_s)
    plan = get_plan(session, plan_id, for_update=True)
    if plan.status not in PENDING_STATUSES:
        raise ConflictError(
            f"plan {plan_id} is {plan.status}; only a draft or submitted plan can be applied"
        )
    current = current_grids(session, scope, lock=True)
    # The clock is read once the locks are held: a change that waited for another must not be
    # dated before it (valid_to > valid_from would fail, and history would run backwards).
    now = now or utcnow()
    token = version_token(current)
    if token != plan.based_on_version:
        raise ConflictError(
            f"the grids of {plan.scope_level} {plan.scope_code} changed since plan {plan_id} was "
            f"made (based_on_version {plan.based_on_version!r}, now {token!r}); make a new plan",
            current_version=token,
            changed=changes_since(session, plan),
        )
    grids = proposal_from_plan(plan)
    evaluation = evaluate(session, scope, grids, current, settings=settings, now=now)
    blocking = evaluation.errors + (evaluation.warnings if settings.plan_warnings_block else [])
    if blocking:
        summary = "; ".join(i["message"] for i in blocking[:5])
        raise PlanInvalidError(
            f"plan {plan_id} cannot be applied: {len(blocking)} blocking issue(s): {summary}",
            issues=[{k: v for k, v in i.items() if k != "geometry"} for i in blocking[:50]],
        )
    # Members first: the cases that move take the member of their new grid.
    _link_members(
        session, grids, retired_codes=sorted({g.code for g in current} - {g.code for g in grids})
    )
    written = grid_versions.write_versions(
        session, _plan_write(plan, scope, grids, current, evaluation, actor, settings), now=now
    )
    # Other drafts on the same base can no longer apply; say so instead of letting them 409.
    session.execute(
        sa.update(Plan)
        .where(
            Plan.scope_code == plan.scope_code,
            Plan.status.in_(PENDING_STATUSES),
            Plan.id != plan.id,
        )
        .values(status=PlanStatus.SUPERSEDED.value)
    )
    plan.status = PlanStatus.APPLIED.value
    plan.applied_by = actor
    plan.applied_at = now
    plan.validation = evaluation.validation()
    plan.balance = evaluation.balance
    plan.impact = evaluation.impact
    plan.result = {
        "created": [f"{g.code} v{g.version}" for g in written.created],
        "retired": [f"{g.code} v{g.version}" for g in written.retired],
        "cases": {k: v for k, v in written.cases.as_dict().items() if k != "moves"},
        "moves": written.cases.moves[:MAX_LISTED],
        "version": None,
    }
    session.flush()
    plan.result = {**plan.result, "version": version_token(current_grids(session, scope))}
    session.flush()
    return plan


def changes_since(session: Session, plan: Plan) -> list[dict[str, Any]]:
    """What changed in the plan's scope since the plan was made: grid versions brought into or
    out of force, with who and how (the 409 of a stale apply says this; first 100)."""
    scope = load_scope(session, PlanScope(plan.scope_level), plan.scope_code)
    codes = sa.select(Grid.code).where(_scope_grid_filter(scope))
    rows = session.scalars(
        sa.select(GridChange)
        .where(GridChange.code.in_(codes), GridChange.at > plan.created_at)
        .order_by(GridChange.at, GridChange.id)
        .limit(100)
    ).all()
    return [
        {
            "code": r.code,
            "version": r.version,
            "change": r.change,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "source": r.source,
            "plan_id": r.plan_id,
        }
        for r in rows
    ]


def _plan_write(
    plan: Plan,
    scope: Scope,
    grids: list[ProposedGrid],
    current: list[Grid],
    evaluation: Evaluation,
    actor: str,
    settings: Settings,
) -> grid_versions.GridWrite:
    """The plan as a grid write: changed and removed grids end, changed and new ones start;
    unchanged grids stay as they are."""
    old_by_code = {g.code: g for g in current}
    keep = {g.code for g in grids if g.code in old_by_code and _same_grid(old_by_code[g.code], g)}
    # Omitted counts take the balance's area-weighted estimate for the new shape.
    estimates = {
        entry["code"]: (int(entry["households"]), int(entry["population"]))
        for entry in evaluation.balance["grids"]
    }
    create = []
    for grid in grids:
        if grid.code in keep:
            continue
        previous = old_by_code.get(grid.code)
        households, population = estimates.get(grid.code, (0, 0))
        if grid.village_code is None:  # validation places every grid; this is a bug if reached
            raise PlanInvalidError(f"grid {grid.code} lies in no village of the scope")
        create.append(
            grid_versions.NewGridVersion(
                code=grid.code,
                name=grid.name or (previous.name if previous is not None else grid.code),
                village_code=grid.village_code,
                town_code=scope.town_code,
                households=households if grid.households is None else grid.households,
                population=population if grid.population is None else grid.population,
                geom=grid.geom,
            )
        )
    return grid_versions.GridWrite(
        retire=[g for g in current if g.code not in keep],
        create=create,
        actor=actor,
        source="plan",
        note=f"plan {plan.id}",
        reason=f"grid boundaries redrawn by plan {plan.id}",
        plan_id=plan.id,
        cases_area=scope.geom,
        snap_m=settings.snap_meters,
    )


def _link_members(session: Session, grids: list[ProposedGrid], *, retired_codes: list[str]) -> None:
    """Members named in the plan serve their grids; grids that no longer exist lose their links."""
    if retired_codes:
        session.execute(
            sa.delete(GridMemberGrid).where(GridMemberGrid.grid_code.in_(retired_codes))
        )
    for grid in grids:
        if not grid.member_ids:
            continue
        session.execute(sa.delete(GridMemberGrid).where(GridMemberGrid.grid_code == grid.code))
        for member_id in grid.member_ids:
            session.add(GridMemberGrid(member_id=member_id, grid_code=grid.code))
    session.flush()


def reject_plan(session: Session, plan_id: int, *, actor: str) -> Plan:
    """Mark a draft or submitted plan rejected (it stays for the record)."""
    plan = get_plan(session, plan_id, for_update=True)
    if plan.status not in PENDING_STATUSES:
        raise ConflictError(
            f"plan {plan_id} is {plan.status}; only a draft or submitted plan can be rejected"
        )
    plan.status = PlanStatus.REJECTED.value
    plan.result = {"rejected_by": actor, "rejected_at": utcnow().isoformat()}
    session.flush()
    return plan


# --- reading plans ------------------------------------------------------------------------------


def scope_town(session: Session, level: PlanScope, code: str) -> str:
    """The town a village or town scope belongs to (for jurisdiction), or ``NotFoundError``."""
    region = session.get(Region, code)
    if region is None or region.level != level.value:
        raise NotFoundError(f"no {level.value} with code {code!r}")
    return region.code if level is PlanScope.TOWN else str(region.parent_code)


def grids_before(session: Session, plan: Plan) -> list[tuple[str, BaseGeometry]]:
    """The grids a plan is drawn against, by code: those it replaced when applied, today's for
    a draft."""
    scope = load_scope(session, PlanScope(plan.scope_level), plan.scope_code)
    at = plan.applied_at - timedelta(microseconds=1) if plan.applied_at else None
    grids = (
        list_grids(session, at=at, village_code=scope.code)
        if scope.level is PlanScope.VILLAGE
        else list_grids(session, at=at, town_code=scope.code)
    )
    return [(g.code, to_shape(g.geom)) for g in grids]
