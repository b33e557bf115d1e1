"""Incidents (cases) and their append-only event log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column

from gis.layers.base import (
    Base,
    LocatedPoint,
    LogEntry,
    Page,
    TZDateTime,
    check_in,
    events_of,
    get_or_raise,
    utcnow,
)
from gis.layers.categories import Platform


class IncidentStatus(StrEnum):
    """States of a case; the workflow's transition table says which actions move between them."""

    REPORTED = "reported"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    RETURNED = "returned"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"


# Three words for where a case stands, each defined once here (docs/workflow.md):
# final: nothing more will happen to it (closed, cancelled, merged into another as a duplicate).
FINAL_STATUSES = frozenset(
    {IncidentStatus.CLOSED, IncidentStatus.CANCELLED, IncidentStatus.DUPLICATE}
)
# open (未结): not final, resolved-and-awaiting-verification included; it follows its grid.
OPEN_STATUSES = frozenset(set(IncidentStatus) - FINAL_STATUSES)
# active: open and waiting on its handlers (not resolved); its deadline runs and it can be overdue.
ACTIVE_STATUSES = OPEN_STATUSES - {IncidentStatus.RESOLVED}
# void: withdrawn (cancelled) or merged into another case (duplicate). Every other case is valid
# (有效): it counts in the statistics (as of their clock, from the events: gis.services.stats)
# and in the analytics, which read today's status (``valid_case``).
VOID_STATUSES = frozenset({IncidentStatus.CANCELLED, IncidentStatus.DUPLICATE})
# The predicate of the partial indexes on active cases (migration 0017); a query uses them when
# it says ``status IN (…)`` with these values written into the SQL (``active_status``).
ACTIVE_WHERE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATUSES)))


# The condition of the partial index on stored photos; a query must repeat it to use the index.
MEDIA_PHOTOS_WHERE = "CAST(photos AS text) LIKE '%media:%'"
# The same for the photos of workflow actions, kept in their event's data.
EVENT_PHOTOS_WHERE = "data ? 'photos'"


class LocationQuality(StrEnum):
    """How the case's point relates to the grids."""

    INSIDE = "inside"  # strictly inside one grid
    ON_EDGE = "on_edge"  # on a boundary shared by grids; the lowest code won
    SNAPPED = "snapped"  # outside every grid but within the snap distance of one
    OUTSIDE = "outside"  # farther out: the town's (or county's) unassigned queue


class ReporterKind(StrEnum):
    """Who reported the case."""

    GRID_MEMBER = "grid_member"
    CITIZEN = "citizen"
    CAMERA = "camera"
    HOTLINE = "hotline"
    SYSTEM = "system"


