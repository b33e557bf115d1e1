"""The monthly partitions of the cases and the event log: made ahead, archived, restored.

``incidents`` is partitioned by month of ``reported_at`` and ``incident_events`` by month of
``at``, both in China Standard Time (migrations 0023 and 0012, docs/partitioning.md). This
module is the one home of their partition rules, the same for both tables:

- ``ensure_partitions`` creates the missing months of a span (``gis partitions ensure``, run
  daily by a timer so the coming months exist before their first case or event). Rows a
  default partition caught for such a month move into it. Idempotent.
- ``archive_before`` detaches every month before a given one, of both tables, into the
  ``archive`` schema (``gis archive --before 2024-01``): the tables keep their rows, indexes and
  foreign keys, and leave the live cases, the log, its statistics and case histories.
- ``restore_month`` attaches an archived month again (``gis archive restore 2023-12``).

Identifiers are built from validated months only, never from input text. Like every service,
these take a session and never commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ConflictError, NotFoundError, ValidationError
from gis.layers.base import LOCAL_TZ, LOCAL_TZ_SQL
from gis.layers.incidents import (
    EVENT_MONTHS,
    FINAL_STATUSES,
    MONTHLY_TABLES,
    PARTITION,
    MonthlyTable,
)

ARCHIVE_SCHEMA = "archive"
# More months than this in one call is a typo (a year 20026), not a plan.
MAX_SPAN_MONTHS = 600
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NAME_MONTH = re.compile(r"_y(\d{4})m(\d{2})$")
_FINAL = ", ".join(f"'{status.value}'" for status in sorted(FINAL_STATUSES))


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month of China Standard Time, the unit of the partitions."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``2024-01`` as a month, or ``ValidationError``."""
        match = _MONTH.match(text.strip())
        if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            raise ValidationError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2024-01")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, moment: datetime) -> Month:
        """The month ``moment`` falls in, China Standard Time."""
        local = moment.astimezone(LOCAL_TZ)
        return cls(local.year, local.month)

    def plus(self, months: int) -> Month:
        """The month ``months`` after this one (before it when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        """Its first instant (China Standard Time, aware)."""
        return datetime(self.year, self.month, 1, tzinfo=LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """The first instant of the next month."""
        return self.plus(1).start

    def partition(self, table: MonthlyTable) -> str:
        """The name of its partition of ``table``."""
        return table.partition(self.year, self.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Partition:
    """A partition of the cases or the event log, attached (``public``) or archived."""

    table: str  # the partitioned table it belongs to
    name: str
    schema: str
    month: Month | None  # None: the default partition
    rows: int  # the planner's estimate (exact right after ANALYZE); -1 if never analyzed

    @property
    def archived(self) -> bool:
        """Whether it is detached into the archive schema."""
        return self.schema == ARCHIVE_SCHEMA


def _month_of_name(name: str) -> Month | None:
    match = _NAME_MONTH.search(name)
    return None if match is None else Month(int(match[1]), int(match[2]))


def _bounds(month: Month) -> str:
    # Only ``Month`` values reach here: the literals are built from integers.
    return f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"


def list_partitions(session: Session) -> list[Partition]:
    """Every partition of the cases and the event log, attached and archived, by table and
    oldest month first."""
    rows = session.execute(
        sa.text(
            "SELECT c.relname, n.nspname, c.reltuples::bigint FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND ("
            "  c.oid IN (SELECT inhrelid FROM pg_inherits "
            "            WHERE inhparent = ANY (CAST(:parents AS regclass[])))"
            "  OR n.nspname = :archive) "
            "ORDER BY c.relname"
        ),
        {"parents": [table.name for table in MONTHLY_TABLES], "archive": ARCHIVE_SCHEMA},
    ).all()
    partitions = [
        Partition(match[1], name, schema, _month_of_name(name), int(estimate))
        for name, schema, estimate in rows
        if (match := PARTITION.match(name)) is not None
    ]
    return sorted(
        partitions,
        key=lambda p: (p.table, p.month is None, p.month or Month(1, 1), p.schema),
    )


def _checked_span(first: Month, last: Month) -> list[Month]:
    if last < first:
        raise ValidationError(f"the span is empty: {last} is before {first}")
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MAX_SPAN_MONTHS:
        raise ValidationError(f"{count} months is more than {MAX_SPAN_MONTHS}; check the years")
    return [first.plus(i) for i in range(count)]


@contextmanager
def _referencing_keys_set_aside(session: Session, table: MonthlyTable) -> Iterator[None]:
    """Drop the foreign keys that point at ``table``, and add them back (validated).

    Moving a row out of the default partition is a DELETE there: a key pointing at the table
    (Open311 updates name events; nothing points at ``incidents`` itself, the keys to a case
    point at ``incident_keys``) would cascade it away or refuse it. The keys come back exactly
    as the catalog had them, checked against every row, in the same transaction."""
    keys = session.execute(
        sa.text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 "
            "AND confrelid = CAST(:parent AS regclass) ORDER BY conname"
        ),
        {"parent": table.name},
    ).all()
    for owner, name, _ in keys:
        session.execute(sa.text(f'ALTER TABLE {owner} DROP CONSTRAINT "{name}"'))
    yield
    for owner, name, definition in keys:
        session.execute(sa.text(f'ALTER TABLE {owner} ADD CONSTRAINT "{name}" {definition}'))


def _default_months(
    session: Session, table: MonthlyTable, before: datetime | None = None
) -> list[Month]:
    """The months of the rows a default partition holds (all, or those before a time)."""
    key = table.key
    rows = session.execute(
        sa.text(
            f"SELECT DISTINCT date_part('year', {key} AT TIME ZONE {LOCAL_TZ_SQL})::int, "  # noqa: S608
            f"       date_part('month', {key} AT TIME ZONE {LOCAL_TZ_SQL})::int "
            f"FROM {table.default} "
            f"WHERE CAST(:before AS timestamptz) IS NULL OR {key} < CAST(:before AS timestamptz) "
            "ORDER BY 1, 2"
        ),
        {"before": before},
    ).all()
    return [Month(year, month) for year, month in rows]


def _attach_with_default_rows(session: Session, table: MonthlyTable, month: Month) -> None:
    """Move the default partition's rows of ``month`` into its (detached) table, and attach it.

    Both inside one set-aside of the keys pointing at the table: they come back once the rows
    are in it again. Statement triggers of the partitioned table do not fire for statements
    on its partitions: a move is not news, nor a deletion of cases."""
    name = month.partition(table)
    with _referencing_keys_set_aside(session, table):
        session.execute(
            sa.text(
                f"WITH gone AS (DELETE FROM {table.default} "  # noqa: S608 -- constants
                f"WHERE {table.key} >= :start AND {table.key} < :end RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM gone"
            ),
            {"start": month.start, "end": month.end},
        )
        session.execute(
            sa.text(f"ALTER TABLE {table.name} ATTACH PARTITION {name} {_bounds(month)}")
        )


def _create(session: Session, table: MonthlyTable, month: Month) -> None:
    """Create the partition of ``month``, moving in what the default partition holds of it."""
    name = month.partition(table)
    held = session.scalar(
        sa.text(
            f"SELECT EXISTS (SELECT FROM {table.default} "  # noqa: S608 -- constants
            f"WHERE {table.key} >= :start AND {table.key} < :end)"
        ),
        {"start": month.start, "end": month.end},
    )
    if not held:
        session.execute(sa.text(f"CREATE TABLE {name} PARTITION OF {table.name} {_bounds(month)}"))
        return
    session.execute(
        sa.text(f"CREATE TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    _attach_with_default_rows(session, table, month)


def ensure_partitions(session: Session, *, first: Month, last: Month) -> list[Month]:
    """Create the missing monthly partitions from ``first`` to ``last`` (inclusive), of the
    cases and of the event log, and return the months that got one; months that exist or are
    archived are left alone. Idempotent."""
    months = _checked_span(first, last)
    present = {(p.table, p.month) for p in list_partitions(session)}
    created: set[Month] = set()
    for table in MONTHLY_TABLES:
        for month in months:
            if (table.name, month) not in present:
                _create(session, table, month)
                created.add(month)
    return sorted(created)


def months_ahead(now: datetime, ahead: int) -> tuple[Month, Month]:
    """The span ``gis partitions ensure`` keeps: this month and ``ahead`` after it."""
    if ahead < 0:
        raise ValidationError("--months-ahead must be 0 or more")
    this = Month.of(now)
    return this, this.plus(ahead)


def archive_before(session: Session, before: Month) -> list[Partition]:
    """Detach every month before ``before``, of the cases and of the event log, into the
    archive schema; returns what was archived. Refused (``ConflictError``, nothing changed)
    while a case of those months, or with events in them, is still open, or an Open311 update
    names one of those events."""
    cutoff = before.start
    archived = {(p.table, p.month) for p in list_partitions(session) if p.archived}
    for table in MONTHLY_TABLES:
        for month in _default_months(session, table, cutoff):
            if (table.name, month) in archived:
                raise ConflictError(
                    f"{table.rows} dated in {month} were written after it was archived; "
                    f"restore it first (gis archive restore {month})"
                )
            _create(session, table, month)  # what the default caught leaves with its month
    open_cases = session.execute(
        sa.text(
            "SELECT count(*), (array_agg(i.id ORDER BY i.id))[1:5] FROM incidents AS i "  # noqa: S608
            f"WHERE i.status NOT IN ({_FINAL}) AND (i.reported_at < :cutoff OR EXISTS ("
            f"  SELECT FROM {EVENT_MONTHS.name} AS e "
            "  WHERE e.incident_id = i.id AND e.at < :cutoff))"
        ),
        {"cutoff": cutoff},
    ).one()
    if open_cases[0]:
        raise ConflictError(
            f"{open_cases[0]} open case(s) were reported or have events before {before} (e.g. "
            f"{', '.join(map(str, open_cases[1]))}): they and their history are still in use; "
            "close them or archive an earlier month"
        )
    updates = session.scalar(
        sa.text("SELECT count(*) FROM open311_updates WHERE event_at < :cutoff"),
        {"cutoff": cutoff},
    )
    if updates:
        raise ConflictError(
            f"{updates} Open311 update(s) name events before {before}; an archived event cannot "
            "be named by a live row (docs/partitioning.md)"
        )
    session.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE_SCHEMA}"))
    tables = {table.name: table for table in MONTHLY_TABLES}
    moved = []
    for part in list_partitions(session):
        if part.archived or part.month is None or part.month >= before:
            continue
        name, table = part.name, tables[part.table]
        session.execute(sa.text(f"ALTER TABLE {table.name} DETACH PARTITION {name}"))
        # The bounds as a CHECK: attaching it again (restore) then skips the validating scan.
        start, end = part.month.start.isoformat(), part.month.end.isoformat()
        session.execute(
            sa.text(
                f"ALTER TABLE {name} ADD CONSTRAINT {name}_month CHECK ({table.key} IS NOT NULL "
                f"AND {table.key} >= '{start}' AND {table.key} < '{end}')"
            )
        )
        session.execute(sa.text(f"ALTER TABLE {name} SET SCHEMA {ARCHIVE_SCHEMA}"))
        moved.append(Partition(part.table, name, ARCHIVE_SCHEMA, part.month, part.rows))
    return moved


def restore_month(session: Session, month: Month) -> list[Partition]:
    """Attach an archived month again, of the cases and of the event log; rows written for that
    month since it was archived (caught by a default partition) join it."""
    found = [p for p in list_partitions(session) if p.month == month]
    if not any(p.archived for p in found):
        state = "attached, not archived" if found else "neither attached nor archived"
        raise NotFoundError(f"month {month} is not in the archive ({state})")
    restored = []
    for table in MONTHLY_TABLES:
        if not any(p.archived and p.table == table.name for p in found):
            continue
        name = month.partition(table)
        session.execute(sa.text(f"ALTER TABLE {ARCHIVE_SCHEMA}.{name} SET SCHEMA public"))
        _attach_with_default_rows(session, table, month)
        session.execute(sa.text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_month"))
        rows = session.scalar(sa.text(f"SELECT count(*) FROM {name}"))  # noqa: S608 -- constant
        restored.append(Partition(table.name, name, "public", month, int(rows or 0)))
    return restored
