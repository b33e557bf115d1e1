"""the cases partitioned by month: incidents becomes RANGE (reported_at), with incident_keys

Revision ID: 0023_partition_cases
Revises: 0022_writeback_moved
Create Date: 2026-12-07 13:30:00

0012 partitioned the event log; this does the cases (docs/partitioning.md). PostgreSQL refuses
three things of a partitioned ``incidents`` as it stood: a unique ``idempotency_key`` (a unique
constraint must hold the partition key), foreign keys to ``incidents (id)`` (the primary key
becomes ``(id, reported_at)``), and it would find a case by id only by probing every month. One
small plain table answers all three:

- ``incident_keys (id PRIMARY KEY, reported_at, idempotency_key UNIQUE)``: one row per case,
  written by intake in its one statement before the case (``ON CONFLICT (idempotency_key) DO
  NOTHING`` now arbitrates there), and by a ``BEFORE INSERT`` trigger on ``incidents`` for every
  other writer. A case's update of ``reported_at`` or ``idempotency_key`` follows into it (a
  ``BEFORE UPDATE`` row trigger), and a ``DELETE`` of cases deletes their keys (a statement
  trigger): what pointed at the case and cascaded still cascades.
- Every key that pointed at a case points at ``incident_keys (id)``: the events', both Open311
  tables' and ``incidents.duplicate_of_id``. Writers of events are unchanged.
- ``incidents`` is re-created ``PARTITION BY RANGE (reported_at)``, one partition per calendar
  month of China Standard Time (``incidents_y2026m03``) from the oldest case to three months
  ahead, and ``incidents_default``. Columns, defaults, checks, indexes and foreign keys are read
  from the catalog and re-created as they were (the primary key becomes ``(id, reported_at)``;
  the unique key on ``idempotency_key`` moves to ``incident_keys``). Every row is copied, ids and
  all; the id sequence continues where it stood.

Downgrade copies every case back into one plain table and points the keys at it again (refused
while months of cases are archived: restore them first with ``gis archive restore``).
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0023_partition_cases"
down_revision: str | None = "0022_writeback_moved"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ZONE = ZoneInfo("Asia/Shanghai")
AHEAD = 3  # months after the current one created by the migration

# The keys that point at a case from other tables (table, constraint name stem); each cascades.
POINTING = (
    ("incident_events", "fk_incident_events_incident_id"),
    ("open311_requests", "fk_open311_requests_incident_id"),
    ("open311_updates", "fk_open311_updates_incident_id"),
)
DUPLICATE_KEY = "fk_incidents_duplicate_of_id"

KEYS_SQL = """
CREATE TABLE incident_keys (
    id bigint NOT NULL,
    reported_at timestamp with time zone NOT NULL,
    idempotency_key character varying(200),
    CONSTRAINT pk_incident_keys PRIMARY KEY (id)
);
-- Partial: most reports carry no key, and their inserts then touch no entry of this index.
CREATE UNIQUE INDEX uq_incident_keys_idempotency_key ON incident_keys (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""

TRIGGERS_SQL = """
CREATE FUNCTION gis_incident_keys_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Intake wrote the key first, in the same statement; every other writer gets it here.
    INSERT INTO incident_keys (id, reported_at, idempotency_key)
    VALUES (NEW.id, NEW.reported_at, NEW.idempotency_key)
    ON CONFLICT (id) DO NOTHING;
    RETURN NEW;
END $$;
CREATE FUNCTION gis_incident_keys_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incident_keys SET reported_at = NEW.reported_at, idempotency_key = NEW.idempotency_key
    WHERE id = OLD.id;
    RETURN NEW;
END $$;
CREATE FUNCTION gis_incident_keys_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A statement trigger, not a row one: a row moved to another month by an UPDATE is a
    -- DELETE and an INSERT to row triggers, and must keep its key (and its events).
    DELETE FROM incident_keys AS k USING gone AS g WHERE k.id = g.id;
    RETURN NULL;
END $$;
CREATE TRIGGER incident_keys_insert BEFORE INSERT ON incidents
    FOR EACH ROW EXECUTE FUNCTION gis_incident_keys_insert();
CREATE TRIGGER incident_keys_update BEFORE UPDATE OF reported_at, idempotency_key ON incidents
    FOR EACH ROW WHEN (NEW.reported_at IS DISTINCT FROM OLD.reported_at
                       OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key)
    EXECUTE FUNCTION gis_incident_keys_update();
CREATE TRIGGER incident_keys_delete AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION gis_incident_keys_delete();
"""

# The live feed's trigger on the event log (0010) reads the cases of the events a statement
# wrote. Joined by id alone it would start a scan of every month of ``incidents`` and skip all
# but one while running (+0.3 ms a report, measured); bounded by those cases' report times,
# known from ``incident_keys`` when the statement starts, the executor starts only their months.
# The bounds are variables, so the function keeps one generic plan (a custom plan per call,
# made for each value, cost 0.28 ms a report).
LIVE_SQL = """
CREATE OR REPLACE FUNCTION gis_live_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
{declare}BEGIN
    IF current_setting('gis.live', true) = 'off' THEN RETURN NULL; END IF;
{bounds}    INSERT INTO live_events (type, town_code, grid_code, unit_id, platform, incident_id, data)
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
    JOIN incidents AS i ON i.id = e.incident_id{months}
    LEFT JOIN categories AS c ON c.code = i.category_code
    LEFT JOIN responder_units AS u ON u.id = i.unit_id
    ORDER BY e.id;
    RETURN NULL;
END $$;
"""
LIVE_BOUNDED = LIVE_SQL.format(
    declare="DECLARE\n    first_at timestamptz;\n    last_at timestamptz;\n",
    bounds="    SELECT min(k.reported_at), max(k.reported_at) INTO first_at, last_at\n"
    "    FROM new_events AS e JOIN incident_keys AS k ON k.id = e.incident_id;\n",
    months="\n      AND i.reported_at BETWEEN first_at AND last_at",
)
LIVE_BY_ID = LIVE_SQL.format(declare="", bounds="", months="")

DROP_TRIGGERS_SQL = """
DROP TRIGGER incident_keys_insert ON incidents;
DROP TRIGGER incident_keys_update ON incidents;
DROP TRIGGER incident_keys_delete ON incidents;
DROP FUNCTION gis_incident_keys_insert(), gis_incident_keys_update(), gis_incident_keys_delete();
"""


def _month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=ZONE)