class IncidentKey(Base):
    """Every case's keys, in one small plain table (migration 0023, docs/partitioning.md).

    ``incidents`` is partitioned by month of ``reported_at``, so PostgreSQL lets no foreign key
    point at its ``id`` and no unique key hold ``idempotency_key`` alone. Those live here: what
    points at a case points at its row here, intake arbitrates retries on ``idempotency_key``
    here, and ``reported_at`` names the month a case is in. Triggers on ``incidents`` keep it in
    step (a row per case inserted, updated and deleted with it)."""

    __tablename__ = "incident_keys"
    __table_args__ = (
        # Partial: most reports carry no key, and their inserts then touch no entry of it.
        sa.Index(
            "uq_incident_keys_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    reported_at: Mapped[datetime] = mapped_column(TZDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))


class Incident(LocatedPoint, Base):
    """One case: where, what, who handles it, and by when.

    Partitioned by month of ``reported_at`` (migration 0023): the table's primary key must hold
    the partition key, so it is ``(id, reported_at)``; ``id`` alone still names a case (one
    identity sequence, and ``incident_keys``' primary key), so the mapper's identity is ``id``."""

    __tablename__ = "incidents"
    __table_args__ = (
        check_in("platform", Platform),
        check_in("status", IncidentStatus),
        check_in("location_quality", LocationQuality),
        check_in("reporter_kind", ReporterKind),
        sa.Index("ix_incidents_town_reported", "town_code", "reported_at"),
        sa.Index("ix_incidents_category_reported", "category_code", "reported_at"),
        # Open cases by deadline: the predicate names the final states (tests/layers checks it).
        sa.Index(
            "ix_incidents_open_due",
            "due_at",
            postgresql_where=sa.text("status NOT IN ('closed', 'cancelled', 'duplicate')"),
        ),
        # The dispatch queue of a town and the open cases a unit holds (the unit board): only
        # active cases, a small share of the table (migration 0017).
        sa.Index(
            "ix_incidents_town_active_due",
            "town_code",
            "due_at",
            postgresql_where=sa.text(ACTIVE_WHERE),
        ),
        sa.Index("ix_incidents_unit_active", "unit_id", postgresql_where=sa.text(ACTIVE_WHERE)),
        # GET /incidents pages newest first without a filter (migration 0002).
        sa.Index("ix_incidents_reported_id", "reported_at", "id"),
        # The self-referencing FK is checked on every delete; unindexed, each check scanned the
        # table (migration 0002).
        # Who may see a stored photo: the cases that show it (gis.services.media). Partial: only
        # cases with stored photos, so intake of the rest pays nothing.
        sa.Index(
            "ix_incidents_media_photos",
            "photos",
            postgresql_using="gin",
            postgresql_ops={"photos": "jsonb_path_ops"},
            postgresql_where=sa.text(MEDIA_PHOTOS_WHERE),
        ),
        sa.Index(
            "ix_incidents_duplicate_of_id",
            "duplicate_of_id",
            postgresql_where=sa.text("duplicate_of_id IS NOT NULL"),
        ),
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    category_code: Mapped[str] = mapped_column(sa.ForeignKey("categories.code"))
    platform: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    reporter_kind: Mapped[str] = mapped_column(sa.String(20))
    reporter_id: Mapped[str | None] = mapped_column(sa.String(100))
    photos: Mapped[list[str]] = mapped_column(JSONB, default=list)
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("responder_units.id"), index=True)
    unit_distance_m: Mapped[float | None] = mapped_column(sa.Float)
    unit_note: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    reported_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, primary_key=True)
    assigned_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incident_keys.id"))
    # Workflow bookkeeping (gis.services.workflow keeps these in step with the event log).
    overdue_at: Mapped[datetime | None] = mapped_column(TZDateTime)  # when the sweep flagged it
    escalation_level: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    extension_count: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    reassign_count: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    return_count: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    # Unique in ``incident_keys`` (a unique key here would have to hold ``reported_at``).
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))

    __mapper_args__ = {"primary_key": [id]}  # noqa: RUF012 -- SQLAlchemy's declarative hook


# The cases and the event log are partitioned by calendar month (China Standard Time,
# docs/partitioning.md): one partition per month, named ``<table>_y2026m03``, and a default
# partition, ``<table>_default``, for anything no month partition covers yet.
@dataclass(frozen=True)
class MonthlyTable:
    """A table partitioned by month of one column."""

    name: str
    key: str  # the partition key: when the row's month is
    rows: str  # what its rows are, for messages ("cases", "events")

    def partition(self, year: int, month: int) -> str:
        """The name of its partition for one calendar month."""
        return f"{self.name}_y{year:04d}m{month:02d}"

    @property
    def default(self) -> str:
        """The name of its default partition."""
        return f"{self.name}_default"


CASE_MONTHS = MonthlyTable("incidents", "reported_at", "cases")
EVENT_MONTHS = MonthlyTable("incident_events", "at", "events")
MONTHLY_TABLES = (CASE_MONTHS, EVENT_MONTHS)
# A partition of either, by name: the table, and the month (or "default").
PARTITION = re.compile(
    rf"^({'|'.join(table.name for table in MONTHLY_TABLES)})_(y\d{{4}}m\d{{2}}|default)$"
)


