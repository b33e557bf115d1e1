"""Errand runners (跑小二): the service catalog and residents' errand requests with their events."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import UnknownCodeError, ValidationError
from gis.layers.base import (
    Base,
    CatalogEntry,
    LocatedPoint,
    LogEntry,
    Page,
    TZDateTime,
    check_in,
    events_of,
    get_or_raise,
    load_by_code,
    utcnow,
)
from gis.layers.categories import DATA_DIR
from gis.layers.incidents import LocationQuality

SERVICES_FILE = DATA_DIR / "services.json"


class ApprovingLevel(StrEnum):
    """Who approves a service: the village committee, the town, or a county bureau."""

    VILLAGE = "village"
    TOWN = "town"
    COUNTY = "county"


class ErrandStatus(StrEnum):
    """States of an errand; gis.services.errands holds the transition table."""

    REQUESTED = "requested"
    COLLECTING = "collecting"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Service(CatalogEntry, Base):
    """One administrative service a grid member can (or cannot) run for a resident."""

    __tablename__ = "services"
    __table_args__ = (
        check_in("approving_level", ApprovingLevel),
        sa.CheckConstraint("time_limit_days > 0", name="positive_time_limit"),
    )

    approving_level: Mapped[str] = mapped_column(sa.String(10))
    approver: Mapped[str] = mapped_column(sa.String(200))
    proxy_allowed: Mapped[bool] = mapped_column(sa.Boolean)
    # Why a runner may not handle it (e.g. the applicant must appear in person).
    proxy_note: Mapped[str | None] = mapped_column(sa.Text)
    time_limit_days: Mapped[int] = mapped_column(sa.SmallInteger)
    materials: Mapped[list[str]] = mapped_column(JSONB, default=list)
    description: Mapped[str | None] = mapped_column(sa.Text)


class Errand(LocatedPoint, Base):
    """A resident's request, run by the grid member of the grid covering their home."""

    __tablename__ = "errands"
    __table_args__ = (
        check_in("status", ErrandStatus),
        check_in("location_quality", LocationQuality),
        sa.CheckConstraint("applicant_trips >= 0", name="trips_not_negative"),
        sa.Index("ix_errands_town_requested", "town_code", "requested_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    service_code: Mapped[str] = mapped_column(sa.ForeignKey("services.code"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    applicant_name: Mapped[str] = mapped_column(sa.String(100))
    applicant_phone: Mapped[str] = mapped_column(sa.String(32))
    note: Mapped[str | None] = mapped_column(sa.Text)
    requested_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(TZDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    # Trips the applicant made in person; 0 on delivery is a zero-trip (零跑腿) errand.
    applicant_trips: Mapped[int | None] = mapped_column(sa.SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ErrandEvent(LogEntry, Base):
    """One change to an errand: who, when, from which state to which, and why. Never updated."""

    __tablename__ = "errand_events"
    __table_args__ = (sa.Index("ix_errand_events_errand_at", "errand_id", "at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    errand_id: Mapped[int] = mapped_column(sa.ForeignKey("errands.id", ondelete="CASCADE"))


_SERVICE_FIELDS = {
    "code",
    "name_zh",
    "name_en",
    "approving_level",
    "approver",
    "proxy_allowed",
    "proxy_note",
    "time_limit_days",
    "materials",
    "description",
}


def read_services(path: Path = SERVICES_FILE) -> list[dict[str, Any]]:
    """The services listed in the catalog file, checked field by field."""
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["services"]
    for row in rows:
        code = row.get("code", "?")
        missing = _SERVICE_FIELDS - {"proxy_note", "description"} - set(row)
        if missing:
            raise ValidationError(f"service {code}: missing {', '.join(sorted(missing))}")
        unknown = set(row) - _SERVICE_FIELDS
        if unknown:
            raise ValidationError(f"service {code}: unknown fields {', '.join(sorted(unknown))}")
        if row["approving_level"] not in set(ApprovingLevel):
            raise UnknownCodeError(f"service {code}: unknown level {row['approving_level']!r}")
        if not row["proxy_allowed"] and not row.get("proxy_note"):
            raise ValidationError(f"service {code}: say in proxy_note why no runner may do it")
        row.setdefault("proxy_note", None)
        row.setdefault("description", None)
    return rows


def load_services(session: Session, path: Path = SERVICES_FILE) -> int:
    """Insert or update every service of the catalog file; returns how many were written."""
    return load_by_code(session, Service, read_services(path))


def list_services(session: Session, *, proxy_allowed: bool | None = None) -> list[Service]:
    """The service catalog, by code (optionally only those a runner may or may not handle)."""
    query = sa.select(Service).order_by(Service.code)
    if proxy_allowed is not None:
        query = query.where(Service.proxy_allowed.is_(proxy_allowed))
    return list(session.scalars(query))


def get_service(session: Session, code: str) -> Service:
    """The service with this code, or ``UnknownCodeError`` naming those that exist."""
    service = session.get(Service, code)
    if service is None:
        known = session.scalars(sa.select(Service.code).order_by(Service.code)).all()
        if not known:
            raise UnknownCodeError(
                f"unknown service {code!r}: the service catalog is empty; load data/services.json "
                "(gis.layers.errands.load_services, run by `gis db migrate`)"
            )
        raise UnknownCodeError(f"unknown service {code!r}; known services: {', '.join(known)}")
    return service


def get_errand(session: Session, errand_id: int) -> Errand:
    """The errand with this id, or ``NotFoundError``."""
    return get_or_raise(session, Errand, errand_id, "errand")


def list_errand_events(session: Session, errand_id: int) -> list[ErrandEvent]:
    """The errand's events, oldest first."""
    return events_of(session, ErrandEvent, ErrandEvent.errand_id, errand_id)


# Without a page from the caller: the newest 50.
FIRST_50 = Page(limit=50)


def list_errands(
    session: Session,
    *,
    scope: sa.ColumnElement[bool],
    statuses: tuple[str, ...] = (),
    page: Page = FIRST_50,
) -> list[Errand]:
    """Errands inside ``scope`` (a WHERE clause), optionally of some statuses, newest first."""
    query = sa.select(Errand).where(scope)
    if statuses:
        query = query.where(Errand.status.in_(statuses))
    query = query.order_by(Errand.requested_at.desc(), Errand.id.desc())
    return list(session.scalars(page.of(query)))
