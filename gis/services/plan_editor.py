"""The planner's editor: topology gestures on a draft plan's village coverage, with undo/redo.

The browser sends a gesture — a split line, the codes to merge, a moved shared vertex, a new
grid's outline, a name, a member — and this module applies it to the draft's grids with shapely 2,
keeping them a *coverage*: every edge two grids share has the same vertices in both, so no gap or
sliver can open between them. After each gesture:

- new vertices (where a split line or a new grid's outline meets an edge) are inserted into every
  grid whose boundary they lie on (``node``), so neighbours keep matching edges;
- ``coverage_check`` proves the result with ``shapely.coverage_invalid_edges``;
- the plan is re-evaluated by ``gis.services.ogc_plans.revise`` — the plan's own validation,
  balance and impact (``gis.services.planning``), nothing computed twice.

Moving a vertex moves it in every grid that has it, so a shared boundary moves for both sides.
Moving a vertex of the village's outline, by contrast, opens a gap (or pushes a grid outside):
validation reports it, with its polygon, and apply refuses the plan until it is fixed.

Each gesture is a ``PlanEdit`` row (the proposal before and after): undo restores ``before`` of
the newest edit, redo ``after`` of the oldest undone one; a new gesture drops what was undone.
Bad gestures (a self-intersecting outline, a line that does not cross the grid, grids that do not
touch, a grid outside the village) raise a ``ValidationError`` saying why, before anything is
written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import LineString, MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as split_by
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from gis.errors import ConflictError, InvalidGeometryError, ValidationError
from gis.geo import area_m2
from gis.layers.base import utcnow
from gis.layers.grids import Grid, GridMemberGrid
from gis.layers.plans import Plan, PlanEdit, PlanScope, list_plan_edits
from gis.services import ogc_plans, planning
from gis.settings import Settings

# A vertex closer than this (degrees, ~0.1 mm) to another grid's edge lies on it and is inserted
# there; a moved vertex is found within it. Far below digitising precision, far above the
# floating-point error of an intersection point (~1e-14°).
VERTEX_TOLERANCE_DEG = 1e-9
MAX_LINE_POINTS = 1_000
MAX_HISTORY = 200  # edits kept per plan; the oldest are dropped (undo stops there)


class GestureError(ValidationError):
    """A gesture that cannot be applied (the reason says why); nothing was changed."""

    code = "invalid_gesture"


# --- the coverage -------------------------------------------------------------------------------


@dataclass
class Cell:
    """One grid of the draft while a gesture runs: its stored feature and its geometry."""

    feature: dict[str, Any]
    geom: MultiPolygon
    changed: bool = False

    @property
    def code(self) -> str:
        """The grid code."""
        return str(self.feature["properties"]["code"])


def _cells(plan: Plan) -> list[Cell]:
    return [
        Cell(
            dict(f, properties=dict(f.get("properties") or {})),
            planning.polygonal(shape(f["geometry"])),
        )
        for f in ogc_plans.features(plan)
        if f.get("geometry")
    ]


def _find(cells: list[Cell], code: Any) -> Cell:
    for cell in cells:
        if cell.code == code:
            return cell
    raise GestureError(f"the draft has no grid {code!r}")


def _insert_on_ring(
    ring: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The ring with each point that lies on one of its edges (not at a vertex) inserted there."""
    start, end = ring[:-1], ring[1:]
    seg = end - start
    length2 = (seg**2).sum(axis=1)
    inserts: dict[int, list[tuple[float, tuple[float, float]]]] = {}
    tol2 = VERTEX_TOLERANCE_DEG**2
    for x, y in points:
        if ((ring[:, 0] - x) ** 2 + (ring[:, 1] - y) ** 2 <= tol2).any():
            continue  # already a vertex
        with np.errstate(invalid="ignore", divide="ignore"):
            t = ((x - start[:, 0]) * seg[:, 0] + (y - start[:, 1]) * seg[:, 1]) / length2
        t = np.nan_to_num(t, nan=-1.0)
        inside = (t > 0) & (t < 1)
        if not inside.any():
            continue
        px = start[:, 0] + t * seg[:, 0]
        py = start[:, 1] + t * seg[:, 1]
        d2 = np.where(inside, (px - x) ** 2 + (py - y) ** 2, np.inf)
        k = int(np.argmin(d2))
        if d2[k] <= tol2:
            inserts.setdefault(k, []).append((float(t[k]), (float(x), float(y))))
    if not inserts:
        return ring
    out: list[tuple[float, float]] = []
    for k in range(len(start)):
        out.append((float(start[k, 0]), float(start[k, 1])))
        out.extend(xy for _, xy in sorted(inserts.get(k, [])))
    out.append(out[0])
    return np.asarray(out)


