"""The editor's re-check keeps what a gesture did not touch (the household and population
estimates of unchanged grids): after gestures, undo, redo and rebase, the draft's report is the
one a check from scratch gives for the same grids."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from shapely.geometry import box
from sqlalchemy.orm import Session

from gis.layers.plans import Plan, PlanScope
from gis.services import plan_editor, planning
from gis.settings import Settings
from tests.services.planfixtures import (
    EAST,
    MID,
    NORTH,
    SOUTH,
    WEST,
    Village,
    collection,
    feature,
    make_village,
)

NOW = datetime.fromisoformat("2026-11-01T00:00:00+00:00")
LAT_MID = (SOUTH + NORTH) / 2


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made two-grid village."""
    return make_village(session)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _from_scratch(session: Session, plan: Plan, settings: Settings) -> planning.Evaluation:
    scope = planning.load_scope(session, PlanScope.VILLAGE, plan.scope_code)
    grids = planning.proposal_from_plan(plan)
    current = planning.current_grids(session, scope)
    return planning.evaluate(session, scope, grids, current, settings=settings, now=NOW)


def _assert_same_as_from_scratch(session: Session, plan: Plan, settings: Settings) -> None:
    fresh = _from_scratch(session, plan, settings)
    assert _plain(plan.balance) == _plain(fresh.balance)
    assert _plain(plan.validation) == _plain(fresh.validation())
    assert _plain(plan.impact) == _plain(fresh.impact)


def _edit(session: Session, plan_id: int, gesture: dict[str, Any], settings: Settings) -> Plan:
    return plan_editor.edit(session, plan_id, gesture, actor="t", settings=settings, now=NOW)


def _split_west(village: Village) -> dict[str, Any]:
    return {
        "op": "split",
        "grid": village.west,
        "line": [[WEST - 1e-3, LAT_MID], [MID + 1e-3, LAT_MID]],
    }


def test_unchanged_grids_keep_their_estimates_and_changed_ones_do_not(
    session: Session, village: Village, settings: Settings
) -> None:
    plan = plan_editor.start_draft(
        session, village=village.village, actor="t", settings=settings, now=NOW
    )
    before, before_balance = plan.proposed, plan.balance
    # A vertex of the village's outline that only the west grid has.
    _edit(
        session,
        plan.id,
        {"op": "move_vertex", "from": [WEST, NORTH], "to": [WEST + 0.001, NORTH]},
        settings,
    )
    features = plan.proposed["features"]
    known = planning.known_estimates(before, before_balance, features, plan.balance["version"])
    codes = {features[k]["properties"]["code"] for k in known}
    assert codes == {village.east}  # the west grid changed shape: measured again
    # Measured against other grids in force: nothing is kept.
    assert planning.known_estimates(before, before_balance, features, "another-token") == {}


def test_gestures_undo_and_redo_give_the_report_of_a_check_from_scratch(
    session: Session, village: Village, settings: Settings
) -> None:
    plan = plan_editor.start_draft(
        session, village=village.village, actor="t", settings=settings, now=NOW
    )
    _edit(session, plan.id, _split_west(village), settings)
    _assert_same_as_from_scratch(session, plan, settings)
    _edit(
        session,
        plan.id,
        {"op": "move_vertex", "from": [MID, NORTH], "to": [MID + 0.002, NORTH]},
        settings,
    )
    _assert_same_as_from_scratch(session, plan, settings)
    plan_editor.undo(session, plan.id, settings=settings, now=NOW)
    _assert_same_as_from_scratch(session, plan, settings)
    plan_editor.undo(session, plan.id, settings=settings, redo=True, now=NOW)
    _assert_same_as_from_scratch(session, plan, settings)
    plan_editor.undo(session, plan.id, settings=settings, now=NOW)
    # A gesture after the undo: the east grid's shape is back to the one measured before.
    _edit(session, plan.id, {"op": "rename", "grid": village.east, "name": "东片"}, settings)
    _assert_same_as_from_scratch(session, plan, settings)
    rows = {r["code"]: r for r in plan.balance["grids"]}
    assert rows[village.east]["households"] == 200 and rows[village.east]["households_estimated"]


def test_after_the_grids_change_a_rebased_draft_measures_them_again(
    session: Session, village: Village, settings: Settings
) -> None:
    draft = plan_editor.start_draft(
        session, village=village.village, actor="t", settings=settings, now=NOW
    )
    _edit(session, draft.id, _split_west(village), settings)
    rows = {r["code"]: r for r in draft.balance["grids"]}
    assert rows[village.east]["households"] == 200
    # Someone else applies a plan that gives the east grid 500 households (a new version).
    token, _ = planning.scope_version(session, PlanScope.VILLAGE, village.village)
    west, east = box(WEST, SOUTH, MID, NORTH), box(MID, SOUTH, EAST, NORTH)
    other = planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village.village,
        proposed=collection(
            feature(village.west, west), feature(village.east, east, households=500)
        ),
        based_on_version=token,
        actor="other",
        settings=settings,
        now=NOW,
    )
    planning.apply_plan(session, other.id, actor="other", settings=settings, now=NOW)
    session.refresh(draft)
    draft.status = "draft"  # superseded by the apply; reopened, as after a 409
    session.flush()
    plan_editor.rebase(session, draft.id, settings=settings, now=NOW)
    rows = {r["code"]: r for r in draft.balance["grids"]}
    assert rows[village.east]["households"] == 500  # not the 200 measured before
    _assert_same_as_from_scratch(session, draft, settings)
    _edit(session, draft.id, {"op": "rename", "grid": village.east, "name": "东片"}, settings)
    _assert_same_as_from_scratch(session, draft, settings)
