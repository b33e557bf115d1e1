"""Photos and other media stored by the service: one row per stored file, by content hash.

The bytes live in a media store (``gis.services.media``); this table says what each one is, who
uploaded it, and lets the access rules find the cases that show it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, TZDateTime, utcnow


class Media(Base):
    """A stored photo (EXIF stripped), addressed by the SHA-256 of its stored bytes."""

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(sa.String(50))
    bytes: Mapped[int] = mapped_column(sa.Integer)
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    uploaded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
