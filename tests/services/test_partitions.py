"""The event log's monthly partitions: made ahead (idempotent), rows caught by the default
partition moved into their month, old months archived and restored row for row, refusals that
change nothing, and period queries that read only their months (EXPLAIN)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ConflictError, NotFoundError, ValidationError
from gis.layers.incidents import CASE_MONTHS, EVENT_MONTHS
from gis.services.intake import report_incident
from gis.services.partitions import (
    Month,
    archive_before,
    ensure_partitions,
    list_partitions,
    months_ahead,
    restore_month,
)
from gis.services.stats import StatsQuery, case_figures_sql
from gis.settings import Settings
from tests.services.intake_fixtures import Area, area, make_report

__all__ = ["area"]

OLD = datetime(2019, 3, 5, 10, 0, tzinfo=UTC)  # a month no partition covers at first
EVENT_ROWS = (
    "SELECT md5(string_agg(e::text, '|' ORDER BY e.id)) FROM incident_events AS e "
    "WHERE e.incident_id = ANY(:ids)"
)


def _partition_of(session: Session, incident_id: int) -> set[str]:
    return set(
        session.scalars(
            sa.text(
                "SELECT DISTINCT tableoid::regclass::text FROM incident_events "
                "WHERE incident_id = :id"
            ),
            {"id": incident_id},
        )
    )


def _old_case(session: Session, settings: Settings, *, status: str = "closed") -> int:
    """A case reported in March 2019 (its events in the default partition), given ``status``."""
    result = report_incident(session, make_report(110.015, 30.005), settings=settings, now=OLD)
    incident_id = result.incident.id
    session.execute(
        sa.text("UPDATE incidents SET status = :s WHERE id = :id"), {"s": status, "id": incident_id}
    )
    return incident_id


def test_month_parsing_and_arithmetic() -> None:
    assert Month.parse("2024-01") == Month(2024, 1)
    assert Month(2024, 1).plus(-1) == Month(2023, 12)
    assert Month(2023, 12).plus(14) == Month(2025, 2)
    assert Month(2024, 1).partition(EVENT_MONTHS) == "incident_events_y2024m01"
    assert Month(2024, 1).partition(CASE_MONTHS) == "incidents_y2024m01"
    # Midnight of 1 January in Beijing is still December in UTC.
    assert Month.of(datetime(2023, 12, 31, 16, 30, tzinfo=UTC)) == Month(2024, 1)
    assert months_ahead(datetime(2026, 11, 20, tzinfo=UTC), 2) == (Month(2026, 11), Month(2027, 1))
    for bad in ("2024-13", "2024-1", "24-01", "2024/01", "januari"):
        with pytest.raises(ValidationError, match="YYYY-MM"):
            Month.parse(bad)
    with pytest.raises(ValidationError):
        months_ahead(datetime(2026, 11, 20, tzinfo=UTC), -1)


def test_ensure_creates_the_missing_months_once(session: Session) -> None:
    created = ensure_partitions(session, first=Month(2031, 11), last=Month(2032, 2))
    assert created == [Month(2031, 11), Month(2031, 12), Month(2032, 1), Month(2032, 2)]
    assert ensure_partitions(session, first=Month(2031, 10), last=Month(2032, 2)) == [
        Month(2031, 10)
    ]
    bounds = session.scalar(
        sa.text(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
            "WHERE relname = 'incident_events_y2032m01'"
        )
    )
    assert bounds is not None
    start, end = (
        datetime.fromisoformat(part.split("'")[1])
        for part in bounds.split(" TO ")  # FOR VALUES FROM ('…') TO ('…')
    )
    assert (start, end) == (Month(2032, 1).start, Month(2032, 2).start)
    months = {p.month for p in list_partitions(session) if not p.archived}
    assert {Month(2031, 10), Month(2032, 2)} <= months
    with pytest.raises(ValidationError, match="empty"):
        ensure_partitions(session, first=Month(2032, 2), last=Month(2032, 1))
    with pytest.raises(ValidationError, match="more than"):
        ensure_partitions(session, first=Month(2000, 1), last=Month(20026, 1))


def test_rows_caught_by_the_default_partition_move_into_their_month(
    session: Session, area: Area, settings: Settings
) -> None:
    case = _old_case(session, settings)
    assert _partition_of(session, case) == {"incident_events_default"}
    event = session.execute(
        sa.text("SELECT id, at FROM incident_events WHERE incident_id = :id ORDER BY id LIMIT 1"),
        {"id": case},
    ).one()
    # An Open311 update names the event: its key must survive the move.
    session.execute(
        sa.text(
            "INSERT INTO open311_updates (client_update_id, incident_id, event_id, event_at, "
            "received_at) VALUES ('t-1', :case, :id, :at, now())"
        ),
        {"case": case, "id": event.id, "at": event.at},
    )
    before = session.scalar(sa.text(EVENT_ROWS), {"ids": [case]})

    assert ensure_partitions(session, first=Month(2019, 3), last=Month(2019, 3)) == [Month(2019, 3)]

    assert _partition_of(session, case) == {"incident_events_y2019m03"}
    assert session.scalar(sa.text(EVENT_ROWS), {"ids": [case]}) == before
    assert (
        session.scalar(
            sa.text("SELECT count(*) FROM open311_updates WHERE event_id = :id"), {"id": event.id}
        )
        == 1
    )
    keys = session.scalar(
        sa.text(
            "SELECT count(*) FROM pg_constraint WHERE conparentid = 0 "
            "AND conname = 'fk_open311_updates_event_id_incident_events'"
        )
    )
    assert keys == 1


def test_archive_detaches_old_months_and_restore_brings_every_row_back(
    session: Session, area: Area, settings: Settings
) -> None:
    case = _old_case(session, settings)
    before = session.scalar(sa.text(EVENT_ROWS), {"ids": [case]})
    count = session.scalar(
        sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :id"), {"id": case}
    )
    assert count == 2  # report and assign

    case_row = session.scalar(
        sa.text("SELECT md5(i::text) FROM incidents AS i WHERE id = :id"), {"id": case}
    )

    moved = archive_before(session, Month(2019, 4))

    assert sorted(p.name for p in moved) == ["incident_events_y2019m03", "incidents_y2019m03"]
    assert _partition_of(session, case) == set()
    archived = session.scalar(
        sa.text("SELECT count(*) FROM archive.incident_events_y2019m03 WHERE incident_id = :id"),
        {"id": case},
    )
    assert archived == count
    assert any(p.archived and p.month == Month(2019, 3) for p in list_partitions(session))
    # The case leaves the live cases with its month; its keys stay, and the archived rows keep
    # their keys to them (deleting the case's keys would cascade there).
    assert (
        session.scalar(sa.text("SELECT count(*) FROM incidents WHERE id = :id"), {"id": case}) == 0
    )
    archived_case = session.scalar(
        sa.text("SELECT md5(i::text) FROM archive.incidents_y2019m03 AS i WHERE id = :id"),
        {"id": case},
    )
    assert archived_case == case_row
    assert session.scalar(
        sa.text("SELECT count(*) FROM incident_keys WHERE id = :id"), {"id": case}
    )
    keys = session.scalars(
        sa.text(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = 'archive.incident_events_y2019m03'::regclass"
        )
    ).all()
    assert keys == ["incident_keys"]
    # A late event for the archived month waits in the default partition…
    session.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, data) "
            "VALUES (:id, :at, 'test', 'comment', '{}')"
        ),
        {"id": case, "at": datetime(2019, 3, 20, tzinfo=UTC)},
    )
    with pytest.raises(ConflictError, match="restore it first"):
        archive_before(session, Month(2019, 4))

    restored = {p.table: p for p in restore_month(session, Month(2019, 3))}

    # …and joins its month when the month comes back.
    assert restored["incident_events"].rows == count + 1
    assert restored["incidents"].rows == 1
    assert _partition_of(session, case) == {"incident_events_y2019m03"}
    session.execute(
        sa.text("DELETE FROM incident_events WHERE incident_id = :id AND action = 'comment'"),
        {"id": case},
    )
    assert session.scalar(sa.text(EVENT_ROWS), {"ids": [case]}) == before
    restored_case = session.execute(
        sa.text("SELECT tableoid::regclass::text, md5(i::text) FROM incidents AS i WHERE id = :id"),
        {"id": case},
    ).one()
    assert tuple(restored_case) == ("incidents_y2019m03", case_row)
    with pytest.raises(NotFoundError, match="not in the archive"):
        restore_month(session, Month(2019, 3))


def test_archive_refuses_months_with_open_cases_and_changes_nothing(
    session: Session, area: Area, settings: Settings
) -> None:
    case = _old_case(session, settings, status="in_progress")
    ensure_partitions(session, first=Month(2019, 3), last=Month(2019, 3))
    with pytest.raises(ConflictError, match=f"1 open case.*{case}"):
        archive_before(session, Month(2019, 4))
    assert _partition_of(session, case) == {"incident_events_y2019m03"}
    assert not any(p.archived for p in list_partitions(session))


def test_archive_refuses_events_named_by_open311_updates(
    session: Session, area: Area, settings: Settings
) -> None:
    case = _old_case(session, settings)
    event = session.execute(
        sa.text("SELECT id, at FROM incident_events WHERE incident_id = :id LIMIT 1"),
        {"id": case},
    ).one()
    session.execute(
        sa.text(
            "INSERT INTO open311_updates (client_update_id, incident_id, event_id, event_at, "
            "received_at) VALUES ('t-2', :case, :id, :at, now())"
        ),
        {"case": case, "id": event.id, "at": event.at},
    )
    with pytest.raises(ConflictError, match="Open311"):
        archive_before(session, Month(2019, 4))


def _plan(session: Session, sql: str, params: dict[str, object]) -> str:
    rows = session.execute(sa.text(f"EXPLAIN {sql}"), params).scalars()
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("table", "key"), [("incident_events", "at"), ("incidents", "reported_at")]
)
def test_a_period_query_reads_only_its_months(
    session: Session, demo: dict[str, object], table: str, key: str
) -> None:
    plan = _plan(
        session,
        f"SELECT count(*) FROM {table} WHERE {key} >= :start AND {key} < :end",
        {"start": Month(2026, 3).start, "end": Month(2026, 4).start},
    )
    scanned = {p.name for p in list_partitions(session) if p.name in plan}
    assert scanned == {f"{table}_y2026m03"}, plan


def test_exact_statistics_of_a_window_skip_the_months_before_it(
    session: Session, demo: dict[str, object]
) -> None:
    query = StatsQuery(Month(2026, 6).start, Month(2026, 7).start, as_of=Month(2026, 8).start)
    statement, params = case_figures_sql(query)
    plan = _plan(session, str(statement), params)
    names = {
        p.month: p.name
        for p in list_partitions(session)
        if p.month is not None and p.table == "incident_events"
    }
    history = [month for month in names if Month(2025, 12) <= month <= Month(2026, 10)]
    assert len(history) == 11, names  # the demo's year has its months
    read = {month for month in history if names[month] in plan}
    assert Month(2026, 6) in read and Month(2026, 7) in read
    assert not {month for month in read if month < Month(2026, 6)}, plan


def test_moving_an_event_to_another_month_carries_the_open311_update_with_it(
    session: Session, area: Area, settings: Settings
) -> None:
    """The log's repair may move an event's time (out-of-order repair): across months it
    changes partition, and the Open311 update naming it follows."""
    case = _old_case(session, settings)
    ensure_partitions(session, first=Month(2019, 2), last=Month(2019, 3))
    event = session.execute(
        sa.text("SELECT id, at FROM incident_events WHERE incident_id = :id LIMIT 1"),
        {"id": case},
    ).one()
    session.execute(
        sa.text(
            "INSERT INTO open311_updates (client_update_id, incident_id, event_id, event_at, "
            "received_at) VALUES ('t-3', :case, :id, :at, now())"
        ),
        {"case": case, "id": event.id, "at": event.at},
    )
    earlier = datetime(2019, 2, 20, tzinfo=UTC)
    session.execute(
        sa.text("UPDATE incident_events SET at = :at WHERE id = :id"),
        {"at": earlier, "id": event.id},
    )
    moved = session.execute(
        sa.text("SELECT tableoid::regclass::text, at FROM incident_events WHERE id = :id"),
        {"id": event.id},
    ).one()
    assert moved == ("incident_events_y2019m02", earlier)
    assert (
        session.scalar(
            sa.text("SELECT event_at FROM open311_updates WHERE client_update_id = 't-3'")
        )
        == earlier
    )


def _case_partition(session: Session, incident_id: int) -> str | None:
    return session.scalar(
        sa.text("SELECT tableoid::regclass::text FROM incidents WHERE id = :id"),
        {"id": incident_id},
    )


def _keys(session: Session, incident_id: int) -> tuple[datetime, str | None] | None:
    row = session.execute(
        sa.text("SELECT reported_at, idempotency_key FROM incident_keys WHERE id = :id"),
        {"id": incident_id},
    ).one_or_none()
    return None if row is None else (row.reported_at, row.idempotency_key)


def test_a_case_keeps_its_keys_when_it_changes_month_and_loses_them_when_deleted(
    session: Session, area: Area, settings: Settings
) -> None:
    case = report_incident(
        session, make_report(110.015, 30.005), settings=settings, now=OLD, idempotency_key="k-1"
    ).incident.id
    assert _case_partition(session, case) == "incidents_default"
    assert _keys(session, case) == (OLD, "k-1")
    assert ensure_partitions(session, first=Month(2019, 2), last=Month(2019, 3)) == [
        Month(2019, 2),
        Month(2019, 3),
    ]
    assert _case_partition(session, case) == "incidents_y2019m03"
    events = session.scalar(sa.text(EVENT_ROWS), {"ids": [case]})

    # A report time corrected into February moves the row; its keys follow, its events stay.
    earlier = datetime(2019, 2, 27, tzinfo=UTC)
    session.execute(
        sa.text("UPDATE incidents SET reported_at = :at WHERE id = :id"),
        {"at": earlier, "id": case},
    )
    assert _case_partition(session, case) == "incidents_y2019m02"
    assert _keys(session, case) == (earlier, "k-1")
    assert session.scalar(sa.text(EVENT_ROWS), {"ids": [case]}) == events

    # Another writer's case with the same idempotency key is refused, as before partitioning.
    with (
        pytest.raises(sa.exc.IntegrityError, match="uq_incident_keys_idempotency_key"),
        session.begin_nested(),
    ):
        session.execute(
            sa.text(
                "INSERT INTO incidents (category_code, platform, status, description, "
                "reporter_kind, photos, geom, source_crs, source_lon, source_lat, "
                "location_quality, reported_at, updated_at, idempotency_key) "
                "SELECT category_code, platform, status, description, reporter_kind, "
                "photos, geom, source_crs, source_lon, source_lat, location_quality, "
                "reported_at, updated_at, idempotency_key FROM incidents WHERE id = :id"
            ),
            {"id": case},
        )

    # Deleting the case deletes its keys, and with them what pointed at it (its events).
    session.execute(sa.text("DELETE FROM incidents WHERE id = :id"), {"id": case})
    assert _keys(session, case) is None
    assert (
        session.scalar(
            sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :id"), {"id": case}
        )
        == 0
    )


def test_a_case_read_by_id_reads_one_month(session: Session, demo: dict[str, object]) -> None:
    """``GET /incidents/{id}``'s reply finds the case's month in ``incident_keys`` first: every
    other month's partition is pruned while the query runs (never executed)."""
    from gis.services.intake import _BY_ID_SQL

    case = session.scalar(
        sa.text("SELECT id FROM incidents WHERE reported_at >= :t ORDER BY id LIMIT 1"),
        {"t": Month(2026, 5).start},
    )
    rows = session.execute(
        sa.text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {_BY_ID_SQL.text}"),
        {"incident_id": case, "dup_radius_m": 100.0, "dup_window_s": 3600.0},
    ).scalars()
    lines = [line for line in rows if " on incidents_" in line]
    read = {line.split(" on ")[1].split()[0] for line in lines if "never executed" not in line}
    month = _case_partition(session, case)
    assert month is not None and month in read, lines
    # The duplicate search reads the hour before the report: its month (and maybe the one
    # before, at a month's first hour), never the whole year.
    assert len(read) <= 2, read


