"""Users and their API tokens (hashed at rest, revocable, with expiry)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, TZDateTime, check_in, utcnow


class Role(StrEnum):
    """What a user may do; town-scoped roles act only inside their jurisdiction."""

    GRID_MEMBER = "grid_member"  # report; act on own grid's cases and errands
    UNIT = "unit"  # act on cases assigned to the unit
    DISPATCHER = "dispatcher"  # town-scoped: see and act on the town's cases
    COMMAND_ROOM = "command_room"  # town-scoped: cases, maps, statistics
    PLANNER = "planner"  # boundary plans for their towns
    COUNTY = "county"  # all towns: read, escalate
    ADMIN = "admin"  # everything


class User(Base):
    """A person or system that calls the API."""

    __tablename__ = "users"
    __table_args__ = (check_in("role", Role),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    # The jurisdiction: town codes. Empty for county and admin, who see every town.
    town_codes: Mapped[list[str]] = mapped_column(ARRAY(sa.String(12)), default=list)
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("responder_units.id"))
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("grid_members.id"))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a leaked table grants nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)
