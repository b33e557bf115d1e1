"""the event log is the record: no event dated in the future; stored facts cut at their refresh

Revision ID: 0009_clock
Revises: 0008_open311
Create Date: 2026-12-06 20:30:00

- ``incident_events`` and ``errand_events`` refuse a row whose ``at`` is more than
  ``EVENT_SKEW`` (5 minutes) ahead of the database's clock (``clock_timestamp()``, not the
  transaction's start, so a long transaction is not penalised), on INSERT, COPY and UPDATE,
  whichever code path or role writes it. SQLSTATE ``GIS01``; ``gis.db`` turns it into a
  ``FutureEventError`` (422). The 5 minutes allow for an application server whose clock runs
  a little ahead of the database's; a larger lead is a clock to fix, not a case history.
  Statement-level triggers over the transition table: one check per statement, so bulk loads
  (the demo county's millions of events) pay nothing per row.
- ``incident_facts`` counts only the events at or before its refresh time, read from
  ``stats_refreshes`` (which ``gis.services.stats.refresh_facts`` stamps before refreshing, in
  the same transaction), so the stored figures equal the exact ones as of that time even when
  the log holds events dated later; and the deadline in force uses the original deadline when
  the only extensions come later, as the exact query does.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_clock"
down_revision: str | None = "0008_open311"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_SKEW = "5 minutes"
EVENT_TABLES = ("incident_events", "errand_events")

GUARD_SQL = f"""
CREATE FUNCTION refuse_future_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    latest timestamptz;
    server_time timestamptz := clock_timestamp();
BEGIN
    SELECT max(at) INTO latest FROM new_rows;
    IF latest > server_time + interval '{EVENT_SKEW}' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'GIS01',
            MESSAGE = format('%s: an event dated %s is ahead of the server time %s',
                             TG_TABLE_NAME, latest, server_time),
            HINT = 'events record what has happened; their time is the server''s '
                   '(at most {EVENT_SKEW} ahead of the database clock)';
    END IF;
    RETURN NULL;
END
$$
"""  # noqa: S608 -- a module constant, no input

# The facts as of the last refresh: every event at or before it, none after (see 0005b).
FACTS_SQL = """
CREATE MATERIALIZED VIEW incident_facts AS
WITH cutoff AS (
    SELECT {cutoff} AS at
), events AS NOT MATERIALIZED (
    -- Inlined into each reader below, so each keeps its own index scan by action.
    SELECT incident_id, at, action, data, id FROM incident_events
    WHERE at <= (SELECT at FROM cutoff)
), closes AS (
    SELECT incident_id, max(at) AS last_close FROM events
    WHERE action = 'close' GROUP BY incident_id
), resolves AS (
    SELECT incident_id, max(at) AS last_resolve FROM events
    WHERE action = 'resolve' GROUP BY incident_id
), rare AS (
    SELECT incident_id,
           max(at) FILTER (WHERE action = 'reopen') AS last_reopen,
           max(at) FILTER (WHERE action IN ('return', 'reopen')) AS last_return,
           bool_or(action = 'cancel') AS cancelled,
           bool_or(action = 'mark_duplicate') AS duplicate,
           bool_or(action = 'extend') AS extended,
           bool_or(action = 'reassign') AS reassigned,
           bool_or(action = 'escalate') AS escalated,
           bool_or(action IN ('return', 'reopen')) AS reworked
    FROM events
    WHERE action IN ('reopen', 'return', 'cancel', 'mark_duplicate', 'extend', 'reassign',
                     'escalate')
    GROUP BY incident_id
), last_extension AS (
    SELECT DISTINCT ON (incident_id) incident_id, (data ->> 'due_at')::timestamptz AS due_at
    FROM events WHERE action = 'extend'
    ORDER BY incident_id, at DESC, id DESC
), first_extension AS (
    -- The deadline before any extension, even one after the cutoff (as the exact query does).
    SELECT DISTINCT ON (incident_id) incident_id,
           (data ->> 'previous_due_at')::timestamptz AS original_due_at
    FROM incident_events WHERE action = 'extend'
    ORDER BY incident_id, at, id
)
SELECT i.id AS incident_id, i.platform, i.town_code, i.village_code, i.grid_code, i.unit_id,
       i.member_id, i.category_code, i.reported_at,
       (i.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS reported_day,
       date_trunc('week', i.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS reported_week,
       date_trunc('month', i.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS reported_month,
       CASE WHEN cl.last_close IS NOT NULL
                 AND (r.last_reopen IS NULL OR r.last_reopen < cl.last_close)
            THEN extract(epoch FROM cl.last_close - i.reported_at) / 3600 END AS hours_to_close,
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
       COALESCE(le.due_at, fe.original_due_at, i.due_at) AS due_in_force
FROM incidents AS i
LEFT JOIN closes AS cl ON cl.incident_id = i.id
LEFT JOIN resolves AS rs ON rs.incident_id = i.id
LEFT JOIN rare AS r ON r.incident_id = i.id
LEFT JOIN last_extension AS le ON le.incident_id = i.id
LEFT JOIN first_extension AS fe ON fe.incident_id = i.id
-- A case reported after the cutoff is not in the facts (the exact query leaves it out too).
WHERE i.reported_at <= (SELECT at FROM cutoff)
ORDER BY i.town_code, reported_month, i.platform
"""
CUTOFF = "(SELECT refreshed_at FROM stats_refreshes WHERE name = 'incident_facts')"


def _facts(cutoff: str) -> None:
    op.execute("DROP MATERIALIZED VIEW incident_facts")
    op.execute(FACTS_SQL.format(cutoff=cutoff))
    op.execute("CREATE UNIQUE INDEX ix_incident_facts_incident_id ON incident_facts (incident_id)")
    op.execute("CREATE INDEX ix_incident_facts_reported_at ON incident_facts (reported_at)")
    op.execute(
        "CREATE INDEX ix_incident_facts_town_month_platform "
        "ON incident_facts (town_code, reported_month, platform)"
    )


def upgrade() -> None:
    """Apply this revision."""
    op.execute(GUARD_SQL)
    for table in EVENT_TABLES:
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {table}_not_in_future_{event.lower()} AFTER {event} ON {table} "
                "REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION refuse_future_events()"
            )
    op.execute(
        "INSERT INTO stats_refreshes VALUES ('incident_facts', now()) ON CONFLICT DO NOTHING"
    )
    _facts(CUTOFF)


def downgrade() -> None:
    """Revert this revision."""
    _facts("'infinity'::timestamptz")
    for table in EVENT_TABLES:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_not_in_future_{event} ON {table}")
    op.execute("DROP FUNCTION refuse_future_events()")
