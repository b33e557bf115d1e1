"""`gis stats refresh`: incremental (only the cases with new events or reports) and equal to a
full refresh, row for row; one refresh at a time (a second waits or is refused at once)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.commands.stats import REFRESH_BUSY_EXIT
from gis.layers.base import utcnow
from gis.services.stats import RefreshBusyError, refresh_facts
from gis.services.workflow import apply_action
from tests.conftest import Cli
from tests.services.workflow_fixtures import build_history, hours_after, inject_event


def _facts(session: Session) -> list[tuple[Any, ...]]:
    """Every stored fact, every column."""
    return [
        tuple(row) for row in session.execute(sa.text("SELECT * FROM incident_facts ORDER BY 1"))
    ]


@pytest.fixture
def history(session: Session, catalog: int) -> dict[str, int]:
    """The hand-made history of tests/services/test_stats.py."""
    return build_history(session)


def test_incremental_refresh_recomputes_only_new_cases_and_equals_a_full_one(
    session: Session, history: dict[str, int]
) -> None:
    first = refresh_facts(session)
    assert first.mode == "full" and first.cases >= len(history)
    assert refresh_facts(session).cases == 0  # nothing new: nothing recomputed
    # New events on two cases (a close, a back-dated escalation), one future-dated (not
    # counted yet), and a new case.
    apply_action(session, history["J"], "close", actor="command")
    inject_event(session, history["E"], "escalate", hours_after(29), status="escalated")
    inject_event(session, history["I"], "close", utcnow() + timedelta(days=3), status="closed")
    # A case written without any event (a bulk load): found by the cases' own watermark.
    added = session.execute(
        sa.text(
            "INSERT INTO incidents (category_code, platform, status, description, reporter_kind,"
            " photos, geom, source_crs, source_lon, source_lat, location_quality, reported_at,"
            " updated_at, county_code, town_code, village_code, grid_code, grid_id, due_at)"
            " SELECT category_code, platform, status, description, reporter_kind, photos, geom,"
            " source_crs, source_lon, source_lat, location_quality, :at, :at, county_code,"
            " town_code, village_code, grid_code, grid_id, due_at FROM incidents WHERE id = :a"
            " RETURNING id"
        ),
        {"a": history["A"], "at": hours_after(3)},
    ).scalar_one()
    incremental = refresh_facts(session)
    assert incremental.mode == "incremental"
    assert incremental.cases == 4  # J, E, I and the new case: nothing else
    assert incremental.town_months >= 1
    stored = _facts(session)
    assert any(row[0] == added for row in stored)
    # The pending case (its close is dated after the cutoff) is recomputed next time.
    pending = session.execute(sa.text("SELECT incident_id FROM stats_refresh_pending")).scalars()
    assert list(pending) == [history["I"]]
    assert refresh_facts(session, full=True).mode == "full"
    assert stored == _facts(session)


@pytest.fixture
def holder(engine: Engine) -> Any:
    """A separate connection that runs a refresh and keeps its transaction (and lock) open."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection)
    refresh_facts(session)
    yield session
    session.close()
    transaction.rollback()
    connection.close()


def test_a_second_refresh_is_refused_at_once_or_waits_for_the_first(
    engine: Engine, catalog: int, holder: Session
) -> None:
    with Session(engine) as other:
        started = time.perf_counter()
        with pytest.raises(RefreshBusyError):
            refresh_facts(other, wait=False)
        assert time.perf_counter() - started < 5
        other.rollback()
    done: list[float] = []

    def waiting() -> None:
        with Session(engine) as waiter:
            result = refresh_facts(waiter, wait=True)
            done.append(result.waited_s)
            waiter.rollback()

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(1.0)
    assert not done  # still waiting for the holder
    holder.rollback()  # the first refresh ends
    thread.join(timeout=60)
    assert done and done[0] >= 0.9


def test_cli_refresh_says_a_refresh_is_running_and_exits_3(
    catalog: int, holder: Session, cli: Cli
) -> None:
    result = cli("stats", "refresh")
    assert result.exit_code == REFRESH_BUSY_EXIT == 3
    assert "refresh is running" in result.output
