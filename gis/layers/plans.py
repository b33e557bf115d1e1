"""Boundary plans (proposed grid redraws) and the audit log of every grid version change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, defer, mapped_column

from gis.errors import NotFoundError
from gis.layers.base import Base, TZDateTime, check_in, utcnow


class PlanStatus(StrEnum):
    """Life of a plan: drafted (editable), submitted for review (frozen until withdrawn), then
    applied, rejected, or overtaken by another change."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPLIED = "applied"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


# A plan not yet decided: it can still be applied or rejected (and superseded by another apply).
PENDING_STATUSES = (PlanStatus.DRAFT.value, PlanStatus.SUBMITTED.value)


class PlanScope(StrEnum):
    """What a plan redraws: the grids of one village, or of every village of a town."""

    VILLAGE = "village"
    TOWN = "town"


class Plan(Base):
    """A proposed set of grids for a village (or town), with its validation and impact report.

    ``based_on_version`` is the grid-version token of the scope when the planner started (see
    ``gis.services.planning.scope_version``); applying fails with 409 if the scope changed since.
    """

    __tablename__ = "plans"
    __table_args__ = (
        check_in("status", PlanStatus),
        check_in("scope_level", PlanScope),
        sa.Index("ix_plans_scope_status", "scope_code", "status"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    scope_level: Mapped[str] = mapped_column(sa.String(10))
    scope_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"))
    title: Mapped[str | None] = mapped_column(sa.String(200))
    # The proposal exactly as normalised from the request (GeoJSON FeatureCollection, WGS84),
    # including repaired geometries, so the preview and the apply use the same shapes.
    proposed: Mapped[dict[str, Any]] = mapped_column(JSONB)
    allow_multipart: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    based_on_version: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(12), default=PlanStatus.DRAFT.value)
    validation: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    balance: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    impact: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    submitted_by: Mapped[str | None] = mapped_column(sa.String(100))
    submitted_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    applied_by: Mapped[str | None] = mapped_column(sa.String(100))
    applied_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    # What the apply did: grid versions created and retired, cases moved.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class GridChangeKind(StrEnum):
    """A grid version came into force or went out of force."""

    CREATED = "created"
    RETIRED = "retired"


class GridChange(Base):
    """One change to one grid version: who made it, when, and through which plan or import."""

    __tablename__ = "grid_changes"
    __table_args__ = (
        check_in("change", GridChangeKind),
        sa.Index("ix_grid_changes_code_at", "code", "at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int] = mapped_column(sa.Integer)
    change: Mapped[str] = mapped_column(sa.String(10))
    at: Mapped[datetime] = mapped_column(TZDateTime)
    actor: Mapped[str] = mapped_column(sa.String(100))
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plans.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(sa.String(20), default="plan")
    note: Mapped[str | None] = mapped_column(sa.Text)


def get_plan(session: Session, plan_id: int, *, for_update: bool = False) -> Plan:
    """The plan with this id (row-locked when ``for_update``), or ``NotFoundError``."""
    query = sa.select(Plan).where(Plan.id == plan_id)
    if for_update:
        # Re-read the row under the lock, even if this session already holds the object.
        query = query.with_for_update().execution_options(populate_existing=True)
    plan = session.scalars(query).one_or_none()
    if plan is None:
        raise NotFoundError(f"no plan with id {plan_id}")
    return plan


def list_plans(
    session: Session,
    *,
    scope_code: str | None = None,
    status: PlanStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Plan]:
    """Plans, newest first, filtered by scope and status."""
    query = sa.select(Plan).order_by(Plan.id.desc()).limit(limit).offset(offset)
    if scope_code is not None:
        query = query.where(Plan.scope_code == scope_code)
    if status is not None:
        query = query.where(Plan.status == status.value)
    return list(session.scalars(query))


def list_grid_changes(session: Session, code: str) -> list[GridChange]:
    """Every recorded change to grid ``code``, oldest first."""
    query = (
        sa.select(GridChange).where(GridChange.code == code).order_by(GridChange.at, GridChange.id)
    )
    return list(session.scalars(query))


class PlanEdit(Base):
    """One gesture of the planner's editor on a draft plan: the proposal before and after it.

    The edits of a plan form its undo history: undo restores ``before`` of the newest edit not
    undone, redo restores ``after`` of the oldest undone one; a new gesture drops the undone ones.
    """

    __tablename__ = "plan_edits"
    __table_args__ = (sa.UniqueConstraint("plan_id", "seq"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    gesture: Mapped[dict[str, Any]] = mapped_column(JSONB)
    before: Mapped[dict[str, Any]] = mapped_column(JSONB)
    after: Mapped[dict[str, Any]] = mapped_column(JSONB)
    undone: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    actor: Mapped[str] = mapped_column(sa.String(100))
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


def list_plan_edits(session: Session, plan_id: int) -> list[PlanEdit]:
    """The editor's gestures on a plan, oldest first (the proposals load when first read)."""
    query = (
        sa.select(PlanEdit)
        .where(PlanEdit.plan_id == plan_id)
        .order_by(PlanEdit.seq)
        .options(defer(PlanEdit.before), defer(PlanEdit.after))
    )
    return list(session.scalars(query))