def _next_month(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=ZONE)


def _point_keys_at(target: str, before: str) -> None:
    """Point the keys of other tables at ``target (id)`` instead of ``before (id)``."""
    for table, name in POINTING:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}_{before}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name}_{target} FOREIGN KEY (incident_id) "
            f"REFERENCES {target} (id) ON DELETE CASCADE"
        )


def _set_aside(old: str) -> tuple[int | None, list[str]]:
    """Rename ``incidents`` to ``old``, freeing every name the new table needs.

    Returns the id sequence's next value and the statements that re-create the table's
    secondary indexes and outgoing foreign keys, read from the catalog before they are
    dropped (whatever the migrations made comes back exactly). Checks, defaults and NOT NULL
    are copied by ``_create``; the key to the duplicated case is the caller's."""
    bind = op.get_bind()
    next_id = bind.scalar(
        sa.text(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END "
            "FROM incidents_id_seq"
        )
    )
    indexes = bind.execute(
        sa.text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
            "JOIN pg_class AS c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'incidents'::regclass AND NOT EXISTS "
            "(SELECT FROM pg_constraint AS k WHERE k.conindid = i.indexrelid) ORDER BY 1"
        )
    ).all()
    keys = bind.execute(
        sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'incidents'::regclass AND contype = 'f' AND conparentid = 0 "
            "ORDER BY 1"
        )
    ).all()
    unique = (
        bind.execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'incidents'::regclass "
                "AND contype IN ('p', 'u') ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )
    for name in [*unique, *(name for name, _ in keys)]:
        op.execute(f"ALTER TABLE incidents DROP CONSTRAINT {name}")
    for name, _ in indexes:
        op.execute(f"DROP INDEX {name}")
    op.execute(f"ALTER TABLE incidents RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP IDENTITY")
    # An index of a partitioned table reads back "ON ONLY": create it on the partitions too.
    restore = [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in indexes]
    return (None if next_id is None else int(next_id)), [
        *restore,
        *(f"ALTER TABLE incidents ADD CONSTRAINT {name} {d}" for name, d in keys),
    ]


def _create(old: str, *, partitioned: bool) -> None:
    """The new ``incidents`` with ``old``'s columns, NOT NULLs, defaults and checks (by name:
    a check's name is the table's own), its identity and its primary key."""
    partition = " PARTITION BY RANGE (reported_at)" if partitioned else ""
    op.execute(
        f"CREATE TABLE incidents (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)" + partition
    )
    op.execute("ALTER TABLE incidents ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    key = "id, reported_at" if partitioned else "id"
    op.execute(f"ALTER TABLE incidents ADD CONSTRAINT pk_incidents PRIMARY KEY ({key})")
    if not partitioned:
        op.execute(
            "ALTER TABLE incidents ADD CONSTRAINT uq_incidents_idempotency_key "
            "UNIQUE (idempotency_key)"
        )


def _fill(old: str, next_id: int | None, restore: list[str]) -> None:
    """Copy every row from ``old``, continue the sequence, re-create indexes and keys."""
    op.execute(f"INSERT INTO incidents SELECT * FROM {old}")  # noqa: S608 -- a constant
    if next_id is not None:
        op.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('incidents', 'id'), :n, false)"
            ).bindparams(n=next_id)
        )
    for statement in restore:
        op.execute(statement)
    op.execute(f"DROP TABLE {old}")


