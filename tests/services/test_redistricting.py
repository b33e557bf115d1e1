"""Redistricting suggestions: always a valid draft plan (tiling, contiguity, inside the
village) that balances workload better than the current grids; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, ValidationError
from gis.layers.plans import Plan, PlanScope, PlanStatus
from gis.services import planning, redistricting
from gis.services.redistricting import Method, RedistrictQuery
from gis.settings import Settings
from tests.services.analytics_fixtures import ONE_GRID_VILLAGE, VILLAGE
from tests.services.proposal_fixtures import NOW, uneven_village


@pytest.fixture
def village(session: Session, catalog: int) -> None:
    uneven_village(session)


def _suggest(session: Session, settings: Settings, **kw: object) -> redistricting.Suggestion:
    query = RedistrictQuery(PlanScope.VILLAGE, VILLAGE, **kw)  # type: ignore[arg-type]
    return redistricting.suggest(session, query, actor="planner-1", settings=settings, now=NOW)


@pytest.mark.parametrize(
    "weights",
    [
        {"households": 1.0, "population": 1.0, "incidents_12m": 1.0},
        {"incidents_12m": 1.0},
        {"households": 2.0, "incidents_12m": 1.0},
    ],
)
def test_suggestion_is_a_valid_draft_plan_that_improves_balance(
    session: Session, settings: Settings, village: None, weights: dict[str, float]
) -> None:
    suggestion = _suggest(session, settings, weights=weights)
    plan = session.get(Plan, suggestion.plan_id)
    assert plan is not None and plan.status == PlanStatus.DRAFT.value
    assert plan.validation["valid"], plan.validation["issues"]
    (result,) = suggestion.villages
    assert result.after["cv"] < result.before["cv"]
    assert len(result.grids) == 40
    # Recomputed here: every grid is one piece inside the village, and together they tile it.
    scope = planning.load_scope(session, PlanScope.VILLAGE, VILLAGE)
    grids = planning.proposal_from_plan(plan)
    for grid in grids:
        assert len(grid.geom.geoms) == 1, grid.code
        assert shapely.area(shapely.difference(grid.geom, scope.geom)) < 1e-14
    union = shapely.union_all([g.geom for g in grids])
    assert shapely.area(shapely.symmetric_difference(union, scope.geom)) < 1e-12
    # The plan's own balance table is the one the planner sees; it agrees on the totals.
    total = sum(e["incidents_12m"] for e in plan.balance["grids"])
    assert total == 800


def test_the_balance_measure_is_recomputed_from_the_plans_table(
    session: Session, settings: Settings, village: None
) -> None:
    suggestion = _suggest(session, settings, weights={"incidents_12m": 1.0})
    plan = session.get(Plan, suggestion.plan_id)
    assert plan is not None
    counts = np.array([e["incidents_12m"] for e in plan.balance["grids"]], dtype=float)
    cv = counts.std() / counts.mean()
    assert cv == pytest.approx(suggestion.villages[0].after["cv"], abs=0.01)


def test_regions_keep_the_codes_of_the_grids_they_overlap(
    session: Session, settings: Settings, village: None
) -> None:
    suggestion = _suggest(session, settings)
    grids = suggestion.villages[0].grids
    assert len({g.code for g in grids}) == 40
    kept = [g for g in grids if g.code.startswith("L-")]
    assert len(kept) >= 30
    row_col = [(int(g.code[2:4]), int(g.code[5:7])) for g in kept]
    for grid, (r, c) in zip(kept, row_col, strict=True):
        old = box(
            112.0 + c * 0.005, 28.0 + r * 0.005, 112.0 + (c + 1) * 0.005, 28.0 + (r + 1) * 0.005
        )
        assert shapely.area(shapely.intersection(grid.geom, old)) > 0
    assert all(g.code.startswith(f"{VILLAGE}-") for g in grids if g not in kept)


def test_fewer_grids_than_now_get_the_codes_of_the_largest_overlaps(
    session: Session, settings: Settings, village: None
) -> None:
    suggestion = _suggest(session, settings, grids=12)
    plan = session.get(Plan, suggestion.plan_id)
    assert plan is not None and plan.validation["valid"], plan.validation["issues"]
    assert len(suggestion.villages[0].grids) == 12
    assert len(plan.impact["grids"]["retired"]) == 28


def test_one_grid_village_is_refused(session: Session, settings: Settings, village: None) -> None:
    query = RedistrictQuery(PlanScope.VILLAGE, ONE_GRID_VILLAGE)
    with pytest.raises(ValidationError, match="1 current grid"):
        redistricting.suggest(session, query, actor="p", settings=settings, now=NOW)


def test_unknown_weight_column_is_refused(
    session: Session, settings: Settings, village: None
) -> None:
    with pytest.raises(ValidationError, match=r"unknown weight column.*'cameras'"):
        _suggest(session, settings, weights={"cameras": 1.0})
    with pytest.raises(ValidationError, match="at least one weight"):
        _suggest(session, settings, weights={"households": 0.0})


def test_unknown_village_is_not_found(session: Session, settings: Settings) -> None:
    with pytest.raises(NotFoundError):
        redistricting.suggest(
            session,
            RedistrictQuery(PlanScope.VILLAGE, "000000000000"),
            actor="p",
            settings=settings,
            now=NOW,
        )


def test_balanced_regions_are_contiguous_on_a_line() -> None:
    # 12 blocks in a row, loads 1..12: 3 regions must be runs, of near-equal sums (26 each).
    neighbours = [[j for j in (i - 1, i + 1) if 0 <= j < 12] for i in range(12)]
    centres = np.array([[i, 0.0] for i in range(12)])
    loads = np.arange(1, 13, dtype=float)
    labels = redistricting.balanced_regions(neighbours, centres, loads, 3, seed=1)
    runs = [np.flatnonzero(labels == r) for r in range(3)]
    assert all(np.all(np.diff(run) == 1) for run in runs)
    sums = sorted(float(loads[run].sum()) for run in runs)
    assert sums[-1] - sums[0] <= 12


def test_building_blocks_tile_the_village_exactly() -> None:
    village = shapely.union(box(112.0, 28.0, 112.02, 28.01), box(112.0, 28.01, 112.005, 28.02))
    blocks = redistricting.building_blocks(village, 4, cell_m=200)
    union = shapely.union_all(blocks)
    assert shapely.area(shapely.symmetric_difference(union, village)) < 1e-14
    assert sum(shapely.area(b) for b in blocks) == pytest.approx(shapely.area(village), rel=1e-9)


@pytest.mark.parametrize("method", [Method.AZP])
def test_spopt_method_also_gives_a_valid_plan(
    session: Session, settings: Settings, catalog: int, method: Method
) -> None:
    uneven_village(session, 3, 3, cases=200)
    suggestion = _suggest(session, settings, method=method, cell_m=200)
    plan = session.get(Plan, suggestion.plan_id)
    assert plan is not None and plan.validation["valid"], plan.validation["issues"]
