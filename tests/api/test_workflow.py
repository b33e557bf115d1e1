"""The workflow over HTTP: actions, the event log, errors in the one shape, and the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api.deps import server_clock
from gis.api.security import get_principal
from gis.layers.base import utcnow
from gis.layers.users import Role
from gis.services.access import Principal
from tests.conftest import count
from tests.services.workflow_fixtures import G1, County, add_case, build_county

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def county(session: Session, catalog: int) -> County:
    return build_county(session)


@pytest.fixture
def admin(app: Any) -> Iterator[TestClient]:
    """A client acting as an admin named 'command-room'."""
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None, name="command-room", role=Role.ADMIN
    )
    with TestClient(app) as client:
        yield client


def test_actions_walk_a_case_to_closed_and_the_log_shows_each(
    admin: TestClient, session: Session, county: County
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    for action in ("accept", "start", "resolve", "close"):
        reply = admin.post(f"/incidents/{case.id}/actions", json={"action": action})
        assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["incident"]["status"] == "closed"
    assert body["event"]["actor"] == "command-room"
    assert body["allowed_actions"] == ["reopen", "comment"]
    log = admin.get(f"/incidents/{case.id}/events").json()
    assert [e["action"] for e in log["events"]] == [
        "report",
        "assign",
        "accept",
        "start",
        "resolve",
        "close",
    ]
    assert log["incident"]["closed_at"] is not None


def test_invalid_transition_is_409_listing_allowed_actions(
    admin: TestClient, session: Session, county: County
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    before = count(session, "incident_events")
    reply = admin.post(f"/incidents/{case.id}/actions", json={"action": "close"})
    assert reply.status_code == 409
    body = reply.json()
    assert body["code"] == "invalid_transition"
    assert body["allowed_actions"] == [
        "accept",
        "reassign",
        "escalate",
        "extend",
        "cancel",
        "mark_duplicate",
        "comment",
    ]
    assert "allowed actions" in body["detail"]
    assert count(session, "incident_events") == before


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"action": "fly"}, 422, "unknown action"),
        ({"action": "extend", "due_at": "2099-01-01T00:00:00Z"}, 422, "needs a reason"),
        ({"action": "extend", "reason": "r", "due_at": "2001-01-01T00:00:00Z"}, 422, "future"),
        ({"action": "extend", "reason": "r", "due_at": "not a date"}, 422, "due_at"),
        ({"action": "reassign", "reason": "r"}, 422, "unit_id"),
        ({"action": "accept", "colour": "red"}, 422, "colour"),
        ({"action": "mark_duplicate", "duplicate_of": 2**40}, 422, "no incident"),
    ],
)
def test_bad_action_bodies_are_422_and_write_nothing(
    admin: TestClient,
    session: Session,
    county: County,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    before = count(session, "incident_events")
    reply = admin.post(f"/incidents/{case.id}/actions", json=body)
    assert reply.status_code == status, reply.text
    assert fragment in reply.json()["detail"]
    assert count(session, "incident_events") == before


def test_unknown_incident_is_404(admin: TestClient, county: County) -> None:
    assert admin.post("/incidents/999999999/actions", json={"action": "accept"}).status_code == 404
    assert admin.get("/incidents/999999999/events").status_code == 404


def test_extend_over_http_moves_due_at(admin: TestClient, session: Session, county: County) -> None:
    case = add_case(
        session, county, grid=G1, reported_at=T0, due_at=datetime.now(UTC) + timedelta(hours=1)
    )
    new_due = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
    reply = admin.post(
        f"/incidents/{case.id}/actions",
        json={"action": "extend", "reason": "waiting for parts", "due_at": new_due.isoformat()},
    )
    assert reply.status_code == 200, reply.text
    assert datetime.fromisoformat(reply.json()["incident"]["due_at"]) == new_due
    assert reply.json()["incident"]["extension_count"] == 1


def test_actions_need_a_token_when_auth_is_on(
    client: TestClient, session: Session, county: County
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    before = count(session, "incident_events")
    reply = client.post(f"/incidents/{case.id}/actions", json={"action": "accept"})
    assert reply.status_code == 401
    assert count(session, "incident_events") == before


@pytest.fixture
def clock(app: Any) -> Iterator[list[datetime]]:
    """The server clock the routes see, set by the test (a dependency override, not a body)."""
    now = [T0 + timedelta(hours=30)]
    app.dependency_overrides[server_clock] = lambda: now[0]
    yield now
    app.dependency_overrides.pop(server_clock, None)


def test_sweep_runs_on_the_server_clock(
    admin: TestClient, session: Session, county: County, clock: list[datetime]
) -> None:
    late = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(hours=2))
    reply = admin.post("/sla/sweep", json={"escalate_after_hours": 24})
    assert reply.status_code == 200, reply.text
    assert reply.json()["now"] == clock[0].isoformat().replace("+00:00", "Z")
    assert late.id in reply.json()["flagged_ids"]
    assert late.id in reply.json()["escalated_ids"]
    events = admin.get(f"/incidents/{late.id}/events").json()
    assert events["incident"]["status"] == "escalated"
    assert {e["at"] for e in events["events"][-2:]} == {reply.json()["now"]}


@pytest.mark.parametrize(
    "body",
    [
        {"now": "2026-12-09T00:00:00Z"},  # a client's clock: the field does not exist
        {"now": "2026-12-09T00:00:00Z", "escalate_after_hours": 24},
        {"escalate_after_hours": False},  # a boolean is not a number of hours
        {"escalate_after_hours": True},
        {"escalate_after_hours": "24"},
        {"escalate_after_hours": 8761},
        {"escalate_after_hours": -1},
        {"escalate_after_hours": None, "dry_run": True},
    ],
)
def test_sweep_refuses_a_clock_and_loose_types_and_writes_nothing(
    admin: TestClient, session: Session, county: County, body: dict[str, Any]
) -> None:
    add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(hours=2))
    before = count(session, "incident_events")
    reply = admin.post("/sla/sweep", json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "validation_error"
    assert count(session, "incident_events") == before


def test_the_sweep_schema_states_its_bounds_and_no_clock(admin: TestClient) -> None:
    schema = admin.get("/openapi.json").json()["components"]["schemas"]["SweepCreate"]
    assert set(schema["properties"]) == {"escalate_after_hours"}
    assert schema["additionalProperties"] is False
    hours = schema["properties"]["escalate_after_hours"]["anyOf"][0]
    assert (hours["type"], hours["minimum"], hours["maximum"]) == ("number", 0, 8760)


def test_preview_says_what_a_sweep_would_do_and_writes_nothing(
    admin: TestClient, session: Session, county: County, clock: list[datetime]
) -> None:
    late = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(hours=2))
    before = count(session, "incident_events")
    at = (T0 + timedelta(hours=10)).isoformat()
    reply = admin.get("/sla/preview", params={"at": at, "escalate_after_hours": 24})
    assert reply.status_code == 200, reply.text
    assert late.id in reply.json()["flagged_ids"]
    assert late.id not in reply.json()["escalated_ids"]  # 8 h overdue at 10 h
    default = admin.get("/sla/preview").json()  # at the server clock: 28 h overdue
    assert late.id in default["escalated_ids"]
    assert count(session, "incident_events") == before
    session.refresh(late)
    assert (late.status, late.overdue_at) == ("assigned", None)
    for params in (
        {"escalate_after_hours": "false"},
        {"at": "2026-03-02T09:00:00"},  # no zone
        {"at": "0001-01-01T00:00:00+08:00"},
        {"at": "9999-12-31T23:59:59Z"},
    ):
        reply = admin.get("/sla/preview", params=params)
        assert (reply.status_code, reply.json()["code"]) == (422, "validation_error"), params


def test_a_server_clock_days_ahead_of_the_database_cannot_write_the_log(
    admin: TestClient, session: Session, county: County, clock: list[datetime]
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(hours=2))
    session.commit()  # only a savepoint here; the refused statement rolls back to it
    before = count(session, "incident_events")
    clock[0] = utcnow() + timedelta(days=3)
    reply = admin.post("/sla/sweep", json={})
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "event_in_future"
    session.rollback()  # as the request's own session would be
    assert count(session, "incident_events") == before
    reply = admin.post(f"/incidents/{case.id}/actions", json={"action": "accept"})
    assert (reply.status_code, reply.json()["code"]) == (422, "event_in_future")
    session.rollback()
    session.refresh(case)
    assert case.status == "assigned"


def test_actions_are_dated_by_the_server_clock(
    admin: TestClient, session: Session, county: County, clock: list[datetime]
) -> None:
    case = add_case(session, county, grid=G1, reported_at=T0, due_at=T0 + timedelta(days=3))
    reply = admin.post(f"/incidents/{case.id}/actions", json={"action": "accept"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["event"]["at"] == clock[0].isoformat().replace("+00:00", "Z")
    sent = {"action": "start", "at": "2026-03-01T00:00:00Z"}
    assert admin.post(f"/incidents/{case.id}/actions", json=sent).status_code == 422


def test_sweep_refuses_a_negative_threshold(admin: TestClient, county: County) -> None:
    reply = admin.post("/sla/sweep", json={"escalate_after_hours": -1})
    assert reply.status_code == 422
