"""The dispatch queue (the cases of a town that need a person now, and why) and the unit board
(every unit of a town: status, how old its last position is, how many open cases it carries).

Both are what the dispatcher's console shows (docs/console.md); any client gets the same from
``GET /dispatch/queue`` and ``GET /dispatch/board``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.categories import Category
from gis.layers.incidents import (
    Incident,
    IncidentStatus,
    LocationQuality,
    ReporterKind,
    is_active,
)
from gis.layers.units import ResponderUnit, UnitPosition, unit_type_names
from gis.services.mapdata import ALL_CASES, CaseFilter, units_of_town

MAX_QUEUE = 500
# "Newest": cases reported within this window, whatever else they are.
NEWEST_WINDOW = timedelta(hours=2)


class Bucket(StrEnum):
    """Why a case is in the queue; a case can be in several. A case leaves a bucket once a
    person has (re)assigned it after the reason arose: the queue is what still needs one."""

    UNASSIGNED = "unassigned"  # no unit (none was found, or it was taken off one)
    OUTSIDE = "outside"  # outside every grid, and only intake has placed it
    ESCALATED = "escalated"  # escalated, not yet assigned anew
    OVERDUE = "overdue"  # past its deadline, and nobody has re-dispatched it since
    REWORKED = "reworked"  # returned for rework (or reopened), not yet reassigned
    CAMERA = "camera"  # raised from a camera, unit not yet confirmed by a person
    NEWEST = "newest"  # reported within NEWEST_WINDOW, untouched by a person


class QueueSort(StrEnum):
    """Queue order: nearest deadline first, or oldest report first."""

    DEADLINE = "deadline"
    AGE = "age"


class QueueItem(BaseModel):
    """One case of the queue with the buckets it is in (a model: the API's reply extends it)."""

    model_config = ConfigDict(frozen=True)

    id: int
    status: str
    category: str
    category_zh: str
    category_en: str
    platform: str
    description: str
    location_quality: str
    reporter_kind: str
    grid_code: str | None
    village_code: str | None
    town_code: str | None
    unit_id: int | None
    unit_name: str | None
    reported_at: datetime
    due_at: datetime | None
    buckets: list[str]
    lon: float
    lat: float


@dataclass(frozen=True)
class Queue:
    """A town's queue at ``now``: counts per bucket (all matching cases) and the first items."""

    town_code: str
    now: datetime
    counts: dict[str, int]
    total: int
    items: list[QueueItem]


def _flags(now: datetime) -> dict[Bucket, sa.ColumnElement[bool]]:
    """Each bucket's condition on an active case (one definition for counts and items)."""
    inc = Incident
    # Intake stamps its own assignment with the report's time; a person's comes later.
    untouched = sa.or_(inc.assigned_at.is_(None), inc.assigned_at <= inc.reported_at)
    late_since = sa.func.coalesce(inc.overdue_at, inc.due_at)
    return {
        Bucket.UNASSIGNED: inc.unit_id.is_(None),
        Bucket.OUTSIDE: sa.and_(inc.location_quality == LocationQuality.OUTSIDE.value, untouched),
        Bucket.ESCALATED: inc.status == IncidentStatus.ESCALATED.value,
        Bucket.OVERDUE: sa.and_(
            sa.or_(inc.overdue_at.is_not(None), inc.due_at < now),
            sa.or_(inc.assigned_at.is_(None), inc.assigned_at < late_since),
        ),
        Bucket.REWORKED: inc.status == IncidentStatus.RETURNED.value,
        Bucket.CAMERA: sa.and_(
            inc.reporter_kind == ReporterKind.CAMERA.value,
            inc.status.in_([IncidentStatus.REPORTED.value, IncidentStatus.ASSIGNED.value]),
            untouched,
        ),
        Bucket.NEWEST: sa.and_(inc.reported_at >= now - NEWEST_WINDOW, untouched),
    }


def dispatch_queue(
    session: Session,
    *,
    town_code: str,
    now: datetime,
    cases: CaseFilter = ALL_CASES,
    sort: QueueSort = QueueSort.DEADLINE,
    limit: int = 200,
    scope: sa.ColumnElement[bool] | None = None,
) -> Queue:
    """The active cases of a town that need a person (of ``cases``' platform and category), with
    the count of each bucket.

    ``scope`` is the caller's case filter (``gis.api.security.case_filter``)."""
    if not 1 <= limit <= MAX_QUEUE:
        raise ValidationError(f"limit must be between 1 and {MAX_QUEUE}, got {limit}")
    inc = Incident
    flags = _flags(now)
    where = [*cases.of_town(town_code), is_active(inc.status)]
    if scope is not None:
        where.append(scope)
    any_bucket = sa.or_(*flags.values())
    counts_row = session.execute(
        sa.select(
            sa.func.count().filter(any_bucket).label("total"),
            *(sa.func.count().filter(cond).label(b.value) for b, cond in flags.items()),
        ).where(*where)
    ).one()
    counts = {b.value: int(getattr(counts_row, b.value)) for b in Bucket}
    order: list[Any] = (
        [inc.due_at.asc().nulls_last(), inc.reported_at.asc()]
        if sort is QueueSort.DEADLINE
        else [inc.reported_at.asc()]
    )
    # Only the columns the queue shows: a town's queue can list hundreds of cases, and whole
    # ORM rows (photos, geometry, every timestamp) cost more to build than the query itself.
    query = (
        sa.select(
            inc.id,
            inc.status,
            inc.category_code,
            inc.platform,
            inc.description,
            inc.location_quality,
            inc.reporter_kind,
            inc.grid_code,
            inc.village_code,
            inc.town_code,
            inc.unit_id,
            inc.reported_at,
            inc.due_at,
            Category.name_zh,
            Category.name_en,
            ResponderUnit.name.label("unit_name"),
            sa.func.ST_X(inc.geom).label("lon"),
            sa.func.ST_Y(inc.geom).label("lat"),
            *(cond.label(f"is_{b.value}") for b, cond in flags.items()),
        )
        .join(Category, Category.code == inc.category_code)
        .outerjoin(ResponderUnit, ResponderUnit.id == inc.unit_id)
        .where(*where, any_bucket)
        .order_by(*order, inc.id)
        .limit(limit)
    )
    items = [
        QueueItem(
            id=row.id,
            status=row.status,
            category=row.category_code,
            category_zh=row.name_zh,
            category_en=row.name_en,
            platform=row.platform,
            description=row.description,
            location_quality=row.location_quality,
            reporter_kind=row.reporter_kind,
            grid_code=row.grid_code,
            village_code=row.village_code,
            town_code=row.town_code,
            unit_id=row.unit_id,
            unit_name=row.unit_name,
            reported_at=row.reported_at,
            due_at=row.due_at,
            buckets=[b.value for b in Bucket if getattr(row, f"is_{b.value}")],
            lon=round(float(row.lon), 6),
            lat=round(float(row.lat), 6),
        )
        for row in session.execute(query)
    ]
    return Queue(town_code, now, counts, int(counts_row.total), items)


@dataclass(frozen=True)
class BoardUnit:
    """One unit on the board."""

    id: int
    code: str
    name: str
    unit_type: str
    unit_type_zh: str
    unit_type_en: str
    platform: str
    status: str
    jurisdiction_code: str
    phone: str | None
    lon: float
    lat: float
    updated_at: datetime
    last_fix_at: datetime | None
    open_cases: int


def unit_board(session: Session, *, town_code: str) -> list[BoardUnit]:
    """Every unit of a town (its own, and the county's standing in it) with its newest AVL fix
    and the number of active cases it holds, by code."""
    unit = ResponderUnit
    last_fix = (
        sa.select(sa.func.max(UnitPosition.recorded_at))
        .where(UnitPosition.unit_id == unit.id)
        .scalar_subquery()
    )
    open_cases = (
        sa.select(sa.func.count())
        .where(Incident.unit_id == unit.id, is_active(Incident.status))
        .scalar_subquery()
    )
    query = (
        sa.select(
            unit,
            sa.func.ST_X(unit.geom).label("lon"),
            sa.func.ST_Y(unit.geom).label("lat"),
            last_fix.label("last_fix_at"),
            open_cases.label("open_cases"),
        )
        .where(units_of_town(town_code))
        .order_by(unit.code)
    )
    return [
        BoardUnit(
            id=u.id,
            code=u.code,
            name=u.name,
            unit_type=u.unit_type,
            unit_type_zh=unit_type_names(u.unit_type)[0],
            unit_type_en=unit_type_names(u.unit_type)[1],
            platform=u.platform,
            status=u.status,
            jurisdiction_code=u.jurisdiction_code,
            phone=u.phone,
            lon=round(float(row.lon), 6),
            lat=round(float(row.lat), 6),
            updated_at=u.updated_at,
            last_fix_at=row.last_fix_at,
            open_cases=int(row.open_cases),
        )
        for row in session.execute(query)
        for u in (row[0],)
    ]
