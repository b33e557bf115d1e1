"""Closure statistics of the four platforms, computed in SQL from the event log.

Definitions (docs/workflow.md has them with examples). The cohort is the cases *received* in
``[start, end)`` — their ``report`` event, whose time intake also writes to
``incidents.reported_at`` in the same statement, which is what the window filters on so that a
month's table reads one month of events. Every outcome is read from the events at or before
``as_of``:

- received: cases in the cohort; cancelled, duplicate: their ``cancel`` / ``mark_duplicate``
  event happened; valid = received − cancelled − duplicate.
- closed: the last ``close`` is later than the last ``reopen`` (or there is none).
- closure_rate (办结率) = closed / valid.
- on_time (按期办结): closed, and the last close is at or before the deadline in force then —
  the ``due_at`` of the last ``extend`` before it, else the original deadline.
  on_time_rate (按期办结率) = on_time / closed.
- rework_rate (返工率) = cases with a ``return`` or ``reopen`` / cases resolved at least once.
- extension_rate = cases with an ``extend`` / valid.
- overdue_open: active at ``as_of`` (``gis.layers.incidents``: valid, neither closed nor
  awaiting verification — resolved after the last return) and past the deadline in force then.
- hours_to_close (median, p90): from the report to the last close, over closed cases.

Grouping attributes (platform, town, unit…) are the case's current ones: a reassigned case
counts for the unit that has it now.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ConflictError, ValidationError
from gis.layers.base import LOCAL_TZ, LOCAL_TZ_SQL
from gis.layers.categories import PLATFORM_NAMES_ZH, Platform, parse_platform

# Grouping dimensions: name → SQL expression over the ``facts`` CTE.
# A whitelist: only these identifiers ever reach the SQL text.
DIMENSIONS: Mapping[str, str] = {
    "platform": "platform",
    "town": "town_code",
    "village": "village_code",
    "grid": "grid_code",
    "unit": "unit_id",
    "member": "member_id",
    "category": "category_code",
    # Calendar periods in China Standard Time (weeks start on Monday), columns of ``facts``.
    "day": "reported_day",
    "week": "reported_week",
    "month": "reported_month",
}
# The name each dimension's column takes in the result: the ``facts`` column, except the
# calendar periods, which drop the ``reported_`` prefix.
DIMENSION_COLUMNS: Mapping[str, str] = {
    name: expression.removeprefix("reported_") for name, expression in DIMENSIONS.items()
}
METRICS = (
    "received",
    "cancelled",
    "duplicate",
    "valid",
    "closed",
    "closure_rate",
    "closed_on_time",
    "on_time_rate",
    "resolved_ever",
    "reworked",
    "rework_rate",
    "extended",
    "extension_rate",
    "reassigned",
    "escalated",
    "overdue_open",
    "median_hours_to_close",
    "p90_hours_to_close",
)


def _fact_columns(case: str) -> str:
    """The derived columns of a case's facts (calendar periods, outcomes, the deadline in force)
    over the case alias ``case`` and the event CTEs ``cl``, ``rs``, ``r``, ``le``, ``fe``: one
    definition for the exact figures and the stored facts."""
    return f"""({case}.reported_at AT TIME ZONE {LOCAL_TZ_SQL})::date AS reported_day,
       date_trunc('week', {case}.reported_at AT TIME ZONE {LOCAL_TZ_SQL})::date AS reported_week,
       date_trunc('month', {case}.reported_at AT TIME ZONE {LOCAL_TZ_SQL})::date AS reported_month,
       CASE WHEN cl.last_close IS NOT NULL
                 AND (r.last_reopen IS NULL OR r.last_reopen < cl.last_close)
            THEN extract(epoch FROM cl.last_close - {case}.reported_at) / 3600 END
           AS hours_to_close,
       cl.last_close, rs.last_resolve, r.last_return,
       COALESCE(r.cancelled, false) AS cancelled,
       COALESCE(r.duplicate, false) AS duplicate,
       COALESCE(r.extended, false) AS extended,
       COALESCE(r.reassigned, false) AS reassigned,
       COALESCE(r.escalated, false) AS escalated,
       COALESCE(r.reworked, false) AS reworked,
       cl.last_close IS NOT NULL
           AND (r.last_reopen IS NULL OR r.last_reopen < cl.last_close) AS is_closed,
       NOT COALESCE(r.cancelled OR r.duplicate, false) AS is_valid,
       rs.last_resolve IS NOT NULL AS was_resolved,
       COALESCE(le.due_at, fe.original_due_at, {case}.due_at) AS due_in_force"""


def _fact_joins(case: str) -> str:
    """The event CTEs that ``_fact_columns`` reads, joined to the case alias ``case``."""
    return "\n".join(
        f"LEFT JOIN {cte} AS {alias} ON {alias}.incident_id = {case}.id"
        for cte, alias in (
            ("closes", "cl"),
            ("resolves", "rs"),
            ("rare", "r"),
            ("last_extension", "le"),
            ("first_extension", "fe"),
        )
    )


# What the rare events of a case say (rework, cancel, duplicate, extension, reassignment,
# escalation): one definition for the exact figures and the stored facts' refresh.
_RARE_FLAGS = """max(at) FILTER (WHERE action = 'reopen') AS last_reopen,
           max(at) FILTER (WHERE action IN ('return', 'reopen')) AS last_return,
           bool_or(action = 'cancel') AS cancelled,
           bool_or(action = 'mark_duplicate') AS duplicate,
           bool_or(action = 'extend') AS extended,
           bool_or(action = 'reassign') AS reassigned,
           bool_or(action = 'escalate') AS escalated,
           bool_or(action IN ('return', 'reopen')) AS reworked"""
_RARE_ACTIONS = "('reopen', 'return', 'cancel', 'mark_duplicate', 'extend', 'reassign', 'escalate')"


def _with_rare(sql: str) -> str:
    """``sql`` with its ``{rare_flags}`` and ``{rare_actions}`` filled in."""
    return sql.replace("{rare_flags}", _RARE_FLAGS).replace("{rare_actions}", _RARE_ACTIONS)


_EXACT_FACTS_SQL = """
WITH cases AS (
    SELECT i.id, i.platform, i.town_code, i.village_code, i.grid_code, i.unit_id, i.member_id,
           i.category_code, i.reported_at, i.due_at
    FROM incidents AS i
    WHERE i.reported_at >= :start AND i.reported_at < :end AND i.reported_at <= :as_of
          {case_filters}
), closes AS (
    -- Read per action through the (action, incident_id, at) index: only the events that
    -- decide an outcome, not the report/assign/accept/start that every case has. For a small
    -- cohort (a town) they are limited to its cases: index probes instead of a scan.
    SELECT incident_id, max(at) AS last_close FROM incident_events
    WHERE action = 'close' AND at >= :start AND at <= :as_of
      {cohort}
    GROUP BY incident_id
), resolves AS (
    SELECT incident_id, max(at) AS last_resolve FROM incident_events
    WHERE action = 'resolve' AND at >= :start AND at <= :as_of
      {cohort}
    GROUP BY incident_id
), rare AS (
    SELECT incident_id,
           {rare_flags}
    FROM incident_events
    WHERE action IN {rare_actions}
      AND at >= :start AND at <= :as_of {cohort}
    GROUP BY incident_id
), last_extension AS (
    SELECT DISTINCT ON (incident_id) incident_id, (data ->> 'due_at')::timestamptz AS due_at
    FROM incident_events
    WHERE action = 'extend' AND at >= :start AND at <= :as_of
      {cohort}
    ORDER BY incident_id, at DESC, id DESC
), first_extension AS (
    SELECT DISTINCT ON (incident_id) incident_id,
           (data ->> 'previous_due_at')::timestamptz AS original_due_at
    FROM incident_events
    WHERE action = 'extend' AND at >= :start {cohort}
    ORDER BY incident_id, at, id
), facts AS (
    SELECT c.*,
           {fact_columns}
    FROM cases AS c
    {fact_joins}
)
""".replace("{fact_columns}", _fact_columns("c")).replace("{fact_joins}", _fact_joins("c"))
_EXACT_FACTS_SQL = _with_rare(_EXACT_FACTS_SQL)

# The same facts as of the last refresh (migration 0005b), for the default "as of now" figures.
_STORED_FACTS_SQL = """
WITH facts AS (
    SELECT * FROM incident_facts AS i
    WHERE i.reported_at >= :start AND i.reported_at < :end {case_filters}
)
"""

_FIGURES_SQL = """
SELECT {dimensions}
       count(*) AS received,
       count(*) FILTER (WHERE cancelled) AS cancelled,
       count(*) FILTER (WHERE duplicate) AS duplicate,
       count(*) FILTER (WHERE is_valid) AS valid,
       count(*) FILTER (WHERE is_closed) AS closed,
       count(*) FILTER (WHERE is_closed AND last_close <= due_in_force) AS closed_on_time,
       count(*) FILTER (WHERE is_valid AND was_resolved) AS resolved_ever,
       count(*) FILTER (WHERE is_valid AND was_resolved AND reworked) AS reworked,
       count(*) FILTER (WHERE is_valid AND extended) AS extended,
       count(*) FILTER (WHERE is_valid AND reassigned) AS reassigned,
       count(*) FILTER (WHERE is_valid AND escalated) AS escalated,
       count(*) FILTER (
           WHERE is_valid AND NOT is_closed
             AND NOT (last_resolve IS NOT NULL
                      AND (last_return IS NULL OR last_return < last_resolve))
             AND due_in_force < :as_of
       ) AS overdue_open,
       -- One sort per group for both percentiles; hours_to_close is null unless closed.
       percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY hours_to_close)
           AS hours_to_close_percentiles
