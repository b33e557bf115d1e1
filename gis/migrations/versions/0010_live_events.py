"""The live feed (live_events, written by triggers) and webhooks with their outbox.

Revision ID: 0010_live
Revises: 0009_clock
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_live"
down_revision: str | None = "0009_clock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
NOW = sa.text("clock_timestamp()")

# A bulk loader (gis sample load) says `SET LOCAL gis.live = 'off'`: a year of history is not news.
_OFF = "IF current_setting('gis.live', true) = 'off' THEN RETURN NULL; END IF;"

_FUNCTIONS = f"""
-- Before the rows get their ids: a reader meeting a gap waits for holders of this lock.
CREATE FUNCTION gis_live_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(2026, 13);
    RETURN NULL;
END $$;

-- After: the webhook outbox in the same transaction, and one NOTIFY carrying the last id.
CREATE FUNCTION gis_live_published() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_id bigint;
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id)
    SELECT w.id, e.id
    FROM new_rows AS e
    JOIN webhooks AS w
      ON w.active AND e.type = ANY(w.event_types)
     AND (w.town_codes IS NULL OR e.town_code = ANY(w.town_codes))
    ORDER BY e.id, w.id;
    SELECT max(id) INTO last_id FROM new_rows;
    IF last_id IS NOT NULL THEN
        PERFORM pg_notify('gis_live', last_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION gis_live_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_OFF}
    INSERT INTO live_events (type, town_code, grid_code, unit_id, platform, incident_id, data)
    SELECT CASE e.action
             WHEN 'report' THEN 'case.created'
             WHEN 'assign' THEN 'case.assigned'
             WHEN 'reassign' THEN 'case.assigned'
             WHEN 'flag_overdue' THEN 'case.overdue'
             ELSE 'case.status'
           END,
           i.town_code, i.grid_code, i.unit_id, i.platform, i.id,
           jsonb_build_object(
             'incident_id', i.id, 'action', e.action, 'from_status', e.from_status,
             'status', i.status, 'category', i.category_code, 'category_zh', c.name_zh,
             'category_en', c.name_en, 'platform', i.platform,
             'lon', ST_X(i.geom), 'lat', ST_Y(i.geom), 'grid_code', i.grid_code,
             'unit_id', i.unit_id, 'unit_name', u.name, 'due_at', i.due_at,
             'overdue', i.overdue_at IS NOT NULL,
             'open', i.status NOT IN ('resolved', 'closed', 'cancelled', 'duplicate'))
    FROM new_events AS e
    JOIN incidents AS i ON i.id = e.incident_id
    LEFT JOIN categories AS c ON c.code = i.category_code
    LEFT JOIN responder_units AS u ON u.id = i.unit_id
    ORDER BY e.id;
    RETURN NULL;
END $$;

CREATE FUNCTION gis_live_unit_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_OFF}
    INSERT INTO live_events (type, town_code, unit_id, platform, data)
    SELECT t.type,
           -- A county unit (traffic police…) belongs to the town it stands in.
           COALESCE(
             (SELECT r.code FROM regions AS r
               WHERE r.code = n.jurisdiction_code AND r.level = 'town'),
             (SELECT r.code FROM regions AS r
               WHERE r.level = 'town' AND ST_Covers(r.geom, n.geom) ORDER BY r.code LIMIT 1)),
           n.id, n.platform,
           jsonb_build_object(
             'unit_id', n.id, 'code', n.code, 'name', n.name, 'unit_type', n.unit_type,
             'platform', n.platform, 'status', n.status, 'from_status', o.status,
             'lon', ST_X(n.geom), 'lat', ST_Y(n.geom))
    FROM new_units AS n
    JOIN old_units AS o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES
        (1, 'unit.moved', ST_AsBinary(o.geom) IS DISTINCT FROM ST_AsBinary(n.geom)),
        (2, 'unit.status', o.status IS DISTINCT FROM n.status)
    ) AS t(ord, type, changed)
    WHERE t.changed
    ORDER BY n.id, t.ord;
    RETURN NULL;
END $$;

CREATE FUNCTION gis_live_camera_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_OFF}
    INSERT INTO live_events (type, town_code, data)
    SELECT 'camera.status', n.town_code,
           jsonb_build_object(
             'camera_id', n.id, 'code', n.code, 'name', n.name, 'status', n.status,
             'from_status', o.status, 'lon', ST_X(n.geom), 'lat', ST_Y(n.geom))
    FROM new_cameras AS n
    JOIN old_cameras AS o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status
    ORDER BY n.id;
    RETURN NULL;
END $$;

CREATE TRIGGER live_lock BEFORE INSERT ON live_events
    FOR EACH STATEMENT EXECUTE FUNCTION gis_live_lock();
CREATE TRIGGER live_published AFTER INSERT ON live_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gis_live_published();
CREATE TRIGGER live_case_events AFTER INSERT ON incident_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION gis_live_case_events();
CREATE TRIGGER live_unit_events AFTER UPDATE ON responder_units
    REFERENCING OLD TABLE AS old_units NEW TABLE AS new_units
    FOR EACH STATEMENT EXECUTE FUNCTION gis_live_unit_events();
CREATE TRIGGER live_camera_events AFTER UPDATE ON cameras
    REFERENCING OLD TABLE AS old_cameras NEW TABLE AS new_cameras
    FOR EACH STATEMENT EXECUTE FUNCTION gis_live_camera_events();
"""  # noqa: S608 -- module constants only

_DROP = """
DROP TRIGGER IF EXISTS live_camera_events ON cameras;
DROP TRIGGER IF EXISTS live_unit_events ON responder_units;
DROP TRIGGER IF EXISTS live_case_events ON incident_events;
DROP FUNCTION IF EXISTS gis_live_camera_events();
DROP FUNCTION IF EXISTS gis_live_unit_events();
DROP FUNCTION IF EXISTS gis_live_case_events();
DROP FUNCTION IF EXISTS gis_live_published() CASCADE;
DROP FUNCTION IF EXISTS gis_live_lock() CASCADE;
"""


def upgrade() -> None:
    """Create the feed, the webhooks and their outbox, and the triggers that write them."""
    op.create_table(
        "live_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", TZ, server_default=NOW, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("town_code", sa.String(12), nullable=True),
        sa.Column("grid_code", sa.String(20), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(20), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.CheckConstraint(
            "type IN ('case.created', 'case.assigned', 'case.status', 'case.overdue', "
            "'unit.moved', 'unit.status', 'camera.status')",
            name=op.f("ck_live_events_type_allowed"),
        ),
    )
    op.create_index("ix_live_events_at", "live_events", ["at"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(20)), nullable=False),
        sa.Column("town_codes", postgresql.ARRAY(sa.String(12)), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.Integer(),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TZ, server_default=NOW, nullable=False),
        sa.Column("last_status_code", sa.SmallInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status_allowed"),
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id", "event_id"]
    )
    op.execute(_FUNCTIONS)


def downgrade() -> None:
    """Drop the triggers, then the tables."""
    op.execute(_DROP)
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("live_events")
