"""The case workflow: every transition allowed and denied, per the table and per a hand-written
expectation, with the event log and the incident's bookkeeping kept in step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gis.errors import InvalidTransitionError, ValidationError
from gis.layers.incidents import Incident, IncidentStatus, list_events
from gis.services.workflow import (
    SYSTEM_ACTIONS,
    TRANSITIONS,
    USER_ACTIONS,
    allowed_actions,
    apply_action,
)
from tests.conftest import count
from tests.services.workflow_fixtures import G1, G3, County, add_case, build_county

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
LATER = T0 + timedelta(hours=1)

# Written by hand from the issue, independently of gis.services.workflow: state → action → target.
EXPECTED: dict[str, dict[str, str]] = {
    "reported": {
        "comment": "reported",
        "assign": "assigned",
        "escalate": "escalated",
        "extend": "reported",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "assigned": {
        "comment": "assigned",
        "accept": "accepted",
        "reassign": "assigned",
        "escalate": "escalated",
        "extend": "assigned",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "accepted": {
        "comment": "accepted",
        "start": "in_progress",
        "reassign": "assigned",
        "escalate": "escalated",
        "extend": "accepted",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "in_progress": {
        "comment": "in_progress",
        "resolve": "resolved",
        "reassign": "assigned",
        "escalate": "escalated",
        "extend": "in_progress",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "resolved": {"comment": "resolved", "close": "closed", "return": "returned"},
    "closed": {"comment": "closed", "reopen": "returned"},
    "returned": {
        "comment": "returned",
        "start": "in_progress",
        "reassign": "assigned",
        "escalate": "escalated",
        "extend": "returned",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "escalated": {
        "comment": "escalated",
        "assign": "assigned",
        "start": "in_progress",
        "resolve": "resolved",
        "reassign": "assigned",
        "extend": "escalated",
        "cancel": "cancelled",
        "mark_duplicate": "duplicate",
    },
    "cancelled": {"comment": "cancelled"},
    "duplicate": {"comment": "duplicate"},
}
PAIRS = [(state, action.value) for state in IncidentStatus for action in USER_ACTIONS]


def test_expectation_covers_every_state() -> None:
    assert set(EXPECTED) == {state.value for state in IncidentStatus}


@pytest.mark.parametrize("state", [s.value for s in IncidentStatus])
def test_allowed_actions_match_the_hand_written_expectation(state: str) -> None:
    assert set(allowed_actions(state)) == set(EXPECTED[state])


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (action.value, before, after.value)
        for action, row in TRANSITIONS.items()
        if action not in SYSTEM_ACTIONS
        for before, after in row.items()
    ],
)
def test_every_table_entry_is_expected(action: str, before: str, after: str) -> None:
    assert EXPECTED[before].get(action) == after


def test_report_is_the_only_way_in_and_is_not_a_user_action() -> None:
    assert TRANSITIONS["report"] == {None: "reported"}  # type: ignore[index]
    assert "report" not in allowed_actions(None)


@pytest.fixture
def county(session: Session, catalog: int) -> County:
    return build_county(session)


def _case_in(session: Session, county: County, state: str) -> Incident:
    incident = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    incident.status = state
    if state in ("resolved", "closed"):
        incident.resolved_at = T0
    if state == "closed":
        incident.closed_at = T0
    session.flush()
    return incident


def _arguments(session: Session, county: County, incident: Incident, action: str) -> dict:
    if action in ("assign", "reassign"):
        return {"unit_id": county.units["squad_t2"], "reason": "wrong platform"}
    if action == "extend":
        return {"due_at": T0 + timedelta(days=10), "reason": "awaiting a survey"}
    if action == "mark_duplicate":
        original = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(1))
        return {"duplicate_of": original.id}
    return {"reason": "because"}


@pytest.mark.parametrize(("state", "action"), PAIRS)
def test_action_from_state_is_applied_or_refused_per_expectation(
    session: Session, county: County, state: str, action: str
) -> None:
    incident = _case_in(session, county, state)
    arguments = _arguments(session, county, incident, action)
    events_before = count(session, "incident_events")
    expected = EXPECTED[state].get(action)
    if expected is None:
        with pytest.raises(InvalidTransitionError) as refused:
            apply_action(session, incident.id, action, actor="tester", now=LATER, **arguments)
        assert refused.value.extra["allowed_actions"] == allowed_actions(state)
        assert count(session, "incident_events") == events_before
        session.refresh(incident)
        assert incident.status == state
        return
    result = apply_action(session, incident.id, action, actor="tester", now=LATER, **arguments)
    assert result.incident.status == expected
    assert result.event.from_status == state
    assert result.event.to_status == expected
    assert result.event.at == LATER
    assert result.event.actor == "tester"
    assert count(session, "incident_events") == events_before + 1
    assert result.allowed_actions == allowed_actions(expected)


def test_refusal_names_the_allowed_actions(session: Session, county: County) -> None:
    incident = _case_in(session, county, "resolved")
    with pytest.raises(InvalidTransitionError, match="allowed actions: close, return"):
        apply_action(session, incident.id, "start", actor="tester", now=LATER)


def test_final_case_says_no_action_is_allowed(session: Session, county: County) -> None:
    incident = _case_in(session, county, "cancelled")
    with pytest.raises(InvalidTransitionError, match="only comment"):
        apply_action(session, incident.id, "accept", actor="tester", now=LATER)


@pytest.mark.parametrize("action", ["teleport", "", "report", "flag_overdue"])
def test_unknown_or_system_action_is_refused_and_writes_nothing(
    session: Session, county: County, action: str
) -> None:
    incident = _case_in(session, county, "assigned")
    before = count(session, "incident_events")
    with pytest.raises(ValidationError):
        apply_action(session, incident.id, action, actor="tester", now=LATER)
    assert count(session, "incident_events") == before


def test_the_full_life_stamps_resolved_and_closed(session: Session, county: County) -> None:
    incident = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    for minutes, action in enumerate(("accept", "start", "resolve", "close"), start=1):
        apply_action(session, incident.id, action, actor="u", now=T0 + timedelta(minutes=minutes))
    assert incident.status == "closed"
    assert incident.resolved_at == T0 + timedelta(minutes=3)
    assert incident.closed_at == T0 + timedelta(minutes=4)
    assert [e.action for e in list_events(session, incident.id)] == [
        "report",
        "assign",
        "accept",
        "start",
        "resolve",
        "close",
    ]


def test_return_counts_rework_and_clears_the_resolution(session: Session, county: County) -> None:
    incident = _case_in(session, county, "resolved")
    apply_action(session, incident.id, "return", actor="command", reason="photo missing", now=LATER)
    assert (incident.status, incident.return_count, incident.resolved_at) == ("returned", 1, None)
    event = list_events(session, incident.id)[-1]
    assert event.note == "photo missing"


@pytest.mark.parametrize("action", ["return", "reopen", "cancel", "escalate"])
def test_actions_that_need_a_reason_refuse_without_one(
    session: Session, county: County, action: str
) -> None:
    state = {"return": "resolved", "reopen": "closed"}.get(action, "assigned")
    incident = _case_in(session, county, state)
    with pytest.raises(ValidationError, match="needs a reason"):
        apply_action(session, incident.id, action, actor="u", note="  ", now=LATER)
    assert incident.status == state


def test_extend_moves_the_deadline_and_keeps_the_state(session: Session, county: County) -> None:
    incident = _case_in(session, county, "in_progress")
    old_due = incident.due_at
    new_due = T0 + timedelta(days=7)
    result = apply_action(
        session, incident.id, "extend", actor="u", reason="survey", due_at=new_due, now=LATER
    )
    assert (result.incident.status, result.incident.due_at) == ("in_progress", new_due)
    assert result.incident.extension_count == 1
    assert result.event.data == {
        "previous_due_at": old_due.isoformat(),
        "due_at": new_due.isoformat(),
    }


@pytest.mark.parametrize(
    ("due_at", "reason", "message"),
    [
        (T0 + timedelta(days=7), None, "needs a reason"),
        (T0 + timedelta(days=7), "   ", "needs a reason"),
        (T0 - timedelta(days=1), "survey", "not in the future"),
        (T0 + timedelta(days=1), "survey", "does not extend"),  # before the current deadline
        (None, "survey", "needs due_at"),
        (datetime(2026, 4, 1), "survey", "no time zone"),
    ],
)
def test_bad_extension_is_refused_and_writes_nothing(
    session: Session, county: County, due_at: datetime | None, reason: str | None, message: str
) -> None:
    incident = _case_in(session, county, "in_progress")
    old_due, before = incident.due_at, count(session, "incident_events")
    with pytest.raises(ValidationError, match=message):
        apply_action(
            session, incident.id, "extend", actor="u", reason=reason, due_at=due_at, now=LATER
        )
    assert (incident.due_at, incident.extension_count) == (old_due, 0)
    assert count(session, "incident_events") == before


def test_reassign_to_another_platform_moves_unit_and_platform(
    session: Session, county: County
) -> None:
    incident = _case_in(session, county, "accepted")
    result = apply_action(
        session,
        incident.id,
        "reassign",
        actor="command",
        reason="it is illegal building, not a dispute",
        unit_id=county.units["squad_t2"],
        now=LATER,
    )
    assert result.incident.status == "assigned"
    assert result.incident.unit_id == county.units["squad_t2"]
    assert result.incident.platform == "enforcement"
    assert result.incident.reassign_count == 1
    assert result.incident.unit_distance_m is not None and result.incident.unit_distance_m > 1000
    assert result.event.data["from_unit_id"] == county.units["police_t1"]


@pytest.mark.parametrize(
    ("unit", "message"), [(None, "needs unit_id"), ("same", "already with"), (-5, "no responder")]
)
def test_reassign_without_a_new_unit_is_refused(
    session: Session, county: County, unit: object, message: str
) -> None:
    incident = _case_in(session, county, "accepted")
    unit_id = incident.unit_id if unit == "same" else unit
    with pytest.raises(ValidationError, match=message):
        apply_action(
            session, incident.id, "reassign", actor="u", reason="r", unit_id=unit_id, now=LATER
        )
    assert incident.status == "accepted"


def test_mark_duplicate_points_at_the_original(session: Session, county: County) -> None:
    original = add_case(session, county, grid=G3, reported_at=T0, due_at=T0 + timedelta(1))
    copy = _case_in(session, county, "assigned")
    apply_action(session, copy.id, "mark_duplicate", actor="u", duplicate_of=original.id, now=LATER)
    assert (copy.status, copy.duplicate_of_id) == ("duplicate", original.id)
    third = _case_in(session, county, "assigned")
    with pytest.raises(ValidationError, match=f"merge into {original.id}"):
        apply_action(
            session, third.id, "mark_duplicate", actor="u", duplicate_of=copy.id, now=LATER
        )
    with pytest.raises(ValidationError, match="itself"):
        apply_action(
            session, third.id, "mark_duplicate", actor="u", duplicate_of=third.id, now=LATER
        )


def test_action_before_the_last_change_is_refused(session: Session, county: County) -> None:
    incident = _case_in(session, county, "assigned")
    with pytest.raises(ValidationError, match="time order"):
        apply_action(session, incident.id, "accept", actor="u", now=T0 - timedelta(hours=1))


def test_actor_is_required(session: Session, county: County) -> None:
    incident = _case_in(session, county, "assigned")
    with pytest.raises(ValidationError, match="actor"):
        apply_action(session, incident.id, "accept", actor=" ", now=LATER)


def test_two_concurrent_accepts_one_wins_the_other_is_refused(engine: object, catalog: int) -> None:
    # Committed data and two real transactions: the row lock makes the second see the first.
    import threading

    from sqlalchemy import delete

    from gis.layers.grids import Grid, GridMember, GridMemberGrid
    from gis.layers.incidents import IncidentEvent
    from gis.layers.regions import Region
    from gis.layers.units import ResponderUnit

    with Session(engine) as setup:  # type: ignore[arg-type]
        county = build_county(setup)
        case_id = add_case(setup, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(1)).id
        setup.commit()
    outcomes: list[str] = []
    first_locked = threading.Event()

    def accept(name: str, hold: bool) -> None:
        with Session(engine) as session:  # type: ignore[arg-type]
            try:
                apply_action(session, case_id, "accept", actor=name, now=LATER)
                if hold:
                    first_locked.set()
                    threading.Event().wait(0.5)  # keep the lock while the other one queues
                session.commit()
                outcomes.append("accepted")
            except InvalidTransitionError:
                session.rollback()
                outcomes.append("refused")

    try:
        first = threading.Thread(target=accept, args=("first", True))
        first.start()
        first_locked.wait(10)
        second = threading.Thread(target=accept, args=("second", False))
        second.start()
        first.join(10)
        second.join(10)
        assert sorted(outcomes) == ["accepted", "refused"]
        with Session(engine) as check:  # type: ignore[arg-type]
            accepts = [e for e in list_events(check, case_id) if e.action == "accept"]
            assert [e.actor for e in accepts] == ["first"]
    finally:
        with Session(engine) as cleanup:  # type: ignore[arg-type]
            cleanup.execute(delete(IncidentEvent).where(IncidentEvent.incident_id == case_id))
            cleanup.execute(delete(Incident).where(Incident.id == case_id))
            cleanup.execute(
                delete(GridMemberGrid).where(GridMemberGrid.member_id.in_(county.members.values()))
            )
            cleanup.execute(delete(GridMember).where(GridMember.id.in_(county.members.values())))
            cleanup.execute(
                delete(ResponderUnit).where(ResponderUnit.id.in_(county.units.values()))
            )
            cleanup.execute(delete(Grid).where(Grid.code.in_(["W1-G1", "W1-G2", "W2-G3"])))
            for level in ("village", "town", "county"):
                cleanup.execute(
                    delete(Region).where(Region.level == level, Region.code.like("9801%"))
                )
            cleanup.commit()
