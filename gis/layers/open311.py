"""What Open311 clients send beside a case: the reporter's contacts and their own update ids.

The case itself is an ordinary incident (intake assigns it like any other); these rows keep what
GeoReport v2 carries that our incident does not, visible to staff only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, TZDateTime, utcnow


class Open311Request(Base):
    """The Open311 side of a case filed through ``POST requests``: who filed it and how."""

    __tablename__ = "open311_requests"

    incident_id: Mapped[int] = mapped_column(
        sa.ForeignKey("incident_keys.id", ondelete="CASCADE"), primary_key=True
    )
    jurisdiction_id: Mapped[str | None] = mapped_column(sa.String(12))
    # The API user whose api_key filed it.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    email: Mapped[str | None] = mapped_column(sa.String(200))
    phone: Mapped[str | None] = mapped_column(sa.String(50))
    device_id: Mapped[str | None] = mapped_column(sa.String(200))
    account_id: Mapped[str | None] = mapped_column(sa.String(200))
    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    address_string: Mapped[str | None] = mapped_column(sa.String(500))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    received_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Open311Update(Base):
    """A client's ``POST servicerequestupdates``: its own update id, once, and the event it made."""

    __tablename__ = "open311_updates"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["event_id", "event_at"],
            ["incident_events.id", "incident_events.at"],
            # The log's repair may move an event's time (gis.services.eventlog).
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    # The client's id of the update (FixMyStreet's comment id): a repeat is refused.
    client_update_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    incident_id: Mapped[int] = mapped_column(
        sa.ForeignKey("incident_keys.id", ondelete="CASCADE"), index=True
    )
    # The event's key is (id, at): the log is partitioned by month of ``at`` (migration 0012).
    event_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    event_at: Mapped[datetime] = mapped_column(TZDateTime)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    email: Mapped[str | None] = mapped_column(sa.String(200))
    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    media_url: Mapped[str | None] = mapped_column(sa.String(2000))
    # What the client said its clock was: data about the update, never the event's time.
    client_updated_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    received_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