FROM facts
{group_by}
{order_by}
"""


@dataclass(frozen=True)
class StatsQuery:
    """What to count: the cohort window, the clock of the outcomes, filters and grouping."""

    start: datetime
    end: datetime
    # None: as of the last refresh of the stored facts (fast); a time: exact, from the events.
    as_of: datetime | None
    group_by: tuple[str, ...] = ()
    town_codes: tuple[str, ...] | None = None  # None: every town
    platform: str | None = None
    category: str | None = None
    # Also one row over all the groups (``is_total`` true, dimensions null): the same pass.
    with_total: bool = False


def _group_names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The names of ``"town,month"`` (or a list), blanks dropped; the caller checks them."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else list(text)
    return tuple(part.strip() for part in parts if part.strip())


def parse_group_by(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Grouping dimensions from ``"town,month"`` (or a list), checked against the whitelist."""
    names = _group_names(text)
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        raise ValidationError(
            f"unknown grouping {', '.join(unknown)}; group by any of: {', '.join(DIMENSIONS)}"
        )
    if len(set(names)) != len(names):
        raise ValidationError("each grouping may appear once")
    return names


def _check_window(start: datetime, end: datetime, as_of: datetime | None = None) -> None:
    """A window of aware times that is not empty, or ``ValidationError``."""
    for name, moment in (("start", start), ("end", end), ("as_of", as_of)):
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise ValidationError(f"{name} {moment.isoformat()} has no time zone; add +08:00 or Z")
    if end <= start:
        raise ValidationError("the window is empty: 'to' must be after 'from'")