def _insert_vertices(geom: MultiPolygon, points: npt.NDArray[np.float64]) -> MultiPolygon:
    polygons = []
    for polygon in geom.geoms:
        shell = _insert_on_ring(np.asarray(polygon.exterior.coords)[:, :2], points)
        holes = [_insert_on_ring(np.asarray(r.coords)[:, :2], points) for r in polygon.interiors]
        polygons.append(Polygon(shell, holes))
    return MultiPolygon(polygons)


def node(cells: list[Cell], *, changed_only: bool = False) -> None:
    """Insert into every grid the vertices of the other grids that lie on its edges, so two
    neighbours share each edge vertex for vertex (what a valid coverage needs).

    ``changed_only``: only the vertices a gesture can have brought: into a changed grid from
    its neighbours, into an unchanged one from its changed neighbours (two unchanged grids
    were noded when they last changed; re-noding all 40 grids per gesture cost more than the
    gesture)."""
    geoms = np.array([c.geom for c in cells], dtype=object)
    changed = np.array([c.changed or not changed_only for c in cells], dtype=bool)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=VERTEX_TOLERANCE_DEG)
    for i in range(len(cells)):
        others = right[(left == i) & (right != i)]
        if not changed[i]:
            others = others[changed[others]]
        if not len(others):
            continue
        points = np.unique(
            np.concatenate([shapely.get_coordinates(geoms[j]) for j in others]), axis=0
        )
        near = shapely.dwithin(shapely.points(points), cells[i].geom.boundary, VERTEX_TOLERANCE_DEG)
        if not near.any():
            continue
        noded = _insert_vertices(cells[i].geom, points[near])
        if not noded.equals_exact(cells[i].geom, 0.0):
            cells[i].geom = noded


def coverage_check(plan: Plan) -> dict[str, Any]:
    """Whether the draft's grids form a valid coverage (shared edges match, no overlaps), and the
    edges that do not (``shapely.coverage_invalid_edges``), as GeoJSON."""
    kept = ogc_plans.kept_shapes(plan)
    geoms = np.array(
        [g for g in kept if not g.is_empty]
        if kept is not None
        else [
            planning.polygonal(shape(f["geometry"]))
            for f in ogc_plans.features(plan)
            if f.get("geometry")
        ],
        dtype=object,
    )
    edges = shapely.coverage_invalid_edges(geoms)
    bad = [e for e in edges if e is not None and not e.is_empty]
    merged = shapely.union_all(bad) if bad else None
    return {
        "valid": not bad,
        "invalid_edges": planning.geojson(merged),
        "grids_with_invalid_edges": sum(1 for e in edges if e is not None and not e.is_empty),
    }


# --- gestures -----------------------------------------------------------------------------------


def _line(coords: Any) -> LineString:
    try:
        line = LineString(coords)
    except (ValueError, TypeError, shapely.errors.GEOSException) as error:
        raise GestureError(f"the line is not a list of [lon, lat] points ({error})") from error
    if len(line.coords) > MAX_LINE_POINTS:
        raise GestureError(f"the line has more than {MAX_LINE_POINTS} points")
    planning.check_coordinates(line, "the line")
    if line.length == 0:
        raise GestureError("the line has no length: draw at least two different points")
    if not line.is_simple:
        raise GestureError("the line crosses itself; draw a line that does not")
    return line


