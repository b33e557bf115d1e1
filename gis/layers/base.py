"""Declarative base and the column types every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import shapely
import sqlalchemy as sa
from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import to_shape
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from gis.errors import NotFoundError, UnknownCodeError

SRID = 4326

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every table; constraint names are stable so migrations can address them."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def geometry(kind: str) -> Geometry:
    """A ``geom`` column type: EPSG:4326, with a GiST index created by the migration."""
    return Geometry(kind, srid=SRID, spatial_index=True)


# The local time of every date a person reads or a figure is grouped by (China Standard Time).
# The services' SQL writes it as LOCAL_TZ_SQL; the stored facts of the migrations (0005b, 0009)
# spell it out: changing the zone is a migration, not these lines alone.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# ``LOCAL_TZ`` as an SQL literal, for ``AT TIME ZONE`` in the services' statements.
LOCAL_TZ_SQL = f"'{LOCAL_TZ.key}'"


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def check_in(column: str, values: type) -> sa.CheckConstraint:
    """A CHECK constraint limiting ``column`` to the values of a ``StrEnum``."""
    allowed = ", ".join(f"'{member.value}'" for member in values)  # type: ignore[attr-defined]
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


TZDateTime = sa.DateTime(timezone=True)


class CatalogEntry:
    """Columns of an entry of a catalog file (a case category, a service): its code and its
    Chinese and English names; ``load_by_code`` writes the file's entries."""

    # First, as in the tables (sort_order: mixin columns would otherwise come last).
    code: Mapped[str] = mapped_column(sa.String(50), primary_key=True, sort_order=-1)
    name_zh: Mapped[str] = mapped_column(sa.String(100), sort_order=-1)
    name_en: Mapped[str] = mapped_column(sa.String(200), sort_order=-1)


def load_by_code(session: Session, model: Any, rows: list[dict[str, Any]]) -> int:
    """Insert or update catalog entries (rows with the same columns) by code; returns how many
    were written."""
    statement = insert(model).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[model.code],
        set_={column: statement.excluded[column] for column in rows[0] if column != "code"},
    )
    session.execute(statement)
    return len(rows)


class LocatedPoint:
    """Columns of a row placed by point → grid (a case, an errand): the point in WGS84, what the
    sender gave beside it, and the grid, regions and member the point was assigned to."""

    geom: Mapped[WKBElement] = mapped_column(geometry("POINT"))
    source_crs: Mapped[str] = mapped_column(sa.String(16), default="EPSG:4326")
    source_lon: Mapped[float] = mapped_column(sa.Float)
    source_lat: Mapped[float] = mapped_column(sa.Float)
    location_quality: Mapped[str] = mapped_column(sa.String(10))
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("grids.id"))
    grid_code: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    village_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"))
    town_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"))
    county_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"))
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("grid_members.id"), index=True)


class LogEntry:
    """Columns of a workflow log entry (a case's or an errand's event): who, when, from which
    state to which, and why."""

    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(30))
    from_status: Mapped[str | None] = mapped_column(sa.String(20))
    to_status: Mapped[str | None] = mapped_column(sa.String(20))
    note: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


def same_columns(model: type[Base], source: object) -> dict[str, Any]:
    """``source``'s attributes that ``model`` has a column of the same name for, by name: what a
    row keeps of a request as sent."""
    names = (attribute.key for attribute in sa.inspect(model).column_attrs)
    return {name: getattr(source, name) for name in names if hasattr(source, name)}


def query_point(lon: float, lat: float) -> sa.ColumnElement[Any]:
    """A WGS84 point built server-side from bound parameters (never formatted into SQL)."""
    return sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), SRID)


def point_lonlat(geom: WKBElement) -> tuple[float, float]:
    """The lon/lat of a stored point geometry."""
    lon, lat = shapely.get_coordinates(to_shape(geom))[0]
    return float(lon), float(lat)


KeyT = TypeVar("KeyT", bound=StrEnum)
RowT = TypeVar("RowT")
SelectT = TypeVar("SelectT", bound=sa.Select[*tuple[Any, ...]])


def parse_key(
    enum: type[KeyT], value: str | None, what: str, plural: str | None = None
) -> KeyT | None:
    """``value`` (any case) as a member of ``enum``, None for None, or ``UnknownCodeError``
    listing the members: the one parser of every enum a request names (platform, unit type…)."""
    if value is None:
        return None
    try:
        return enum(value.strip().lower())
    except ValueError:
        known = ", ".join(member.value for member in enum)
        many = plural or f"{what}s"
        raise UnknownCodeError(f"unknown {what} {value!r}; known {many}: {known}") from None


def get_or_raise(session: Session, model: type[RowT], key: Any, what: str) -> RowT:
    """The row of ``model`` with primary key ``key``, or ``NotFoundError`` ("no <what> with id")."""
    row = session.get(model, key)
    if row is None:
        raise NotFoundError(f"no {what} with id {key}")
    return row


def events_of(session: Session, event: Any, owner: Any, key: Any) -> list[Any]:
    """The events of one record (``owner == key``), oldest first."""
    query = sa.select(event).where(owner == key).order_by(event.at, event.id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class Page:
    """Which rows of a listing: at most ``limit`` (None: no limit) after the first ``offset``;
    the API builds it once per request (``gis.api.deps.PageDep``)."""

    limit: int | None = None
    offset: int = 0

    def of(self, query: SelectT) -> SelectT:
        """``query`` cut to this page (it must already be in a stable order)."""
        query = query.offset(self.offset)
        return query if self.limit is None else query.limit(self.limit)


def matching_page(
    session: Session,
    model: type[RowT],
    equal: dict[Any, Any],
    *,
    order_by: Any,
    page: Page,
) -> tuple[list[RowT], int]:
    """One page of the rows of ``model`` whose columns equal the given values (a None value is
    no filter), in ``order_by`` order, and how many rows match in all."""
    query = sa.select(model).where(
        *(col == value for col, value in equal.items() if value is not None)
    )
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    return list(session.scalars(page.of(query.order_by(order_by)))), int(total)