def _case_filters(query: StatsQuery) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions on ``incidents AS i`` for the query's filters, and their parameters."""
    filters: list[str] = []
    params: dict[str, Any] = {}
    if query.town_codes is not None:
        filters.append("AND i.town_code = ANY(:towns)")
        params["towns"] = list(query.town_codes)
    if query.platform is not None:
        filters.append("AND i.platform = :platform")
        params["platform"] = query.platform
    if query.category is not None:
        filters.append("AND i.category_code = :category")
        params["category"] = query.category
    return filters, params


def case_figures_sql(
    query: StatsQuery, *, refreshed_at: datetime | None = None, small_cohort: bool = False
) -> tuple[sa.TextClause, dict[str, Any]]:
    """The SQL and parameters of ``case_figures``: exact from the events when the query has an
    ``as_of``, else from the stored facts refreshed at ``refreshed_at``. ``small_cohort`` reads
    the events case by case instead of by scanning each deciding action."""
    _check_window(query.start, query.end, query.as_of)
    parse_platform(query.platform)
    as_of = query.as_of if query.as_of is not None else refreshed_at
    if as_of is None:
        raise ValidationError("give as_of, or refresh the stored facts first (gis stats refresh)")
    params: dict[str, Any] = {"start": query.start, "end": query.end, "as_of": as_of}
    filters, filter_params = _case_filters(query)
    params.update(filter_params)
    columns = [DIMENSION_COLUMNS[name] for name in query.group_by]
    dimensions = "".join(
        f"{DIMENSIONS[name]} AS {DIMENSION_COLUMNS[name]}, " for name in query.group_by
    )
    positions = ", ".join(str(i + 1) for i in range(len(columns)))
    group_by = f"GROUP BY {positions}" if columns else ""
    if columns and query.with_total:
        grouped = ", ".join(DIMENSIONS[name] for name in query.group_by)
        dimensions += f"GROUPING({grouped}) <> 0 AS is_total, "
        group_by = f"GROUP BY GROUPING SETS (({grouped}), ())"
    facts = _EXACT_FACTS_SQL if query.as_of is not None else _STORED_FACTS_SQL
    text = (facts + _FIGURES_SQL).format(
        case_filters=" ".join(filters),
        cohort="AND incident_id IN (SELECT id FROM cases)" if small_cohort else "",
        dimensions=dimensions,
        group_by=group_by,
        order_by=f"ORDER BY {positions}" if columns else "",
    )
    return sa.text(text), params