def test_the_live_feed_finds_the_cases_of_events_in_any_month(
    session: Session, area: Area, settings: Settings
) -> None:
    """The live feed's trigger reads only the months of the cases a statement's events belong
    to (migration 0023): one statement with events of a 2019 case and of a case of now still
    publishes one row for each, with each case's own data."""
    old = _old_case(session, settings)
    new = report_incident(session, make_report(110.016, 30.006), settings=settings).incident.id
    assert _case_partition(session, old) == "incidents_default"
    assert _case_partition(session, new) != "incidents_default"
    last = session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events"))
    session.execute(
        sa.text(
            "INSERT INTO incident_events (incident_id, at, actor, action, data) "
            "SELECT id, now(), 'test', 'comment', '{}' FROM incidents WHERE id IN (:a, :b)"
        ),
        {"a": old, "b": new},
    )
    published = session.execute(
        sa.text(
            "SELECT incident_id, data ->> 'status' FROM live_events WHERE id > :last "
            "ORDER BY incident_id"
        ),
        {"last": last},
    ).all()
    statuses = dict(
        session.execute(
            sa.text("SELECT id, status FROM incidents WHERE id IN (:a, :b)"), {"a": old, "b": new}
        ).all()
    )
    assert [tuple(row) for row in published] == sorted(statuses.items())


