"""incident_facts: per-case outcomes projected from the event log, for fast statistics

Revision ID: 0005b
Revises: 0005
Create Date: 2026-11-27 06:20:00

The same per-case facts that gis.services.stats computes from incident_events for an exact
``as_of``, materialised as of the last refresh (``gis stats refresh``, POST /stats/refresh),
so that a county's table over a year of cases reads one narrow row per case instead of every
event. tests/services/test_stats.py checks that both give the same figures.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005b"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS_SQL = """
CREATE MATERIALIZED VIEW incident_facts AS
WITH closes AS (
    SELECT incident_id, max(at) AS last_close FROM incident_events
    WHERE action = 'close' GROUP BY incident_id
), resolves AS (
    SELECT incident_id, max(at) AS last_resolve FROM incident_events
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
    FROM incident_events
    WHERE action IN ('reopen', 'return', 'cancel', 'mark_duplicate', 'extend', 'reassign',
                     'escalate')
    GROUP BY incident_id
), last_extension AS (
    SELECT DISTINCT ON (incident_id) incident_id, (data ->> 'due_at')::timestamptz AS due_at
    FROM incident_events WHERE action = 'extend'
    ORDER BY incident_id, at DESC, id DESC
)
SELECT i.id AS incident_id, i.platform, i.town_code, i.village_code, i.grid_code, i.unit_id,
       i.member_id, i.category_code, i.reported_at,
       -- Calendar periods in China Standard Time, stored: computing them per row per query
       -- costs more than the rest of the aggregate.
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
       COALESCE(le.due_at, i.due_at) AS due_in_force
FROM incidents AS i
LEFT JOIN closes AS cl ON cl.incident_id = i.id
LEFT JOIN resolves AS rs ON rs.incident_id = i.id
LEFT JOIN rare AS r ON r.incident_id = i.id
LEFT JOIN last_extension AS le ON le.incident_id = i.id
-- Stored in the order of the main report (town x month x platform): with the index below, that
-- table is read in order, without sorting a million rows. A concurrent refresh appends the few
-- changed cases at the end; a full refresh (gis stats refresh --full) restores the order.
ORDER BY i.town_code, reported_month, i.platform
"""


def upgrade() -> None:
    """Apply this revision."""
    op.execute(FACTS_SQL)
    # Unique: REFRESH … CONCURRENTLY needs it, so readers are never blocked by a refresh.
    op.execute("CREATE UNIQUE INDEX ix_incident_facts_incident_id ON incident_facts (incident_id)")
    op.execute("CREATE INDEX ix_incident_facts_reported_at ON incident_facts (reported_at)")
    op.execute(
        "CREATE INDEX ix_incident_facts_town_month_platform "
        "ON incident_facts (town_code, reported_month, platform)"
    )
    op.execute(
        "CREATE TABLE stats_refreshes ("
        " name varchar(50) PRIMARY KEY, refreshed_at timestamptz NOT NULL)"
    )
    op.execute("INSERT INTO stats_refreshes VALUES ('incident_facts', now())")


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TABLE stats_refreshes")
    op.execute("DROP MATERIALIZED VIEW incident_facts")