def last_refresh(session: Session) -> datetime | None:
    """When the stored facts (``incident_facts``) were last refreshed from the events."""
    return session.scalar(
        sa.text("SELECT refreshed_at FROM stats_refreshes WHERE name = 'incident_facts'")
    )


# The stored facts of some cases as of :cutoff: every event at or before it, none after
# (DESIGN: statistics come from the event log). The rule of migration 0009's view, kept here
# since 0012 made the facts a table refreshed case by case. ``{cases}`` / ``{events}``: the
# restriction to the changed cases (empty for a full refresh).
_STORED_FACTS_REFRESH_SQL = """
INSERT INTO incident_facts
WITH events AS NOT MATERIALIZED (
    -- Inlined into each reader below, so each keeps its own index scan.
    SELECT incident_id, at, action, data, id FROM incident_events
    WHERE at <= :cutoff {events}
), closes AS (
    SELECT incident_id, max(at) AS last_close FROM events
    WHERE action = 'close' GROUP BY incident_id
), resolves AS (
    SELECT incident_id, max(at) AS last_resolve FROM events
    WHERE action = 'resolve' GROUP BY incident_id
), rare AS (
    SELECT incident_id,
           {rare_flags}
    FROM events
    WHERE action IN {rare_actions}
    GROUP BY incident_id
), last_extension AS (
    SELECT DISTINCT ON (incident_id) incident_id, (data ->> 'due_at')::timestamptz AS due_at
    FROM events WHERE action = 'extend'
    ORDER BY incident_id, at DESC, id DESC
), first_extension AS (
    -- The deadline before any extension, even one after the cutoff (as the exact query does).
    SELECT DISTINCT ON (incident_id) incident_id,
           (data ->> 'previous_due_at')::timestamptz AS original_due_at
    FROM incident_events WHERE action = 'extend' {events}
    ORDER BY incident_id, at, id
)
SELECT i.id AS incident_id, i.platform, i.town_code, i.village_code, i.grid_code, i.unit_id,
       i.member_id, i.category_code, i.reported_at,
       {fact_columns}
FROM incidents AS i
{fact_joins}
-- A case reported after the cutoff is not in the facts (the exact query leaves it out too).
WHERE i.reported_at <= :cutoff {cases}
{order}
""".replace("{fact_columns}", _fact_columns("i")).replace("{fact_joins}", _fact_joins("i"))
_STORED_FACTS_REFRESH_SQL = _with_rare(_STORED_FACTS_REFRESH_SQL)
# One refresh at a time, across processes and hosts: a transaction-level advisory lock.
REFRESH_LOCK = (2026, 20)
# How long a refresh waits for the transactions writing events when it starts to finish, so
# that every id up to its watermark is final (seconds); past it, the watermark stays put.
SETTLE_TIMEOUT_S = 10.0