def test_years_of_months_do_not_get_a_read_by_id_jit_compiled(
    session: Session, demo: dict[str, object]
) -> None:
    """A cached plan of a read by id names every month, and PostgreSQL decides to JIT-compile
    on the plan's estimated cost, which counts every month (pruned or not): with five more years
    attached, ``jit = on`` (PostgreSQL's default) compiles it on every call (measured: 1.2 s for
    a 1.8 ms read). The service's connections run with ``jit = off`` (``GIS_DB_JIT``)."""
    from gis.db_async import compile_for_asyncpg
    from gis.services.intake import _BY_ID_SQL

    oldest = min(
        p.month
        for p in list_partitions(session)
        if p.table == CASE_MONTHS.name and p.month is not None
    )
    ensure_partitions(session, first=oldest.plus(-60), last=oldest.plus(-1))
    case = session.scalar(sa.text("SELECT id FROM incidents ORDER BY id LIMIT 1"))
    sql, names = compile_for_asyncpg(_BY_ID_SQL)
    values = {"incident_id": case, "dup_radius_m": 100.0, "dup_window_s": 3600.0}
    execute = f"EXECUTE by_id({', '.join(repr(values[name]) for name in names)})"
    # The cached (generic) plan, as a connection has it after a few reads; whether to compile
    # is decided when it is planned.
    session.execute(sa.text("SET LOCAL plan_cache_mode = force_generic_plan"))

    def compiled() -> bool:
        session.execute(sa.text(f"PREPARE by_id AS {sql}"))
        try:
            plan = session.scalar(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}"))
        finally:
            session.execute(sa.text("DEALLOCATE by_id"))
        return "JIT" in plan[0]

    assert session.scalar(sa.text("SHOW jit")) == "off"
    assert not compiled()
    session.execute(sa.text("SET LOCAL jit = on"))  # PostgreSQL's default
    assert compiled()