def _outline(raw: Any, what: str) -> Polygon:
    try:
        geom = shape({"type": "Polygon", "coordinates": raw})
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise InvalidGeometryError(f"{what} is not a polygon's rings ({error})") from error
    except shapely.errors.GEOSException as error:
        raise InvalidGeometryError(f"{what} is not a polygon's rings ({error})") from error
    planning.check_coordinates(geom, what)
    if not geom.is_valid:
        raise InvalidGeometryError(
            f"{what} is invalid ({explain_validity(geom)}); draw an outline that does not cross "
            "itself"
        )
    if not isinstance(geom, Polygon) or geom.area == 0:
        raise InvalidGeometryError(f"{what} has no area")
    return geom


def _free_codes(session: Session, cells: list[Cell], village: str, count: int) -> list[str]:
    """``count`` new grid codes ``<village>-NN`` that no draft grid and no grid in force uses."""
    used = {c.code for c in cells}
    candidates = [f"{village}-{n:02d}" for n in range(1, 100 + len(used) + count * 2)]
    taken = set(
        session.scalars(
            sa.select(Grid.code).where(
                planning.among(Grid.code, candidates), Grid.valid_to.is_(None)
            )
        )
    )
    free = [c for c in candidates if c not in used and c not in taken]
    return free[:count]


def _new_cell(code: str, geom: MultiPolygon, like: dict[str, Any] | None = None) -> Cell:
    props: dict[str, Any] = {
        "code": code,
        "name": None,
        "village": (like or {}).get("village"),
        "households": None,
        "population": None,
        "members": [],
        "allow_multipart": False,
    }
    return Cell({"type": "Feature", "id": code, "properties": props}, geom, changed=True)


def _split(
    session: Session, cells: list[Cell], gesture: dict[str, Any], village: str, tolerance: float
) -> list[Cell]:
    line = _line(gesture.get("line"))
    if gesture.get("grid") is not None:
        targets = [_find(cells, gesture["grid"])]
    else:
        targets = [c for c in cells if c.geom.intersects(line)]
    best: tuple[float, Cell, list[Polygon]] | None = None
    for cell in targets:
        pieces = [p for p in shapely.get_parts(split_by(cell.geom, line)) if isinstance(p, Polygon)]
        if len(pieces) >= 2:
            crossing = cell.geom.intersection(line).length
            if best is None or crossing > best[0]:
                best = (crossing, cell, pieces)
    if best is None:
        which = f"grid {gesture['grid']}" if gesture.get("grid") is not None else "any grid"
        raise GestureError(
            f"the line does not cross {which} from edge to edge; draw it across the grid"
        )
    _, cell, pieces = best
    areas = [area_m2(p) for p in pieces]
    if min(areas) <= tolerance:
        raise GestureError(
            f"the line cuts off a sliver of {min(areas):.2f} m² from grid {cell.code}; "
            "draw it across the grid"
        )
    order = sorted(range(len(pieces)), key=lambda k: -areas[k])
    cell.geom = MultiPolygon([pieces[order[0]]])
    cell.changed = True
    codes = _free_codes(session, cells, village, len(pieces) - 1)
    if gesture.get("code"):
        codes[0] = str(gesture["code"])
    added = [
        _new_cell(code, MultiPolygon([pieces[k]]), cell.feature["properties"])
        for code, k in zip(codes, order[1:], strict=True)
    ]
    return [*cells, *added]


def _merge(cells: list[Cell], gesture: dict[str, Any]) -> list[Cell]:
    codes = gesture.get("grids") or []
    if len(set(codes)) < 2:
        raise GestureError("merge needs at least two different grids")
    merging = [_find(cells, code) for code in dict.fromkeys(codes)]
    geoms = np.array([c.geom for c in merging], dtype=object)
    union = (
        shapely.coverage_union_all(geoms)
        if shapely.coverage_is_valid(geoms)
        else shapely.union_all(geoms, grid_size=planning.OVERLAY_GRID_DEG)
    )
    merged = planning.polygonal(union)
    if len(merged.geoms) != 1:
        raise GestureError(
            f"grids {', '.join(c.code for c in merging)} do not share an edge (their union has "
            f"{len(merged.geoms)} separate pieces); merge neighbours only"
        )
    keep = merging[0]
    keep.geom = merged
    keep.changed = True
    gone = {c.code for c in merging[1:]}
    return [c for c in cells if c.code not in gone]


