"""Responder units: police stations, market offices, enforcement squads, service centres…"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypedDict, TypeVar, Unpack

import sqlalchemy as sa
from geoalchemy2 import Geography, WKBElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.layers.base import (
    Base,
    Page,
    TZDateTime,
    check_in,
    geometry,
    get_or_raise,
    matching_page,
    utcnow,
)
from gis.layers.categories import Platform

T = TypeVar("T")

# A plain ``geography`` cast. geoalchemy2's default ``Geography`` renders
# ``geography(GEOMETRY,-1)``, an expression the ``(geom::geography)`` GiST index does not match,
# so the KNN ordering scanned and sorted every unit.
GEOGRAPHY = Geography(geometry_type=None)


class UnitStatus(StrEnum):
    """Whether a unit can take a case now."""

    AVAILABLE = "available"
    BUSY = "busy"
    OFF_DUTY = "off_duty"


class UnitType(StrEnum):
    """Kinds of responder unit; the catalog maps categories to these."""

    POLICE_STATION = "police_station"  # 派出所
    TRAFFIC_POLICE = "traffic_police"  # 交警
    EMERGENCY_TEAM = "emergency_team"  # 应急/防汛队
    MARKET_OFFICE = "market_office"  # 市场监管所
    ENFORCEMENT_SQUAD = "enforcement_squad"  # 综合执法中队
    SERVICE_CENTRE = "service_centre"  # 便民服务中心


# What people call each unit type (Chinese, English): the words pages and maps show.
UNIT_TYPE_NAMES: dict[UnitType, tuple[str, str]] = {
    UnitType.POLICE_STATION: ("派出所", "police station"),
    UnitType.TRAFFIC_POLICE: ("交警", "traffic police"),
    UnitType.EMERGENCY_TEAM: ("应急防汛队", "emergency and flood team"),
    UnitType.MARKET_OFFICE: ("市场监管所", "market supervision office"),
    UnitType.ENFORCEMENT_SQUAD: ("综合执法中队", "law-enforcement squad"),
    UnitType.SERVICE_CENTRE: ("便民服务中心", "service centre"),
}


def unit_type_names(unit_type: str) -> tuple[str, str]:
    """The Chinese and English names of a unit type (the raw value for an unknown one)."""
    try:
        return UNIT_TYPE_NAMES[UnitType(unit_type)]
    except ValueError:
        return unit_type, unit_type


class ResponderUnit(Base):
    """A unit that handles cases, with the town (or county) it has jurisdiction over."""

    __tablename__ = "responder_units"
    __table_args__ = (
        check_in("platform", Platform),
        check_in("status", UnitStatus),
        # The unit choice's probes (gis.services.assignment.unit_choice): available units of a
        # type in one jurisdiction.
        sa.Index(
            "ix_responder_units_available",
            "jurisdiction_code",
            "unit_type",
            postgresql_where=sa.text("status = 'available'"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    platform: Mapped[str] = mapped_column(sa.String(20), index=True)
    unit_type: Mapped[str] = mapped_column(sa.String(50), index=True)
    jurisdiction_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    status: Mapped[str] = mapped_column(sa.String(10), default=UnitStatus.AVAILABLE.value)
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    # Distances are ordered by geography; the migration adds a GiST index on geom::geography.
    geom: Mapped[WKBElement] = mapped_column(geometry("POINT"))
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class UnitPosition(Base):
    """One AVL fix of a unit: the track kept beside the unit's current position. Never updated."""

    __tablename__ = "unit_positions"
    __table_args__ = (sa.Index("ix_unit_positions_unit_recorded", "unit_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("responder_units.id", ondelete="CASCADE"))
    geom: Mapped[WKBElement] = mapped_column(geometry("POINT"))
    source_crs: Mapped[str] = mapped_column(sa.String(16), default="EPSG:4326")
    # When the device took the fix, and when the service received it (AVL can arrive late).
    recorded_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


def get_unit(session: Session, unit_id: int) -> ResponderUnit:
    """The unit with this id, or ``NotFoundError``."""
    return get_or_raise(session, ResponderUnit, unit_id, "responder unit")


def list_units(
    session: Session,
    *,
    platform: str | None = None,
    unit_type: str | None = None,
    status: str | None = None,
    jurisdiction_code: str | None = None,
    page: Page,
) -> tuple[list[ResponderUnit], int]:
    """Units matching the filters, by code, with the total number matching."""
    unit = ResponderUnit
    equal = {
        unit.platform: platform,
        unit.unit_type: unit_type,
        unit.status: status,
        unit.jurisdiction_code: jurisdiction_code,
    }
    return matching_page(session, unit, equal, order_by=unit.code, page=page)


def latest_fix_at(session: Session, unit_id: int) -> datetime | None:
    """When the newest AVL fix of a unit was taken, if it has any."""
    return session.scalar(
        sa.select(sa.func.max(UnitPosition.recorded_at)).where(UnitPosition.unit_id == unit_id)
    )


def unit_track(
    session: Session, unit_id: int, *, since: datetime | None = None, limit: int = 1000
) -> list[UnitPosition]:
    """A unit's AVL fixes, oldest first (optionally only those taken since ``since``)."""
    query = sa.select(UnitPosition).where(UnitPosition.unit_id == unit_id)
    if since is not None:
        query = query.where(UnitPosition.recorded_at >= since)
    query = query.order_by(UnitPosition.recorded_at.desc(), UnitPosition.id.desc()).limit(limit)
    return list(reversed(list(session.scalars(query))))


# The columns of a unit in a plain nearest-units row (``nearest_units_query(plain=True)``),
# besides ``lon``, ``lat`` and ``distance_m``.
PLAIN_UNIT_COLUMNS = (
    "id", "code", "name", "platform", "unit_type", "status", "jurisdiction_code", "phone",
)  # fmt: skip


@lru_cache(maxsize=32)
def _nearest_query(
    by_type: bool, by_platform: bool, by_jurisdiction: bool, available_only: bool, plain: bool
) -> sa.Select[Any]:
    """The nearest-units statement for one combination of filters, built once: units as ORM
    objects, or (``plain``) as plain columns with ``lon``/``lat`` for the asyncpg flows.

    Built with bound parameters and reused: building and compiling it on every call cost ten
    times the query itself (bench/dispatch).
    """
    point = sa.cast(
        sa.func.ST_SetSRID(
            sa.func.ST_MakePoint(
                sa.bindparam("lon", type_=sa.Float), sa.bindparam("lat", type_=sa.Float)
            ),
            # Constants, not parameters: the planner must see the SRID and the spheroid flag.
            sa.literal_column("4326"),
        ),
        GEOGRAPHY,
    )
    unit_geog = sa.cast(ResponderUnit.geom, GEOGRAPHY)
    # The same shape as the bare KNN statement (one level, ORDER BY <-> LIMIT), which the
    # planner serves from the GiST index; the spheroid re-rank of the few rows is done in Python.
    # (A nested version let the planner pick a scan of every unit with a sort: 20x slower with
    # 2,000 units, bench/dispatch.)
    distance = sa.func.ST_Distance(unit_geog, point, sa.true()).label("distance_m")
    if plain:
        table = ResponderUnit.__table__
        query = sa.select(
            *(table.c[name] for name in PLAIN_UNIT_COLUMNS),
            sa.func.ST_X(ResponderUnit.geom).label("lon"),
            sa.func.ST_Y(ResponderUnit.geom).label("lat"),
            distance,
        )
    else:
        query = sa.select(ResponderUnit, distance)
    if by_type:
        query = query.where(ResponderUnit.unit_type == sa.bindparam("unit_type", type_=sa.String))
    if by_platform:
        query = query.where(ResponderUnit.platform == sa.bindparam("platform", type_=sa.String))
    if by_jurisdiction:
        query = query.where(
            ResponderUnit.jurisdiction_code.in_(sa.bindparam("jurisdiction_codes", expanding=True))
        )
    if available_only:
        query = query.where(ResponderUnit.status == UnitStatus.AVAILABLE.value)
    return query.order_by(unit_geog.op("<->")(point)).limit(sa.bindparam("pool", type_=sa.Integer))


class UnitFilters(TypedDict, total=False):
    """Which units ``nearest_units`` considers: of a type, of a platform, with jurisdiction over
    one of some regions (None or left out: any), and only available ones (the default)."""

    unit_type: str | None
    platform: str | None
    jurisdiction_codes: Sequence[str] | None
    available_only: bool


def nearest_units_query(
    lon: float, lat: float, *, k: int = 1, plain: bool = False, **filters: Unpack[UnitFilters]
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The statement and parameters of ``nearest_units`` (``plain``: rows of plain columns).

    Candidates come from the KNN operator on ``geom::geography`` (served by its GiST index; the
    sphere distance); they are re-ranked by the exact spheroid distance (``nearest_first``),
    which can swap two units whose distances differ by less than ~0.3 %, so a few more than
    ``k`` are fetched.
    """
    unit_type = filters.get("unit_type")
    platform = filters.get("platform")
    jurisdiction_codes = filters.get("jurisdiction_codes")
    query = _nearest_query(
        unit_type is not None,
        platform is not None,
        jurisdiction_codes is not None,
        filters.get("available_only", True),
        plain,
    )
    params = {
        "lon": float(lon),
        "lat": float(lat),
        "pool": k + 5,
        "unit_type": unit_type,
        "platform": platform,
        "jurisdiction_codes": list(jurisdiction_codes or ()),
    }
    return query, params


def nearest_first(rows: list[T], k: int, key: Callable[[T], tuple[float, int]]) -> list[T]:
    """The ``k`` rows nearest first by ``key`` (distance, unit id): ties by id."""
    rows.sort(key=key)
    return rows[:k]


def nearest_units(
    session: Session, lon: float, lat: float, *, k: int = 1, **filters: Unpack[UnitFilters]
) -> list[tuple[ResponderUnit, float]]:
    """The ``k`` nearest units to a WGS84 point with their distance in metres, nearest first
    (``nearest_units_query``)."""
    query, params = nearest_units_query(lon, lat, k=k, **filters)
    rows = [(unit, float(distance)) for unit, distance in session.execute(query, params).all()]
    return nearest_first(rows, k, lambda row: (row[1], row[0].id))