class RefreshBusyError(ConflictError):
    """Another statistics refresh is running (``gis stats refresh`` exits with code 3)."""

    code = "refresh_running"


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: as of when, full or incremental, how many cases and towns×months."""

    refreshed_at: datetime
    mode: str
    cases: int
    town_months: int
    events_watermark: int | None
    waited_s: float


def _settled_watermark(session: Session, table: str, timeout_s: float) -> tuple[int, bool]:
    """The highest id of ``table`` (``incident_events`` or ``incidents``) such that every row
    with an id at or below it is committed or rolled back, once the transactions writing the
    table when this started have ended (waited for up to ``timeout_s``); and whether they did.

    A row's id is drawn after its writer locks the table (RowExclusiveLock), so reading the
    sequence first and the lock holders second finds every writer that can still commit an id
    at or below it. Intake is never blocked: this only watches ``pg_locks``."""
    sequence = session.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    last, called = session.execute(
        sa.text(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 -- catalog name
    ).one()
    high = int(last) if called else int(last) - 1
    holders = """
        SELECT DISTINCT virtualtransaction FROM pg_locks
         WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND granted
           AND pid <> pg_backend_pid()
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND relation IN (SELECT CAST(:t AS regclass) UNION ALL
                            SELECT inhrelid FROM pg_inherits
                             WHERE inhparent = CAST(:t AS regclass))
    """
    writers = set(session.scalars(sa.text(holders), {"t": table}))
    deadline = time.monotonic() + timeout_s
    while writers:
        writers &= set(session.scalars(sa.text(holders), {"t": table}))
        if not writers:
            break
        if time.monotonic() > deadline:
            return high, False
        time.sleep(0.05)
    return high, True


def refresh_facts(
    session: Session,
    *,
    full: bool = False,
    wait: bool = True,
    settle_timeout_s: float = SETTLE_TIMEOUT_S,
) -> RefreshResult:
    """Bring the stored facts up to now; never commits (the caller's transaction holds the lock).

    Incremental by default: only the cases with an event or a report newer than the last
    refresh's watermarks (and those left pending because an event was dated after its cutoff)
    are recomputed; the others' facts cannot have changed. ``full`` (or no watermark yet)
    recomputes every case, in the town × month order that keeps the table fast to read (readers
    wait meanwhile). The cutoff is taken first: the facts count the events at or before it.

    One refresh at a time: a second one waits for the first (``wait``) or raises
    ``RefreshBusyError`` at once.
    """
    started = time.perf_counter()
    if wait:
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
            dict(zip("ab", REFRESH_LOCK, strict=True)),
        )
    elif not session.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
        dict(zip("ab", REFRESH_LOCK, strict=True)),
    ):
        raise RefreshBusyError(
            "a statistics refresh is running; try again when it ends (or --wait)"
        )
    waited = time.perf_counter() - started
    stamp: datetime = session.scalar(sa.text("SELECT clock_timestamp()"))
    previous = session.execute(
        sa.text(
            "SELECT events_watermark, incidents_watermark FROM stats_refreshes "
            "WHERE name = 'incident_facts'"
        )
    ).first()
    events_high, events_settled = _settled_watermark(session, "incident_events", settle_timeout_s)
    cases_high, cases_settled = _settled_watermark(session, "incidents", settle_timeout_s)
    session.execute(sa.text("SET LOCAL jit = off"))
    session.execute(sa.text("SELECT set_config('work_mem', '256MB', true)"))
    incremental = not full and previous is not None and None not in tuple(previous)
    params: dict[str, Any] = {"cutoff": stamp}
    if incremental:
        assert previous is not None
        params.update(
            prev_events=previous[0], events_high=events_high,
            prev_cases=previous[1], cases_high=cases_high,
        )  # fmt: skip
        session.execute(sa.text("DROP TABLE IF EXISTS facts_changed"))
        session.execute(
            sa.text(
                """
                CREATE TEMP TABLE facts_changed ON COMMIT DROP AS
                SELECT incident_id FROM incident_events
                 WHERE id > :prev_events AND id <= :events_high
                UNION
                SELECT id FROM incidents WHERE id > :prev_cases AND id <= :cases_high
                UNION
                SELECT incident_id FROM stats_refresh_pending
                """
            ),
            params,
        )
        session.execute(sa.text("ALTER TABLE facts_changed ADD PRIMARY KEY (incident_id)"))
        session.execute(sa.text("ANALYZE facts_changed"))
        town_months = int(
            session.scalar(
                sa.text(
                    "SELECT count(*) FROM (SELECT DISTINCT i.town_code, date_trunc('month', "  # noqa: S608
                    f"i.reported_at AT TIME ZONE {LOCAL_TZ_SQL}) FROM incidents i "
                    "WHERE i.id = ANY(ARRAY(SELECT incident_id FROM facts_changed))) t"
                )
            )
            or 0
        )
        session.execute(
            sa.text(
                "DELETE FROM incident_facts "
                "WHERE incident_id = ANY(ARRAY(SELECT incident_id FROM facts_changed))"
            )
        )
        # An array, not IN (subquery): index probes per changed case on both tables, where
        # the planner hashed the subquery against a scan of every case or extension.
        only = "= ANY(ARRAY(SELECT incident_id FROM facts_changed))"
        session.execute(
            sa.text(
                _STORED_FACTS_REFRESH_SQL.format(
                    events=f"AND incident_id {only}", cases=f"AND i.id {only}", order=""
                )
            ),
            params,
        )
        cases = int(session.scalar(sa.text("SELECT count(*) FROM facts_changed")) or 0)
        pending_from = "facts_changed AS c"
    else:
        session.execute(sa.text("TRUNCATE incident_facts"))
        session.execute(
            sa.text(
                _STORED_FACTS_REFRESH_SQL.format(
                    events="", cases="", order="ORDER BY i.town_code, reported_month, i.platform"
                )
            ),
            params,
        )
        cases = int(session.scalar(sa.text("SELECT count(*) FROM incident_facts")) or 0)
        town_months = int(
            session.scalar(
                sa.text(
                    "SELECT count(*) FROM (SELECT DISTINCT town_code, reported_month "
                    "FROM incident_facts) t"
                )
            )
            or 0
        )
        pending_from = (
            "(SELECT DISTINCT incident_id FROM incident_events WHERE at > :cutoff "
            "UNION SELECT id FROM incidents WHERE reported_at > :cutoff) AS c"
        )
    # The cases with an event (or a report) dated after the cutoff: recomputed next time.
    session.execute(sa.text("DELETE FROM stats_refresh_pending"))
    session.execute(
        sa.text(
            f"""
            INSERT INTO stats_refresh_pending (incident_id)
            SELECT c.incident_id FROM {pending_from}
             WHERE EXISTS (SELECT 1 FROM incident_events e
                            WHERE e.incident_id = c.incident_id AND e.at > :cutoff)
                OR EXISTS (SELECT 1 FROM incidents i
                            WHERE i.id = c.incident_id AND i.reported_at > :cutoff)
            ON CONFLICT DO NOTHING
            """  # noqa: S608 -- module constants only
        ),
        params,
    )
    # A watermark moves only when every id up to it is final; else the next refresh redoes
    # the same ids (recomputing a case is idempotent).
    keep_events = previous[0] if (incremental and previous and not events_settled) else events_high
    keep_cases = previous[1] if (incremental and previous and not cases_settled) else cases_high
    if not incremental and not (events_settled and cases_settled):
        keep_events = keep_cases = None
    session.execute(
        sa.text(
            "INSERT INTO stats_refreshes (name, refreshed_at, events_watermark, "
            "incidents_watermark) VALUES ('incident_facts', :at, :ev, :inc) "
            "ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at, "
            "events_watermark = excluded.events_watermark, "
            "incidents_watermark = excluded.incidents_watermark"
        ),
        {"at": stamp, "ev": keep_events, "inc": keep_cases},
    )
    return RefreshResult(
        refreshed_at=stamp,
        mode="incremental" if incremental else "full",
        cases=cases,
        town_months=town_months,
        events_watermark=keep_events,
        waited_s=waited,
    )


def default_start(end: datetime) -> datetime:
    """Where a window without a start begins: 1 January (China Standard Time) of ``end``'s
    year, or the day before ``end`` when ``end`` is that very instant (never an empty window)."""
    start = datetime(end.astimezone(LOCAL_TZ).year, 1, 1, tzinfo=LOCAL_TZ)
    return start if start < end else end - timedelta(days=1)


def choose_as_of(
    session: Session, requested: datetime | None, *, now: datetime, stale_after: timedelta
) -> datetime | None:
    """The ``as_of`` to query with: the requested time; else ``None`` (the stored facts) when
    they are fresher than ``stale_after``; else ``now`` (exact, slower, never silently stale)."""
    if requested is not None:
        return requested
    refreshed = last_refresh(session)
    if refreshed is None or refreshed < now - stale_after:
        return now
    return None


def figures_as_of(session: Session, query: StatsQuery) -> datetime:
    """The time the figures of ``query`` are as of: its ``as_of`` or the last refresh."""
    if query.as_of is not None:
        return query.as_of
    refreshed = last_refresh(session)
    if refreshed is None:
        raise ValidationError("the stored facts were never refreshed: run gis stats refresh")
    return refreshed


# Up to this many cases, probing the events case by case beats scanning every close and resolve
# after the window start (at 1M cases: one town's year 11 s → 2 s; the whole county 7 s → 97 s).
SMALL_COHORT = 50_000


def _cohort_size(session: Session, query: StatsQuery) -> int:
    """How many cases the query's window and filters select (cheap: the incidents' indexes)."""
    filters, params = _case_filters(query)
    sql = (
        "SELECT count(*) FROM incidents AS i WHERE i.reported_at >= :start AND i.reported_at < :end"
    )
    params.update(start=query.start, end=query.end)
    return int(session.scalar(sa.text(f"{sql} {' '.join(filters)}"), params) or 0)


def case_figures(session: Session, query: StatsQuery) -> list[dict[str, Any]]:
    """One row per group: the dimensions, then every figure of ``METRICS``."""
    refreshed = None if query.as_of is not None else figures_as_of(session, query)
    small = query.as_of is not None and _cohort_size(session, query) <= SMALL_COHORT
    statement, params = case_figures_sql(query, refreshed_at=refreshed, small_cohort=small)
    # JIT compilation costs ~2 s on this aggregate and saves far less: off for this transaction.
    session.execute(sa.text("SET LOCAL jit = off"))
    rows = []
    for row in session.execute(statement, params).mappings():
        out = dict(row)
        out["closure_rate"] = _ratio(out["closed"], out["valid"])
        out["on_time_rate"] = _ratio(out["closed_on_time"], out["closed"])
        out["rework_rate"] = _ratio(out["reworked"], out["resolved_ever"])
        out["extension_rate"] = _ratio(out["extended"], out["valid"])
        median, p90 = out.pop("hours_to_close_percentiles") or (None, None)
        out["median_hours_to_close"] = None if median is None else round(float(median), 2)
        out["p90_hours_to_close"] = None if p90 is None else round(float(p90), 2)
        rows.append(out)
    return rows


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if not denominator else round(numerator / denominator, 4)


# The figures published per town and per grid (the towns' sentences, the command-room map),
# and the columns of those tables.
AREA_FIGURES = ("received", "closed", "closure_rate", "on_time_rate", "overdue_open")
GRID_COLUMNS = ("grid_code", *AREA_FIGURES)
TOWN_COLUMNS = ("town_code", "town_name", *AREA_FIGURES, "summary")


def grid_figures(session: Session, query: StatsQuery) -> list[dict[str, Any]]:
    """Per-grid rows of ``query``'s cases (grouped by grid whatever it asks) for the
    command-room choropleth: ``GRID_COLUMNS`` (cases outside every grid are left out)."""
    rows = case_figures(session, replace(query, group_by=("grid",), with_total=False))
    return [{key: row[key] for key in GRID_COLUMNS} for row in rows if row["grid_code"] is not None]


def town_summaries(session: Session, query: StatsQuery) -> list[dict[str, Any]]:
    """Per-town figures of ``query``'s cases (grouped by town whatever it asks) with the
    sentence towns publish ("受理 7,766 件，办结率 99.8%")."""
    rows = case_figures(session, replace(query, group_by=("town",), with_total=False))
    codes = [row["town_code"] for row in rows if row["town_code"] is not None]
    names: dict[str, str] = dict(
        session.execute(
            sa.text("SELECT code, name FROM regions WHERE code = ANY(:codes)"), {"codes": codes}
        ).all()
    )
    out = []
    for row in rows:
        name = names.get(row["town_code"], "未归属乡镇")
        out.append(
            {
                "town_code": row["town_code"],
                "town_name": name,
                **{key: row[key] for key in AREA_FIGURES},
                "summary": town_sentence(name, row),
            }
        )
    return out


def town_sentence(name: str, row: Mapping[str, Any]) -> str:
    """ "甲镇：受理 7,766 件，办结 7,750 件，办结率 99.8%，按期办结率 97.2%"."""
    parts = [f"{name}：受理 {row['received']:,} 件", f"办结 {row['closed']:,} 件"]
    if row["closure_rate"] is not None:
        parts.append(f"办结率 {row['closure_rate'] * 100:.1f}%")
    if row["on_time_rate"] is not None:
        parts.append(f"按期办结率 {row['on_time_rate'] * 100:.1f}%")
    return "，".join(parts)


def platform_label(platform: str) -> str:
    """The Chinese name of a platform key, or the key itself."""
    try:
        return PLATFORM_NAMES_ZH[Platform(platform)]
    except ValueError:
        return platform


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV text with a header line (UTF-8, opens in spreadsheet programs)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return buffer.getvalue()


# Errands (跑小二): grouping dimensions over the ``facts`` CTE below.
_ERRAND_LOCAL = f"(requested_at AT TIME ZONE {LOCAL_TZ_SQL})"
ERRAND_DIMENSIONS: Mapping[str, tuple[str, str]] = {
    "town": ("town_code", "town_code"),
    "village": ("village_code", "village_code"),
    "grid": ("grid_code", "grid_code"),
    "member": ("member_id", "member_id"),
    "service": ("service_code", "service_code"),
    "day": (f"date_trunc('day', {_ERRAND_LOCAL})::date", "day"),
    "week": (f"date_trunc('week', {_ERRAND_LOCAL})::date", "week"),
    "month": (f"date_trunc('month', {_ERRAND_LOCAL})::date", "month"),
}
ERRAND_METRICS = (
    "requested",
    "cancelled",
    "in_queue",
    "approved",
    "rejected",
    "delivered",
    "zero_trip",
    "zero_trip_share",
    "delivered_on_time",
    "on_time_rate",
    "median_hours_to_delivery",
    "p90_hours_to_delivery",
)

_ERRAND_FIGURES_SQL = """
WITH cohort AS (
    SELECT r.id, r.town_code, r.village_code, r.grid_code, r.member_id, r.service_code,
           r.requested_at, r.due_at
    FROM errands AS r
    WHERE r.requested_at >= :start AND r.requested_at < :end {filters}
), facts AS (
    SELECT c.*,
           max(e.at) FILTER (WHERE e.action = 'deliver') AS delivered_at,
           max((e.data ->> 'applicant_trips')::int) FILTER (WHERE e.action = 'deliver') AS trips,
           bool_or(e.action = 'approve') AS approved,
           bool_or(e.action = 'reject') AS rejected,
           bool_or(e.action = 'cancel') AS cancelled
    FROM cohort AS c JOIN errand_events AS e ON e.errand_id = c.id
    GROUP BY c.id, c.town_code, c.village_code, c.grid_code, c.member_id, c.service_code,
             c.requested_at, c.due_at
)
SELECT {dimensions}
       count(*) AS requested,
       count(*) FILTER (WHERE cancelled) AS cancelled,
       count(*) FILTER (WHERE member_id IS NULL) AS in_queue,
       count(*) FILTER (WHERE approved) AS approved,
       count(*) FILTER (WHERE rejected) AS rejected,
       count(delivered_at) AS delivered,
       count(*) FILTER (WHERE delivered_at IS NOT NULL AND trips = 0) AS zero_trip,
       count(*) FILTER (WHERE delivered_at <= due_at) AS delivered_on_time,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM delivered_at - requested_at) / 3600
       ) AS median_hours_to_delivery,
       percentile_cont(0.9) WITHIN GROUP (
           ORDER BY extract(epoch FROM delivered_at - requested_at) / 3600
       ) AS p90_hours_to_delivery