def _move_vertex(cells: list[Cell], gesture: dict[str, Any]) -> list[Cell]:
    try:
        old = np.asarray(gesture.get("from"), dtype=float).reshape(2)
        new = np.asarray(gesture.get("to"), dtype=float).reshape(2)
    except (ValueError, TypeError) as error:
        raise GestureError("from and to must be [lon, lat] points") from error
    planning.check_coordinates(LineString([old, new]), "the vertex")
    tol2 = VERTEX_TOLERANCE_DEG**2
    moved = []
    for cell in cells:
        coords = shapely.get_coordinates(cell.geom)
        hit = ((coords - old) ** 2).sum(axis=1) <= tol2
        if not hit.any():
            continue
        coords[hit] = new
        geom = shapely.set_coordinates(shapely.from_wkb(shapely.to_wkb(cell.geom)), coords)
        if not geom.is_valid:
            raise GestureError(
                f"moving the vertex there makes grid {cell.code} invalid "
                f"({explain_validity(geom)}); move it less far"
            )
        cell.geom = planning.polygonal(geom)
        cell.changed = True
        moved.append(cell.code)
    if not moved:
        raise GestureError(
            f"no grid has a vertex at {old.tolist()}; drag a vertex of the draft's grids"
        )
    return cells


def _overlay(operation: Any, a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    """A floating overlay, which keeps the inputs' vertices as they are (a snap-rounding one
    would move every vertex onto its grid, and the neighbours' shared edges would no longer
    match); snap-rounding only if the floating one fails."""
    try:
        return operation(a, b)
    except shapely.errors.GEOSException:
        return operation(a, b, grid_size=planning.OVERLAY_GRID_DEG)


def _add(
    session: Session,
    cells: list[Cell],
    gesture: dict[str, Any],
    village: str,
    village_geom: MultiPolygon,
    tolerance: float,
) -> list[Cell]:
    outline = _outline(gesture.get("polygon"), "the new grid's outline")
    inside = (
        planning.polygonal(outline)
        if village_geom.covers(outline)
        else planning.polygonal(_overlay(shapely.intersection, outline, village_geom))
    )
    if area_m2(inside) <= tolerance:
        raise GestureError(
            f"the new grid lies outside village {village}; draw it inside the village"
        )
    code = gesture.get("code") or _free_codes(session, cells, village, 1)[0]
    if any(c.code == code for c in cells):
        raise GestureError(f"the draft already has a grid {code!r}; choose another code")
    kept = []
    for cell in cells:
        if planning.polygonal(cell.geom).intersects(inside) and shapely.relate_pattern(
            cell.geom, inside, "T********"
        ):
            rest = planning.polygonal(_overlay(shapely.difference, cell.geom, inside))
            rest = MultiPolygon([p for p in rest.geoms if area_m2(p) > tolerance])
            if rest.is_empty:
                continue  # wholly inside the new grid: it is absorbed
            cell.geom = rest
            cell.changed = True
        kept.append(cell)
    added = _new_cell(str(code), inside, {"village": village})
    if gesture.get("name"):
        added.feature["properties"]["name"] = gesture["name"]
    return [*kept, added]


def _set_property(cells: list[Cell], gesture: dict[str, Any]) -> list[Cell]:
    cell = _find(cells, gesture.get("grid"))
    if gesture["op"] == "rename":
        name = gesture.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise GestureError("a grid name is a text of 1–100 characters")
        cell.feature["properties"]["name"] = name.strip()
    else:
        members = gesture.get("members")
        if not isinstance(members, list) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in members
        ):
            raise GestureError("members must be a list of grid-member ids")
        cell.feature["properties"]["members"] = sorted(set(members))
    return cells


