"""The event log is the record: the database refuses events dated in the future, whoever writes
them; `check` finds damage that got in before the guard, and `repair` mends each kind."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.db import translate_db_errors
from gis.errors import FutureEventError
from gis.layers.base import utcnow
from gis.layers.errands import load_services
from gis.layers.incidents import Incident, list_events
from gis.services import eventlog, sla
from gis.services.errands import ErrandRequest, request_errand
from gis.services.eventlog import Damage
from gis.services.workflow import apply_action
from gis.settings import Settings
from tests.conftest import count
from tests.services.workflow_fixtures import (
    G1,
    T0,
    County,
    add_case,
    build_county,
    hours_after,
    inject_event,
)

_INSERT = sa.text(
    "INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, data) "
    "VALUES (:case, clock_timestamp() + CAST(:ahead AS interval), 'sql', 'close', 'resolved', "
    "'closed', '{}')"
)


@pytest.fixture
def county(session: Session, catalog: int) -> County:
    return build_county(session)


@pytest.fixture
def case(session: Session, county: County) -> Incident:
    return add_case(session, county, grid=G1, reported_at=T0, due_at=hours_after(72))


def test_sql_insert_of_a_future_event_is_refused_with_a_clear_error(
    session: Session, case: Incident
) -> None:
    before = count(session, "incident_events")
    # The test connects with the service's own database URL, hence its role.
    refused = pytest.raises(FutureEventError, match="ahead of the server time")
    with refused, session.begin_nested(), translate_db_errors():
        session.execute(_INSERT, {"case": case.id, "ahead": "1 hour"})
    assert count(session, "incident_events") == before
    # A server clock a little ahead of the database's is tolerated (5 minutes).
    session.execute(_INSERT, {"case": case.id, "ahead": "1 minute"})
    assert count(session, "incident_events") == before + 1


def test_moving_an_event_into_the_future_is_refused(session: Session, case: Incident) -> None:
    with pytest.raises(FutureEventError), session.begin_nested(), translate_db_errors():
        session.execute(
            sa.text("UPDATE incident_events SET at = now() + interval '2 days' WHERE id = :id"),
            {"id": list_events(session, case.id)[0].id},
        )


def test_errand_events_are_guarded_too(
    session: Session, county: County, settings: Settings
) -> None:
    load_services(session)
    errand = request_errand(
        session,
        ErrandRequest(
            lon=111.015,
            lat=31.005,
            service="elderly_card",
            applicant_name="王大妈",
            applicant_phone="13812345678",
        ),
        settings=settings,
    )
    with pytest.raises(FutureEventError), session.begin_nested(), translate_db_errors():
        session.execute(
            sa.text(
                "INSERT INTO errand_events (errand_id, at, actor, action, data) "
                "VALUES (:id, now() + interval '1 day', 'sql', 'deliver', '{}')"
            ),
            {"id": errand.id},
        )


def test_a_sweep_on_a_clock_days_ahead_is_refused_and_writes_nothing(
    session: Session, case: Incident
) -> None:
    before = count(session, "incident_events")
    with pytest.raises(FutureEventError), session.begin_nested(), translate_db_errors():
        sla.sweep(session, now=utcnow() + timedelta(days=3), escalate_after_hours=0)
    assert count(session, "incident_events") == before
    session.refresh(case)
    assert (case.status, case.overdue_at) == ("assigned", None)


def _mine(findings: list[eventlog.Finding], *case_ids: int) -> set[tuple[Damage, int, int | None]]:
    return {(f.damage, f.case_id, f.event_id) for f in findings if f.case_id in case_ids}


def test_check_finds_each_kind_and_repair_mends_it(
    session: Session, county: County, case: Incident
) -> None:
    ahead = utcnow() + timedelta(days=3)
    # A sweep on a client's clock: flagged and escalated in the future.
    swept = add_case(session, county, grid=G1, reported_at=T0, due_at=hours_after(2))
    future = inject_event(session, swept.id, "escalate", ahead, status="escalated")
    swept.status, swept.escalation_level = "escalated", 1
    swept.escalated_at = swept.updated_at = ahead
    # A back-dated write: a start logged after the accept, dated before it.
    apply_action(session, case.id, "accept", actor="u", now=hours_after(5))
    back = inject_event(session, case.id, "start", hours_after(3), status="in_progress")
    # A status nobody logged.
    odd = add_case(session, county, grid=G1, reported_at=T0, due_at=hours_after(72))
    odd.status = "closed"
    session.flush()
    assert _mine(eventlog.check(session), swept.id, case.id, odd.id) == {
        (Damage.FUTURE, swept.id, future),
        (Damage.OUT_OF_ORDER, case.id, back),
        (Damage.STATUS, case.id, back),  # in_progress by its last event, accepted in the table
        (Damage.STATUS, odd.id, list_events(session, odd.id)[-1].id),
    }

    result = eventlog.repair(session)

    assert future in {row["id"] for row in result.deleted}
    assert _mine(eventlog.check(session), swept.id, case.id, odd.id) == set()
    swept, case, odd = (session.get_one(Incident, i) for i in (swept.id, case.id, odd.id))
    assert (swept.status, swept.escalation_level, swept.escalated_at) == ("assigned", 0, None)
    assert swept.updated_at == T0
    assert (case.status, odd.status) == ("in_progress", "assigned")
    start = list_events(session, case.id)[-1]
    assert (start.action, start.at) == ("start", hours_after(5))
    assert datetime.fromisoformat(start.data["recorded_at"]) == hours_after(3)
