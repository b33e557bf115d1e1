"""Plan validation on real grids: exact splits and merges are clean, real gaps and overlaps are not.

Issue 24: splitting a demo grid with a straight line (pieces sharing the cut exactly) was
refused for a "gap" of 1–16 m² in 19 of 36 tries, because slivers of ~1e-18 square degrees were
measured with geodesic edges. Here many villages and cuts of every kind validate clean at village
and town level, and defects of 5 m² are still found, with their area within 1 % and a polygon
that an independent computation (shapely on the same coordinates, pyproj on densified edges)
confirms is really uncovered or doubly covered.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from sqlalchemy.orm import Session

from gis.layers.grids import Grid
from gis.layers.plans import PlanScope
from gis.services import planning
from gis.settings import Settings
from tests.services.planfixtures import (
    defect,
    geodesic_area_m2,
    random_point_in,
    straight_cut,
    zigzag_cut,
)

SEED = 24
Shapes = dict[str, Polygon | MultiPolygon]
Cut = Callable[[Polygon, random.Random], list[Polygon] | None]


# --- the cuts a planner makes -------------------------------------------------------------------


def _straight(grid: Polygon, rng: random.Random) -> list[Polygon] | None:
    return straight_cut(grid, random_point_in(grid, rng), rng.uniform(0, 180))


def _through_vertex(grid: Polygon, rng: random.Random) -> list[Polygon] | None:
    vertex = rng.choice(list(grid.exterior.coords)[:-1])
    return straight_cut(grid, (vertex[0], vertex[1]), rng.uniform(0, 180))


def _zigzag(grid: Polygon, rng: random.Random) -> list[Polygon] | None:
    count = len(grid.exterior.coords) - 1
    for _ in range(20):
        start, end = sorted(rng.sample(range(count), 2))
        if end - start in (1, count - 1):
            continue  # neighbouring vertices: the cut would run along an edge
        inner = [random_point_in(grid, rng) for _ in range(rng.randint(1, 3))]
        pieces = zigzag_cut(grid, start, end, inner)
        if pieces is not None:
            return pieces
    return None


def _straight_rounded(grid: Polygon, rng: random.Random) -> list[Polygon] | None:
    # As an editor that writes 9 decimals (0.1 mm, ST_AsGeoJSON's default) sends it back: the
    # pieces part from their neighbours by real slivers ≤ 0.05 mm wide, ~0.05 m² per km at most.
    pieces = _straight(grid, rng)
    return [shapely.transform(p, lambda xy: np.round(xy, 9)) for p in pieces or []]


CUTS: dict[str, Cut] = {
    "straight": _straight,
    "straight-9-decimals": _straight_rounded,
    "through-vertex": _through_vertex,
    "zigzag": _zigzag,
}


# --- helpers ------------------------------------------------------------------------------------


def _grids(session: Session, scope: planning.Scope) -> Shapes:
    return {g.code: to_shape(g.geom) for g in planning.current_grids(session, scope)}


def _single(geom: Polygon | MultiPolygon) -> Polygon | None:
    parts = list(shapely.get_parts(geom))
    return parts[0] if len(parts) == 1 and not parts[0].interiors else None


def _split(shapes: Shapes, code: str, pieces: list[Polygon]) -> Shapes:
    out = {k: v for k, v in shapes.items() if k != code}
    out.update({code if i == 0 else f"{code}S{i}": p for i, p in enumerate(pieces)})
    return out


def _validate(session: Session, scope: planning.Scope, shapes: Shapes, settings: Settings) -> Any:
    proposal = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": dict(mapping(g)), "properties": {"code": c}}
            for c, g in shapes.items()
        ],
    }
    return planning.validate(session, scope, planning.parse_proposal(proposal), settings=settings)


def _errors(issues: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(i["kind"], i["area_m2"]) for i in issues if i["severity"] == "error"]


def _villages(session: Session) -> list[str]:
    return list(
        session.scalars(
            sa.select(Grid.village_code)
            .where(Grid.valid_to.is_(None))
            .group_by(Grid.village_code)
            .order_by(Grid.village_code)
        )
    )


def _towns(session: Session) -> list[str]:
    return list(
        session.scalars(
            sa.select(Grid.town_code)
            .where(Grid.valid_to.is_(None))
            .distinct()
            .order_by("town_code")
        )
    )


def _neighbours(shapes: Shapes) -> tuple[str, str] | None:
    """Two grids that share an edge (not just a corner), or None."""
    codes = sorted(shapes)
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            if shapes[a].boundary.intersection(shapes[b].boundary).length > 1e-6:
                return a, b
    return None


def _assert_real(
    issue: dict[str, Any], shapes: Shapes, villages: dict[str, MultiPolygon], expected_m2: float
) -> None:
    """The issue's polygon really is uncovered (gap) or doubly covered (overlap) area, and its
    area is what another algorithm measures for that polygon and the defect we made."""
    geom = shape(issue["geometry"])
    # Validation snap-rounds to 1e-12°, and the shapes we made carry floating-point noise of
    # their own: the polygon may stray from the exact answer by slivers well under 1 µm wide.
    stray_m2 = 1e-3 * expected_m2
    if issue["kind"] == "gap":
        covered = shapely.union_all(list(shapes.values()))
        assert geodesic_area_m2(geom.intersection(covered)) < stray_m2
        assert geodesic_area_m2(geom.difference(villages[issue["village"]])) < stray_m2
    else:
        first, second = (shapes[c] for c in issue["grids"])
        assert geodesic_area_m2(geom.difference(first)) < stray_m2
        assert geodesic_area_m2(geom.difference(second)) < stray_m2
    assert issue["area_m2"] == pytest.approx(geodesic_area_m2(geom), rel=1e-3, abs=1e-3)
    assert issue["area_m2"] == pytest.approx(expected_m2, rel=0.01)


def _assert_defects_found(
    session: Session,
    settings: Settings,
    scope: planning.Scope,
    shapes: Shapes,
    code: str,
    pieces: list[Polygon],
    shape_kinds: tuple[str, str],
) -> None:
    """Grid ``code`` split into two ``pieces``, plus a real 5 m² gap (then overlap) at the cut,
    of the given shapes: that defect is the plan's only error, real, and measured within 1 %."""
    first, second = pieces
    hole = defect(first, second, into=first, area_m2=5.0, shape_kind=shape_kinds[0])
    bump = defect(first, second, into=second, area_m2=5.0, shape_kind=shape_kinds[1])
    for kind, changed in (("gap", first.difference(hole)), ("overlap", first.union(bump))):
        proposal = _split(shapes, code, [changed, second])
        issues = _validate(session, scope, proposal, settings)
        assert [k for k, _ in _errors(issues)] == [kind], (scope.code, kind, _errors(issues))
        (issue,) = [i for i in issues if i["kind"] == kind]
        _assert_real(issue, proposal, scope.villages, expected_m2=5.0)