def _replace(gesture: dict[str, Any], allow_multipart: bool) -> list[dict[str, Any]]:
    proposed = gesture.get("proposed")
    if not isinstance(proposed, dict):
        raise GestureError("replace needs proposed: a GeoJSON FeatureCollection")
    grids = planning.parse_proposal(proposed, allow_multipart=allow_multipart)
    return [g.feature() for g in grids]


GESTURES = ("split", "merge", "move_vertex", "add", "rename", "member", "replace")


@dataclass
class _After:
    """The draft after a gesture: its features, their geometries (already read, by index),
    and the village (already loaded), so the re-evaluation reads neither again."""

    features: list[dict[str, Any]]
    shapes: list[BaseGeometry | None] | None = None
    scope: planning.Scope | None = None


def _features_after(
    session: Session, plan: Plan, gesture: dict[str, Any], settings: Settings
) -> _After:
    """The draft's features after ``gesture`` (nothing stored yet)."""
    op = gesture.get("op")
    if op not in GESTURES:
        raise GestureError(f"unknown gesture {op!r}; one of {', '.join(GESTURES)}")
    if op == "replace":
        return _After(_replace(gesture, plan.allow_multipart))
    scope = planning.load_scope(session, PlanScope.VILLAGE, plan.scope_code)
    cells = _cells(plan)
    tolerance = settings.overlap_tolerance_m2
    if op == "split":
        cells = _split(session, cells, gesture, plan.scope_code, tolerance)
    elif op == "merge":
        cells = _merge(cells, gesture)
    elif op == "move_vertex":
        cells = _move_vertex(cells, gesture)
    elif op == "add":
        cells = _add(session, cells, gesture, plan.scope_code, scope.geom, tolerance)
    else:
        cells = _set_property(cells, gesture)
    if any(c.changed for c in cells):
        before = {id(c): c.geom for c in cells}
        node(cells, changed_only=True)
        for cell in cells:
            if cell.geom is not before[id(cell)]:
                cell.changed = True
    features = []
    for cell in cells:
        feature = cell.feature
        if cell.changed:
            # A new shape: its households and population are estimated again by area.
            feature["properties"].update(households=None, population=None)
            feature["geometry"] = planning.geojson(cell.geom)
        features.append(feature)
    return _After(features, [cell.geom for cell in cells], scope)


# --- the draft and its history ------------------------------------------------------------------


def _editable(session: Session, plan_id: int) -> Plan:
    plan = ogc_plans.draft_plan(session, plan_id, for_update=True)
    if plan.scope_level != PlanScope.VILLAGE.value:
        raise GestureError(f"plan {plan_id} redraws a town; the editor redraws one village")
    return plan


def history(session: Session, plan_id: int) -> dict[str, int]:
    """How many edits can be undone and redone."""
    edits = list_plan_edits(session, plan_id)
    undone = sum(1 for e in edits if e.undone)
    return {"done": len(edits) - undone, "undone": undone}


def start_draft(
    session: Session,
    *,
    village: str,
    actor: str,
    settings: Settings,
    title: str | None = None,
    now: datetime | None = None,
) -> Plan:
    """A new draft plan of a village that proposes its grids as they are (with their members),
    the editor's starting point."""
    token, grids = planning.scope_version(session, PlanScope.VILLAGE, village)
    if not grids:
        raise ValidationError(f"village {village} has no grids to edit; import them first")
    links: dict[str, list[int]] = {}
    for member_id, code in session.execute(
        sa.select(GridMemberGrid.member_id, GridMemberGrid.grid_code).where(
            GridMemberGrid.grid_code.in_([g.code for g in grids])
        )
    ):
        links.setdefault(code, []).append(member_id)
    features: list[dict[str, Any]] = []
    for g in grids:
        props: dict[str, Any] = {"code": g.code, "name": g.name}
        if links.get(g.code):
            props["member"] = sorted(links[g.code])
        features.append(
            {
                "type": "Feature",
                "id": g.code,
                "geometry": planning.geojson(to_shape(g.geom)),
                "properties": props,
            }
        )
    return planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village,
        proposed={"type": "FeatureCollection", "features": features},
        based_on_version=token,
        actor=actor,
        settings=settings,
        title=title or "editor draft",
        now=now,
    )