FROM facts
{group_by}
{order_by}
"""


def parse_errand_group_by(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Errand grouping dimensions from ``"town,service"``, checked against the whitelist."""
    names = _group_names(text)
    unknown = [name for name in names if name not in ERRAND_DIMENSIONS]
    if unknown or len(set(names)) != len(names):
        raise ValidationError(
            f"bad errand grouping {', '.join(unknown) or 'repeated'}; group by any of: "
            f"{', '.join(ERRAND_DIMENSIONS)}, each once"
        )
    return names


def errand_figures(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    group_by: tuple[str, ...] = (),
    town_codes: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Errands requested in ``[start, end)``: delivered, zero-trip share (零跑腿: delivered
    with ``applicant_trips`` = 0, over delivered), on-time delivery, hours to delivery."""
    _check_window(start, end)
    params: dict[str, Any] = {"start": start, "end": end}
    filters = ""
    if town_codes is not None:
        filters = "AND r.town_code = ANY(:towns)"
        params["towns"] = list(town_codes)
    positions = ", ".join(str(i + 1) for i in range(len(group_by)))
    text = _ERRAND_FIGURES_SQL.format(
        filters=filters,
        dimensions="".join(
            f"{ERRAND_DIMENSIONS[g][0]} AS {ERRAND_DIMENSIONS[g][1]}, " for g in group_by
        ),
        group_by=f"GROUP BY {positions}" if group_by else "",
        order_by=f"ORDER BY {positions}" if group_by else "",
    )
    rows = []
    for row in session.execute(sa.text(text), params).mappings():
        out = dict(row)
        out["zero_trip_share"] = _ratio(out["zero_trip"], out["delivered"])
        out["on_time_rate"] = _ratio(out["delivered_on_time"], out["delivered"])
        for key in ("median_hours_to_delivery", "p90_hours_to_delivery"):
            out[key] = None if out[key] is None else round(float(out[key]), 2)
        columns = [ERRAND_DIMENSIONS[g][1] for g in group_by] + list(ERRAND_METRICS)
        rows.append({key: out[key] for key in columns})
    return rows