class IncidentEvent(LogEntry, Base):
    """One change to a case: who, when, from which state to which, and why. Never updated.

    Partitioned by month of ``at`` (migration 0012): the primary key must hold the partition
    key, so it is ``(id, at)``; ``id`` still comes from one identity sequence."""

    __tablename__ = "incident_events"
    __table_args__ = (
        sa.Index("ix_incident_events_incident_at", "incident_id", "at"),
        sa.Index(
            "ix_incident_events_photos",
            sa.text("(data -> 'photos') jsonb_path_ops"),
            postgresql_using="gin",
            postgresql_where=sa.text(EVENT_PHOTOS_WHERE),
        ),
        # Statistics read the log by action (close, extend…) and per case in time order.
        sa.Index("ix_incident_events_action_incident_at", "action", "incident_id", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incident_keys.id", ondelete="CASCADE"))


def valid_case(alias: str) -> str:
    """SQL: the case ``alias`` (a table alias) is valid, not ``VOID_STATUSES``."""
    void = ", ".join(f"'{s.value}'" for s in sorted(VOID_STATUSES))
    return f"{alias}.status NOT IN ({void})"


def is_active(status: sa.ColumnElement[str] | InstrumentedAttribute[str]) -> sa.ColumnElement[bool]:
    """``status IN (<ACTIVE_STATUSES>)`` with the values written into the SQL: a prepared
    statement's generic plan can then still use the partial indexes on ``ACTIVE_WHERE``."""
    values = sorted(s.value for s in ACTIVE_STATUSES)
    return status.in_(sa.bindparam(None, values, expanding=True, literal_execute=True))


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident with this id, or ``NotFoundError``."""
    return get_or_raise(session, Incident, incident_id, "incident")


def list_events(session: Session, incident_id: int) -> list[IncidentEvent]:
    """The incident's events, oldest first."""
    return events_of(session, IncidentEvent, IncidentEvent.incident_id, incident_id)


@dataclass(frozen=True)
class IncidentFilter:
    """Filters of the incident list; None means "any"."""

    statuses: tuple[str, ...] = ()
    platform: str | None = None
    town_code: str | None = None
    grid_code: str | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    # Whose cases the caller may see (built by the access layer); None: everyone's.
    scope: sa.ColumnElement[bool] | None = None


class IncidentListed(BaseModel):
    """What a list shows of an incident: the properties of its feature in the API."""

    id: int
    status: str
    category: str
    platform: str
    description: str
    location_quality: LocationQuality
    grid_code: str | None
    village_code: str | None
    town_code: str | None
    county_code: str | None
    unit_id: int | None
    reported_at: datetime
    due_at: datetime | None
    closed_at: datetime | None


class IncidentSummary(IncidentListed):
    """One incident of a list, with its WGS84 point."""

    model_config = ConfigDict(frozen=True)

    lon: float
    lat: float


def list_incidents(
    session: Session, filters: IncidentFilter, page: Page
) -> tuple[list[IncidentSummary], int]:
    """Incidents matching ``filters``, newest first, one page of them and how many match."""
    inc = Incident
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(inc.status.in_(filters.statuses))
    if filters.platform is not None:
        conditions.append(inc.platform == filters.platform)
    if filters.town_code is not None:
        conditions.append(inc.town_code == filters.town_code)
    if filters.grid_code is not None:
        conditions.append(inc.grid_code == filters.grid_code)
    if filters.category is not None:
        conditions.append(inc.category_code == filters.category)
    if filters.since is not None:
        conditions.append(inc.reported_at >= filters.since)
    if filters.until is not None:
        conditions.append(inc.reported_at < filters.until)
    if filters.bbox is not None:
        envelope = sa.func.ST_MakeEnvelope(*filters.bbox, 4326)
        conditions.append(inc.geom.op("&&")(envelope))
    if filters.scope is not None:
        conditions.append(filters.scope)
    total = session.execute(sa.select(sa.func.count()).select_from(inc).where(*conditions))
    query = page.of(
        sa.select(
            inc.id,
            inc.status,
            inc.category_code.label("category"),
            inc.platform,
            inc.description,
            inc.location_quality,
            inc.grid_code,
            inc.village_code,
            inc.town_code,
            inc.county_code,
            inc.unit_id,
            inc.reported_at,
            inc.due_at,
            inc.closed_at,
            sa.func.ST_X(inc.geom).label("lon"),
            sa.func.ST_Y(inc.geom).label("lat"),
        )
        .where(*conditions)
        .order_by(inc.reported_at.desc(), inc.id.desc())
    )
    rows = [IncidentSummary(**row._asdict()) for row in session.execute(query)]
    return rows, int(total.scalar_one())