def edit(
    session: Session,
    plan_id: int,
    gesture: dict[str, Any],
    *,
    actor: str,
    settings: Settings,
    head: int | None = None,
    now: datetime | None = None,
) -> Plan:
    """Apply one gesture to a draft plan, re-evaluate it and record it for undo.

    ``head``: the number of edits (not undone) the client's view shows; another window's edit
    since then is a 409, so two windows never overwrite each other silently."""
    now = now or utcnow()
    plan = _editable(session, plan_id)
    edits = list_plan_edits(session, plan_id)
    done = [e for e in edits if not e.undone]
    if head is not None and head != len(done):
        raise ConflictError(
            f"plan {plan_id} was edited elsewhere ({len(done)} edits, this view shows {head}); "
            "reload it",
            head=len(done),
        )
    before = plan.proposed
    after = _features_after(session, plan, gesture, settings)
    ogc_plans.revise(
        session, plan, after.features, settings, now, scope=after.scope, shapes=after.shapes
    )
    for undone in (e for e in edits if e.undone):
        session.delete(undone)
    if len(done) >= MAX_HISTORY:
        session.delete(done[0])
    session.add(
        PlanEdit(
            plan_id=plan_id,
            seq=(edits[-1].seq + 1) if edits else 1,
            gesture=_summary(gesture),
            before=before,
            after=plan.proposed,
            undone=False,
            actor=actor,
            at=now,
        )
    )
    session.flush()
    return plan


def _summary(gesture: dict[str, Any]) -> dict[str, Any]:
    """The gesture as recorded (an imported proposal is not kept twice)."""
    if gesture.get("op") == "replace":
        return {"op": "replace"}
    return gesture


def undo(
    session: Session,
    plan_id: int,
    *,
    settings: Settings,
    redo: bool = False,
    now: datetime | None = None,
) -> Plan:
    """Undo the newest edit (or, ``redo``, redo the oldest undone one) and re-evaluate."""
    plan = _editable(session, plan_id)
    edits = list_plan_edits(session, plan_id)
    if redo:
        candidates = [e for e in edits if e.undone]
        if not candidates:
            raise ConflictError(f"plan {plan_id} has nothing to redo")
        target, proposal = candidates[0], candidates[0].after
    else:
        candidates = [e for e in edits if not e.undone]
        if not candidates:
            raise ConflictError(f"plan {plan_id} has nothing to undo")
        target, proposal = candidates[-1], candidates[-1].before
    ogc_plans.revise(session, plan, list(proposal.get("features", [])), settings, now or utcnow())
    target.undone = not redo
    session.flush()
    return plan


def rebase(
    session: Session, plan_id: int, *, settings: Settings, now: datetime | None = None
) -> Plan:
    """Keep the draft's grids but base it on the village's grids in force now (after someone
    else changed them), re-evaluated against them."""
    plan = _editable(session, plan_id)
    token, _ = planning.scope_version(session, PlanScope.VILLAGE, plan.scope_code)
    plan.based_on_version = token
    ogc_plans.revise(session, plan, ogc_plans.features(plan), settings, now or utcnow())
    return plan


def problems(plan: Plan) -> list[dict[str, Any]]:
    """The validation issues that have a shape to draw (gaps, overlaps, outside parts…)."""
    return [i for i in plan.validation.get("issues", []) if i.get("geometry")]


__all__ = [
    "GESTURES",
    "GestureError",
    "coverage_check",
    "edit",
    "history",
    "node",
    "problems",
    "rebase",
    "start_draft",
    "undo",
]
