"""What open, active and final mean: one definition, and the workflow agrees with it."""

from __future__ import annotations

import re

from gis.layers.incidents import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    OPEN_STATUSES,
    Incident,
    IncidentStatus,
)
from gis.services.workflow import ACTIVE, TRANSITIONS, Action

S = IncidentStatus


def test_every_status_is_either_open_or_final_and_active_is_open_but_resolved() -> None:
    assert set(IncidentStatus) == OPEN_STATUSES | FINAL_STATUSES
    assert not OPEN_STATUSES & FINAL_STATUSES
    assert {S.RESOLVED} == OPEN_STATUSES - ACTIVE_STATUSES  # awaits verification only
    assert set(ACTIVE) == ACTIVE_STATUSES


def test_the_deadline_actions_apply_to_exactly_the_active_states() -> None:
    # Extending, cancelling, merging and the overdue flag are for cases somebody still works on.
    for action in (Action.EXTEND, Action.CANCEL, Action.MARK_DUPLICATE, Action.FLAG_OVERDUE):
        assert set(TRANSITIONS[action]) == ACTIVE_STATUSES, action


def test_a_final_case_moves_only_by_reopening_a_closed_one() -> None:
    leaving_final = {
        (action, state)
        for action, row in TRANSITIONS.items()
        for state, after in row.items()
        if state in FINAL_STATUSES and after != state
    }
    assert leaving_final == {(Action.REOPEN, S.CLOSED)}
    # And nothing but closing, cancelling or merging makes a case final.
    into_final = {
        action
        for action, row in TRANSITIONS.items()
        for before, after in row.items()
        if after in FINAL_STATUSES and before not in FINAL_STATUSES
    }
    assert into_final == {Action.CLOSE, Action.CANCEL, Action.MARK_DUPLICATE}


def test_the_open_cases_index_covers_exactly_the_open_states() -> None:
    # Its predicate is SQL text (the migrations hold it too): it must spell out the final states.
    (index,) = [i for i in Incident.__table__.indexes if i.name == "ix_incidents_open_due"]
    predicate = str(index.dialect_options["postgresql"]["where"])
    assert set(re.findall(r"'(\w+)'", predicate)) == {s.value for s in FINAL_STATUSES}
    assert "NOT IN" in predicate
