"""The category catalog: category → platform (四个平台) → unit type, time limit and priority."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import UnknownCodeError
from gis.layers.base import Base, CatalogEntry, check_in, load_by_code, parse_key

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CATEGORIES_FILE = DATA_DIR / "categories.json"


class Platform(StrEnum):
    """The four platforms (四个平台) of a town's command room."""

    GOVERNANCE = "governance"  # 综治工作
    MARKET = "market"  # 市场监管
    ENFORCEMENT = "enforcement"  # 综合执法
    SERVICE = "service"  # 便民服务


def parse_platform(value: str | None) -> Platform | None:
    """A platform key (any case), or ``UnknownCodeError`` listing the four: the one parser of
    every path that takes a platform (API queries, services, the CLI)."""
    return parse_key(Platform, value, "platform")


PLATFORM_NAMES_ZH = {
    Platform.GOVERNANCE: "综治工作",
    Platform.MARKET: "市场监管",
    Platform.ENFORCEMENT: "综合执法",
    Platform.SERVICE: "便民服务",
}


class Category(CatalogEntry, Base):
    """One kind of case and how it is handled."""

    __tablename__ = "categories"
    __table_args__ = (
        check_in("platform", Platform),
        sa.CheckConstraint("time_limit_hours > 0", name="positive_time_limit"),
    )

    platform: Mapped[str] = mapped_column(sa.String(20), index=True)
    unit_type: Mapped[str] = mapped_column(sa.String(50))
    time_limit_hours: Mapped[float] = mapped_column(sa.Float)
    working_hours: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=3)
    description: Mapped[str | None] = mapped_column(sa.Text)


def read_catalog(path: Path = CATEGORIES_FILE) -> list[dict[str, Any]]:
    """The categories listed in the catalog file, validated against the platform list."""
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["categories"]
    for row in rows:
        if row["platform"] not in set(Platform):
            raise UnknownCodeError(f"category {row['code']}: unknown platform {row['platform']!r}")
    return rows


def load_catalog(session: Session, path: Path = CATEGORIES_FILE) -> int:
    """Insert or update every category of the catalog file; returns how many were written."""
    return load_by_code(session, Category, read_catalog(path))


def get_category(session: Session, code: str) -> Category:
    """The category with this code, or ``UnknownCodeError`` naming a few that exist."""
    category = session.get(Category, code)
    if category is None:
        known = session.scalars(sa.select(Category.code).order_by(Category.code)).all()
        raise unknown_category(code, known)
    return category


def unknown_category(code: str, known: Sequence[str]) -> UnknownCodeError:
    """The error for a category code that is not in the catalog, listing those that are."""
    return UnknownCodeError(f"unknown category {code!r}; known categories: {', '.join(known)}")


def list_categories(session: Session, *, platform: Platform | None = None) -> list[Category]:
    """All categories (optionally of one platform), by platform then code."""
    query = sa.select(Category).order_by(Category.platform, Category.code)
    if platform is not None:
        query = query.where(Category.platform == platform.value)
    return list(session.scalars(query))
