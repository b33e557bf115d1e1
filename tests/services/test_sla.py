"""The SLA sweep with a fixed clock: flag overdue open cases, escalate those too late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.incidents import Incident, list_events
from gis.services.sla import preview, sweep
from gis.services.workflow import apply_action
from tests.conftest import count
from tests.services.workflow_fixtures import G1, G2, County, add_case, build_county

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def county(session: Session, catalog: int) -> County:
    return build_county(session)


def _case(session: Session, county: County, *, due_in_hours: float, grid: str = G1) -> Incident:
    reported = NOW - timedelta(days=5)
    return add_case(
        session, county, grid=grid, reported_at=reported, due_at=NOW + timedelta(hours=due_in_hours)
    )


def test_sweep_flags_overdue_and_escalates_past_the_threshold(
    session: Session, county: County
) -> None:
    on_time = _case(session, county, due_in_hours=1)
    just_late = _case(session, county, due_in_hours=-2)
    very_late = _case(session, county, due_in_hours=-30, grid=G2)
    resolved_late = _case(session, county, due_in_hours=-30)
    for minutes, action in enumerate(("accept", "start", "resolve"), start=1):
        apply_action(
            session,
            resolved_late.id,
            action,
            actor="u",
            now=NOW - timedelta(days=4, minutes=-minutes),
        )
    result = sweep(session, now=NOW, escalate_after_hours=24)
    # Only the hand-made cases are checked: the demo county may share the database.
    mine = {on_time.id, just_late.id, very_late.id, resolved_late.id}
    assert mine & set(result.flagged_ids) == {just_late.id, very_late.id}
    assert mine & set(result.escalated_ids) == {very_late.id}
    session.refresh(on_time)
    session.refresh(just_late)
    session.refresh(very_late)
    assert (on_time.status, on_time.overdue_at) == ("assigned", None)
    assert (just_late.status, just_late.overdue_at) == ("assigned", NOW)
    assert (very_late.status, very_late.escalation_level) == ("escalated", 1)
    assert very_late.escalated_at == NOW
    actions = [(e.action, e.from_status, e.to_status) for e in list_events(session, very_late.id)]
    assert actions[-2:] == [
        ("flag_overdue", "assigned", "assigned"),
        ("escalate", "assigned", "escalated"),
    ]
    escalation = list_events(session, very_late.id)[-1]
    assert escalation.actor == "system:sla"
    assert escalation.data["overdue_hours"] == 30.0
    assert "overdue by more than 24 h" in (escalation.note or "")


def test_a_second_sweep_at_the_same_time_does_nothing(session: Session, county: County) -> None:
    _case(session, county, due_in_hours=-30)
    sweep(session, now=NOW, escalate_after_hours=24)
    events = count(session, "incident_events")
    again = sweep(session, now=NOW, escalate_after_hours=24)
    assert (again.flagged_ids, again.escalated_ids) == ([], [])
    assert count(session, "incident_events") == events


def test_the_clock_decides_what_is_late(session: Session, county: County) -> None:
    case = _case(session, county, due_in_hours=-2)
    earlier = sweep(session, now=NOW - timedelta(hours=3), escalate_after_hours=0)
    assert case.id not in earlier.flagged_ids + earlier.escalated_ids
    later = sweep(session, now=NOW + timedelta(hours=23), escalate_after_hours=24)
    assert case.id in later.flagged_ids
    assert case.id in later.escalated_ids


def test_extension_clears_the_overdue_flag(session: Session, county: County) -> None:
    case = _case(session, county, due_in_hours=-2)
    sweep(session, now=NOW, escalate_after_hours=24)
    session.refresh(case)
    apply_action(
        session,
        case.id,
        "extend",
        actor="command",
        reason="awaiting the owner",
        due_at=NOW + timedelta(days=2),
        now=NOW + timedelta(minutes=5),
    )
    assert case.overdue_at is None
    result = sweep(session, now=NOW + timedelta(days=1), escalate_after_hours=24)
    assert case.id not in result.flagged_ids


def test_naive_clock_is_refused(session: Session) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        sweep(session, now=datetime(2026, 3, 10, 12), escalate_after_hours=24)


def test_preview_names_what_the_sweep_then_does_and_writes_nothing(
    session: Session, county: County
) -> None:
    cases = [_case(session, county, due_in_hours=h) for h in (1, -2, -30)]
    mine = {case.id for case in cases}
    events = count(session, "incident_events")
    would = preview(session, at=NOW, escalate_after_hours=24)
    assert count(session, "incident_events") == events
    assert all(case.overdue_at is None and case.status == "assigned" for case in cases)
    did = sweep(session, now=NOW, escalate_after_hours=24)
    assert (
        mine & set(would.flagged_ids) == mine & set(did.flagged_ids) == {cases[1].id, cases[2].id}
    )
    assert mine & set(would.escalated_ids) == mine & set(did.escalated_ids) == {cases[2].id}
    with pytest.raises(ValidationError, match="time zone"):
        preview(session, at=datetime(2026, 3, 10, 12), escalate_after_hours=24)