# --- village plans ------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_every_cut_of_every_demo_village_validates_clean(
    session: Session, settings: Settings, demo: dict[str, object], cut: str
) -> None:
    rng = random.Random(f"{SEED}-{cut}")
    tried, refused = 0, []
    for village in _villages(session):
        scope = planning.load_scope(session, PlanScope.VILLAGE, village)
        shapes = _grids(session, scope)
        for code in sorted(shapes):
            grid = _single(shapes[code])
            pieces = CUTS[cut](grid, rng) if grid is not None else None
            if not pieces or len(pieces) < 2:
                continue
            # The pieces tile the grid (shapely, on the same coordinates; rounded ones nearly).
            assert shapely.union_all(pieces).symmetric_difference(grid).area < 1e-6 * grid.area
            tried += 1
            errors = _errors(_validate(session, scope, _split(shapes, code, pieces), settings))
            if errors:
                refused.append((village, code, errors))
    assert tried >= 150
    assert not refused, f"{len(refused)} of {tried} {cut} splits refused: {refused[:5]}"


def test_merging_two_neighbours_validates_clean_in_every_demo_village(
    session: Session, settings: Settings, demo: dict[str, object]
) -> None:
    tried, refused = 0, []
    for village in _villages(session):
        scope = planning.load_scope(session, PlanScope.VILLAGE, village)
        shapes = _grids(session, scope)
        pair = _neighbours(shapes)
        if pair is None:
            continue
        a, b = pair
        merged = {k: v for k, v in shapes.items() if k != b} | {a: shapes[a].union(shapes[b])}
        tried += 1
        errors = _errors(_validate(session, scope, merged, settings))
        if errors:
            refused.append((village, a, b, errors))
    assert tried >= 40
    assert not refused, f"{len(refused)} of {tried} merges refused: {refused[:5]}"


@pytest.mark.parametrize("shape_kind", ["notch", "strip"])
def test_a_real_5_m2_gap_or_overlap_at_a_split_is_reported_with_its_area_and_polygon(
    session: Session, settings: Settings, demo: dict[str, object], shape_kind: str
) -> None:
    rng = random.Random(f"{SEED}-{shape_kind}")
    checked = 0
    for village in _villages(session)[::6]:
        scope = planning.load_scope(session, PlanScope.VILLAGE, village)
        shapes = _grids(session, scope)
        code = max(shapes, key=lambda c: shapes[c].area)
        grid = _single(shapes[code])
        pieces = straight_cut(grid, random_point_in(grid, rng), rng.uniform(0, 180)) if grid else []
        if len(pieces) != 2:
            continue
        _assert_defects_found(session, settings, scope, shapes, code, pieces, (shape_kind,) * 2)
        checked += 2
    assert checked >= 20


# --- town plans ---------------------------------------------------------------------------------


def test_town_plans_split_merge_and_defects_validate_as_in_a_village(
    session: Session, settings: Settings, demo: dict[str, object]
) -> None:
    rng = random.Random(f"{SEED}-town")
    checked = 0
    for town in _towns(session):
        scope = planning.load_scope(session, PlanScope.TOWN, town)
        shapes = _grids(session, scope)
        assert not _errors(_validate(session, scope, shapes, settings))  # as it is today
        # One straight split of every splittable grid of the town, all in one plan.
        proposal = dict(shapes)
        for code in sorted(shapes):
            grid = _single(shapes[code])
            pieces = _straight(grid, rng) if grid is not None else None
            if pieces and len(pieces) == 2:
                proposal = _split(proposal, code, pieces)
        assert len(proposal) > len(shapes)
        assert not _errors(_validate(session, scope, proposal, settings))
        # A merge of two neighbours of one village.
        village_of = {g.code: g.village_code for g in planning.current_grids(session, scope)}
        for village in sorted(set(village_of.values())):
            own = {c: g for c, g in shapes.items() if village_of[c] == village}
            pair = _neighbours(own)
            if pair is not None:
                a, b = pair
                merged = {k: v for k, v in shapes.items() if k != b}
                merged[a] = shapes[a].union(shapes[b])
                assert not _errors(_validate(session, scope, merged, settings))
                break
        # A real 5 m² gap and overlap inside the split plan.
        code = max(shapes, key=lambda c: shapes[c].area)
        grid = _single(shapes[code])
        pieces = _straight(grid, rng) if grid is not None else None
        if not pieces or len(pieces) != 2:
            continue
        _assert_defects_found(session, settings, scope, shapes, code, pieces, ("strip", "notch"))
        checked += 2
    assert checked >= 8
