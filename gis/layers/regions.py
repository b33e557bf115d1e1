"""Administrative regions: city → county → town (乡镇/街道) → village (行政村/社区)."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from geoalchemy2 import WKBElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import NotFoundError
from gis.layers.base import Base, check_in, geometry


class RegionLevel(StrEnum):
    """Levels of the administrative hierarchy, top down."""

    CITY = "city"
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"


class Region(Base):
    """One administrative area, keyed by its 12-digit code (counties keep their 6-digit code)."""

    __tablename__ = "regions"
    __table_args__ = (check_in("level", RegionLevel),)

    code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    level: Mapped[str] = mapped_column(sa.String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("regions.code", ondelete="RESTRICT"), index=True
    )
    households: Mapped[int | None] = mapped_column(sa.Integer)
    population: Mapped[int | None] = mapped_column(sa.Integer)
    geom: Mapped[WKBElement] = mapped_column(geometry("MULTIPOLYGON"))


def get_region(session: Session, code: str, *, level: RegionLevel | None = None) -> Region:
    """The region with this code (optionally of this level), or ``NotFoundError``."""
    region = session.get(Region, code)
    if region is None or (level is not None and region.level != level):
        what = level.value if level else "region"
        raise NotFoundError(f"no {what} with code {code!r}")
    return region


def list_regions(
    session: Session, *, level: RegionLevel | None = None, parent_code: str | None = None
) -> list[Region]:
    """Regions filtered by level and parent, ordered by code."""
    query = sa.select(Region).order_by(Region.code)
    if level is not None:
        query = query.where(Region.level == level.value)
    if parent_code is not None:
        query = query.where(Region.parent_code == parent_code)
    return list(session.scalars(query))
