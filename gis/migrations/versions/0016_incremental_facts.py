"""stored facts refreshed incrementally: a table with watermarks instead of a materialized view

Revision ID: 0016_facts
Revises: 0015_photos
Create Date: 2026-12-06 23:40:00

A materialized view can only be recomputed whole (~23 s for 1M cases, ~4 min at a province's
10M). ``incident_facts`` becomes a plain table with the same columns and indexes, which
``gis.services.stats.refresh_facts`` rewrites for the cases with new events or new reports
since the last refresh only. ``stats_refreshes`` keeps the watermarks (the last event id and
case id refreshed, null: the next refresh is full); ``stats_refresh_pending`` the cases to
recompute next time because one of their events is dated after the refresh's cutoff.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0016_facts"
down_revision: str | None = "0015_photos"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = """
CREATE INDEX ix_incident_facts_reported_at ON incident_facts (reported_at);
CREATE INDEX ix_incident_facts_town_month_platform
    ON incident_facts (town_code, reported_month, platform);
"""


def upgrade() -> None:
    """Materialized view → table (same rows), watermarks, pending cases."""
    op.execute("CREATE TABLE incident_facts_table AS SELECT * FROM incident_facts")
    op.execute("DROP MATERIALIZED VIEW incident_facts")
    op.execute("ALTER TABLE incident_facts_table RENAME TO incident_facts")
    op.execute(
        "ALTER TABLE incident_facts ADD CONSTRAINT pk_incident_facts PRIMARY KEY (incident_id)"
    )
    op.execute(INDEXES)
    op.execute(
        "ALTER TABLE stats_refreshes ADD COLUMN events_watermark bigint, "
        "ADD COLUMN incidents_watermark bigint"
    )
    op.execute("CREATE TABLE stats_refresh_pending (incident_id bigint PRIMARY KEY)")


def downgrade() -> None:
    """Back to the materialized view of 0009."""
    op.execute("DROP TABLE stats_refresh_pending")
    op.execute(
        "ALTER TABLE stats_refreshes DROP COLUMN events_watermark, DROP COLUMN incidents_watermark"
    )
    op.execute("DROP TABLE incident_facts")
    path = Path(__file__).with_name("0009_clock_event_guard.py")
    spec = importlib.util.spec_from_file_location("clock_0009", path)
    assert spec is not None and spec.loader is not None
    clock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clock)
    op.execute(clock.FACTS_SQL.format(cutoff=clock.CUTOFF))
    op.execute("CREATE UNIQUE INDEX ix_incident_facts_incident_id ON incident_facts (incident_id)")
    op.execute(INDEXES)
