"""The live feed: what screens and other systems are told (``live_events``), and the webhooks
that receive it (``webhooks``, ``webhook_deliveries``, the outbox).

Rows of ``live_events`` are written only by triggers (migration 0010_live) in the transaction of
the change they describe: a case event (``incident_events``), a unit that moved or changed state,
a camera that went on- or offline. Every code path that changes those tables is covered, and a
rolled-back change publishes nothing. One exception, in the same transaction too: a bulk
re-assignment (``gis.services.reassign``) writes its case events with the trigger off and one
``cases.moved`` row per affected town instead, which tells that town's screens to reload. For
every feed row a trigger writes one ``webhook_deliveries`` row per matching webhook, so a delivery
is never lost or invented by a crash.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, TZDateTime, check_in, utcnow

# Every transaction writing live_events holds this shared advisory lock until it ends, so a
# reader that meets a gap in the ids can tell "still being written" from "rolled back".
LIVE_LOCK = (2026, 13)


class EventType(StrEnum):
    """What a subscriber can be told."""

    CASE_CREATED = "case.created"
    CASE_ASSIGNED = "case.assigned"
    CASE_STATUS = "case.status"
    CASE_OVERDUE = "case.overdue"
    UNIT_MOVED = "unit.moved"
    UNIT_STATUS = "unit.status"
    CAMERA_STATUS = "camera.status"
    # Many cases of a town changed grid at once (a bulk re-assignment): reload, don't redraw.
    CASES_MOVED = "cases.moved"


class LiveEvent(Base):
    """One thing a live screen redraws: its type, where, and the fields to draw it."""

    __tablename__ = "live_events"
    __table_args__ = (check_in("type", EventType), sa.Index("ix_live_events_at", "at"))

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime, server_default=sa.text("clock_timestamp()"))
    type: Mapped[str] = mapped_column(sa.String(20))
    town_code: Mapped[str | None] = mapped_column(sa.String(12))
    grid_code: Mapped[str | None] = mapped_column(sa.String(20))
    unit_id: Mapped[int | None] = mapped_column(sa.Integer)
    platform: Mapped[str | None] = mapped_column(sa.String(20))
    incident_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class DeliveryStatus(StrEnum):
    """Where a webhook delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Webhook(Base):
    """Another system's URL and the event types it receives, signed with its secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret: Mapped[str] = mapped_column(sa.String(200))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(sa.String(20)))
    # None: every town.
    town_codes: Mapped[list[str] | None] = mapped_column(ARRAY(sa.String(12)))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event owed to one webhook (the outbox), and how its delivery went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        check_in("status", DeliveryStatus),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_webhook_id", "webhook_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(10), server_default="pending")
    attempts: Mapped[int] = mapped_column(sa.SmallInteger, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        TZDateTime, server_default=sa.text("clock_timestamp()")
    )
    last_status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
