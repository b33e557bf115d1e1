"""`gis partitions ensure` is idempotent; `gis archive --before` / `restore` / `list` move a
committed month out of the live log and back; bad months exit 2 with a message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.services.intake import report_incident
from gis.settings import Settings
from tests.conftest import Cli
from tests.services.intake_fixtures import committed_area, make_report

OLD = datetime(2018, 7, 9, 3, 0, tzinfo=UTC)


def _partitions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.scalars(
                sa.text(
                    "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n "
                    "ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                    "AND c.relname LIKE 'incident\\_events\\_y%' "
                    "AND n.nspname IN ('public', 'archive')"
                )
            )
        )


@pytest.fixture
def cli_database(engine: Engine) -> Iterator[Engine]:
    """The test database for the CLI; partitions the test made are dropped afterwards."""
    existing = _partitions(engine)
    yield engine
    with engine.begin() as connection:
        for name in sorted(_partitions(engine) - existing):
            # A partition of a table that keys point at is detached before it is dropped.
            attached = connection.scalar(
                sa.text("SELECT relispartition FROM pg_class WHERE relname = :name"),
                {"name": name},
            )
            if attached:
                connection.execute(sa.text(f"ALTER TABLE incident_events DETACH PARTITION {name}"))
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}, archive.{name}"))


def test_ensure_creates_months_once_and_refuses_an_empty_span(
    cli_database: Engine, cli: Cli
) -> None:
    first = cli("partitions", "ensure", "--months-ahead", "6")
    assert first.exit_code == 0, first.output
    again = cli("partitions", "ensure", "--months-ahead", "6")
    assert again.exit_code == 0, again.output
    assert "created none (all present)" in again.output
    listed = cli("partitions", "list")
    assert listed.exit_code == 0 and "default" in listed.output, listed.output

    empty = cli("partitions", "ensure", "--from", "2099-01")
    assert empty.exit_code == 2
    assert "the span is empty" in empty.output
    bad = cli("partitions", "ensure", "--from", "2024-13")
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_archive_and_restore_a_month_of_a_closed_case(
    cli_database: Engine, catalog: int, settings: Settings, cli: Cli
) -> None:
    engine = cli_database
    with committed_area(engine):
        with Session(engine) as session:
            result = report_incident(
                session, make_report(110.015, 30.005), settings=settings, now=OLD
            )
            case = result.incident.id
            session.execute(
                sa.text("UPDATE incidents SET status = 'closed' WHERE id = :id"), {"id": case}
            )
            session.commit()
        live = "SELECT count(*) FROM incident_events WHERE incident_id = :id"
        with engine.connect() as connection:
            assert connection.scalar(sa.text(live), {"id": case}) == 2

        archived = cli("archive", "--before", "2018-08")
        assert archived.exit_code == 0, archived.output
        assert "archive.incident_events_y2018m07" in archived.output
        listed = cli("archive", "list")
        assert "2018-07" in listed.output, listed.output
        with engine.connect() as connection:
            assert connection.scalar(sa.text(live), {"id": case}) == 0

        restored = cli("archive", "restore", "2018-07")
        assert restored.exit_code == 0, restored.output
        assert "restored 2018-07" in restored.output
        with engine.connect() as connection:
            assert connection.scalar(sa.text(live), {"id": case}) == 2

        again = cli("archive", "restore", "2018-07")
        assert again.exit_code == 2 and "not in the archive" in again.output
        missing = cli("archive")
        assert missing.exit_code == 2 and "--before" in missing.output
        bad = cli("archive", "--before", "last year")
        assert bad.exit_code == 2 and "YYYY-MM" in bad.output