def upgrade() -> None:
    """Re-create the cases partitioned by month, with ``incident_keys``, copying every row."""
    op.execute(KEYS_SQL)
    op.execute(
        "INSERT INTO incident_keys (id, reported_at, idempotency_key) "
        "SELECT id, reported_at, idempotency_key FROM incidents"
    )
    _point_keys_at("incident_keys", "incidents")
    op.execute(f"ALTER TABLE incidents DROP CONSTRAINT {DUPLICATE_KEY}_incidents")
    next_id, restore = _set_aside("incidents_unpartitioned")
    _create("incidents_unpartitioned", partitioned=True)
    op.execute("CREATE TABLE incidents_default PARTITION OF incidents DEFAULT")
    oldest = op.get_bind().scalar(sa.text("SELECT min(reported_at) FROM incidents_unpartitioned"))
    now = datetime.now(UTC).astimezone(ZONE)
    start = _month_start((oldest.astimezone(ZONE) if oldest is not None else now).date())
    last = _month_start(now.date())
    for _ in range(AHEAD):
        last = _next_month(last)
    while start <= last:
        end = _next_month(start)
        op.execute(
            f"CREATE TABLE incidents_y{start.year:04d}m{start.month:02d} "
            f"PARTITION OF incidents FOR VALUES FROM ('{start.isoformat()}') "
            f"TO ('{end.isoformat()}')"
        )
        start = end
    _fill("incidents_unpartitioned", next_id, restore)
    op.execute(
        f"ALTER TABLE incidents ADD CONSTRAINT {DUPLICATE_KEY}_incident_keys "
        "FOREIGN KEY (duplicate_of_id) REFERENCES incident_keys (id)"
    )
    op.execute(TRIGGERS_SQL)
    op.execute(LIVE_BOUNDED)
    op.execute("ALTER FUNCTION gis_live_case_events() SET plan_cache_mode = force_generic_plan")
    # New tables have no planner statistics until autovacuum gets to them: gather them now.
    op.execute("ANALYZE incidents, incident_keys")


def downgrade() -> None:
    """Copy every case back into one plain table (refused while months are archived)."""
    archived = op.get_bind().scalar(
        sa.text(
            "SELECT string_agg(table_name, ', ' ORDER BY table_name) FROM information_schema.tables "
            "WHERE table_schema = 'archive' AND table_name LIKE 'incidents\\_%'"
        )
    )
    if archived:
        raise RuntimeError(
            f"months of the cases are archived ({archived}): restore them first "
            "(gis archive restore YYYY-MM), or drop them, before downgrading"
        )
    op.execute(DROP_TRIGGERS_SQL)
    op.execute(LIVE_BY_ID)
    op.execute("ALTER FUNCTION gis_live_case_events() RESET plan_cache_mode")
    op.execute(f"ALTER TABLE incidents DROP CONSTRAINT {DUPLICATE_KEY}_incident_keys")
    next_id, restore = _set_aside("incidents_partitioned")
    _create("incidents_partitioned", partitioned=False)
    _fill("incidents_partitioned", next_id, restore)
    op.execute(
        f"ALTER TABLE incidents ADD CONSTRAINT {DUPLICATE_KEY}_incidents "
        "FOREIGN KEY (duplicate_of_id) REFERENCES incidents (id)"
    )
    _point_keys_at("incidents", "incident_keys")
    op.execute("DROP TABLE incident_keys")
    op.execute("ANALYZE incidents")
