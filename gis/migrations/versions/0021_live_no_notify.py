"""the live feed's writers no longer NOTIFY: readers poll the feed

Revision ID: 0021_live_poll
Revises: 0020_units_pick
Create Date: 2026-12-07 05:40:00

A transaction that has issued NOTIFY takes one database-wide lock at commit
(``PreCommit_Notify``: AccessExclusiveLock on the notification queue) and keeps it until its
commit record is flushed, so every report's commit waited for every other report's WAL flush in
turn: under ``bench/load``, 130 reports/s, up to 13 intakes at once were seen queued on that lock
(``pg_locks``: locktype object, pg_database, AccessExclusiveLock). Each process's hub now reads
the feed every ``GIS_LIVE_POLL_S`` instead (``gis.api.live``); the outbox row for webhooks is still
written in the same transaction as the event.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_live_poll"
down_revision: str | None = "0020_units_pick"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOX = """
    INSERT INTO webhook_deliveries (webhook_id, event_id)
    SELECT w.id, e.id
    FROM new_rows AS e
    JOIN webhooks AS w
      ON w.active AND e.type = ANY(w.event_types)
     AND (w.town_codes IS NULL OR e.town_code = ANY(w.town_codes))
    ORDER BY e.id, w.id;"""


def _published(notify: str = "") -> str:
    declare = "\nDECLARE\n    last_id bigint;" if notify else ""
    return f"""
CREATE OR REPLACE FUNCTION gis_live_published() RETURNS trigger LANGUAGE plpgsql AS $${declare}
BEGIN{_OUTBOX}{notify}
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    """The outbox only."""
    op.execute(_published())


def downgrade() -> None:
    """The outbox and one NOTIFY carrying the last id (0010)."""
    op.execute(
        _published("""
    SELECT max(id) INTO last_id FROM new_rows;
    IF last_id IS NOT NULL THEN
        PERFORM pg_notify('gis_live', last_id::text);
    END IF;""")
    )
