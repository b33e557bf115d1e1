"""The record of ledger imports: who imported which file of units, cameras or members, and when."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, TZDateTime, utcnow


class ImportRun(Base):
    """One committed import of a ledger file (dry runs write nothing, so leave no row)."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    filename: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    actor: Mapped[str] = mapped_column(sa.String(100))
    imported_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    added: Mapped[int] = mapped_column(sa.Integer, default=0)
    changed: Mapped[int] = mapped_column(sa.Integer, default=0)
    unchanged: Mapped[int] = mapped_column(sa.Integer, default=0)
    retired: Mapped[int] = mapped_column(sa.Integer, default=0)
    users: Mapped[int] = mapped_column(sa.Integer, default=0)
