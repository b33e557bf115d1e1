"""`gis db check` finds damage injected in the committed log; `gis db repair` is a dry run until
--commit; `gis sla preview` writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.base import utcnow
from tests.conftest import Cli
from tests.services.workflow_fixtures import inject_event


@pytest.fixture
def damaged(demo: dict[str, object], engine: Engine) -> Iterator[dict[str, int | str]]:
    """Two demo cases damaged and committed: a future-dated event on one, a status nobody logged
    on the other. Put back afterwards, whatever the test did."""
    with Session(engine) as session:
        first, second = session.execute(
            sa.text("SELECT id, status FROM incidents ORDER BY id LIMIT 2")
        ).all()
        event = inject_event(
            session, first.id, "flag_overdue", utcnow() + timedelta(days=3), status=first.status
        )
        session.execute(
            sa.text("UPDATE incidents SET status = 'cancelled' WHERE id = :id"), {"id": second.id}
        )
        session.commit()
    yield {"event": event, "future_case": first.id, "case": second.id, "status": second.status}
    with Session(engine) as session:
        session.execute(sa.text("DELETE FROM incident_events WHERE id = :id"), {"id": event})
        session.execute(
            sa.text("UPDATE incidents SET status = :status WHERE id = :id"),
            {"id": second.id, "status": second.status},
        )
        session.commit()


def _state(engine: Engine, damaged: dict[str, int | str]) -> tuple[int, str]:
    with Session(engine) as session:
        events = session.scalar(
            sa.text("SELECT count(*) FROM incident_events WHERE id = :id"), {"id": damaged["event"]}
        )
        status = session.scalar(
            sa.text("SELECT status FROM incidents WHERE id = :id"), {"id": damaged["case"]}
        )
    return int(events or 0), str(status)


def test_check_finds_it_repair_is_a_dry_run_until_commit(
    damaged: dict[str, int | str], engine: Engine, cli: Cli
) -> None:
    found = cli("db", "check")
    assert found.exit_code == 1, found.output
    assert f"future: incident {damaged['future_case']} event {damaged['event']}" in found.output
    assert f"status: incident {damaged['case']} " in found.output
    assert "1 future" in found.output and "1 status" in found.output

    dry = cli("db", "repair")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing written" in dry.output
    assert f"cancelled → {damaged['status']}" in dry.output
    assert _state(engine, damaged) == (1, "cancelled")

    done = cli("db", "repair", "--commit")
    assert done.exit_code == 0, done.output
    assert f'"id": {damaged["event"]}' in done.output  # the deleted row, printed for the record
    assert _state(engine, damaged) == (0, damaged["status"])
    clean = cli("db", "check")
    assert clean.exit_code == 0, clean.output
    assert "no damage" in clean.output


def test_sla_preview_writes_nothing(
    damaged: dict[str, int | str], engine: Engine, cli: Cli
) -> None:
    with Session(engine) as session:
        before = session.scalar(sa.text("SELECT count(*) FROM incident_events"))
    reply = cli("sla", "preview", "--at", "2026-11-01T08:00+08:00")
    assert reply.exit_code == 0, reply.output
    assert "would flag" in reply.output
    bad = cli("sla", "preview", "--at", "soon")
    assert bad.exit_code == 2 and "not ISO 8601" in bad.output
    with Session(engine) as session:
        assert session.scalar(sa.text("SELECT count(*) FROM incident_events")) == before
    # The sweep has no clock to set: it runs at the server's time.
    clocked = cli("sla", "sweep", "--now", "2026-12-09T00:00Z")
    assert clocked.exit_code == 2 and "No such option" in clocked.output
