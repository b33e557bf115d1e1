"""Administrative regions: city → county → town (乡镇/街道) → village (行政村/社区)."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from geoalchemy2 import WKBElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import NotFoundError, ValidationError
from gis.layers.base import Base, check_in, geometry


class RegionLevel(StrEnum):
    """Levels of the administrative hierarchy, top down."""

    CITY = "city"
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"


class Region(Base):
    """One administrative area, keyed by its 12-digit statistical code (``region_code``)."""

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


# Our codes are the 12-digit statistical codes (统计用区划代码: 330803110000). Real files carry the
# administrative codes, shorter: 6 digits for a city or county (DataV/Amap ``adcode`` 330803),
# 9 for a town (330803110). The digits each level keeps; the rest of the 12 are zeros.
SIGNIFICANT_DIGITS = {
    RegionLevel.CITY: 6,
    RegionLevel.COUNTY: 6,
    RegionLevel.TOWN: 9,
    RegionLevel.VILLAGE: 12,
}


def region_code(code: str, level: str) -> str:
    """The 12-digit code of a region of ``level`` given as a file may carry it: 6 digits for a
    city or county, 9 for a town, or all 12; a ``ValidationError`` saying why for anything else."""
    kind = RegionLevel(level)
    short = SIGNIFICANT_DIGITS[kind]
    text = code.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValidationError(f"{kind.value} code {code!r} is not made of digits")
    if len(text) == short:
        return text.ljust(12, "0")
    if len(text) == 12 and text[short:] == "0" * (12 - short):
        return text
    shapes = f"{short} digits or 12 ending in {12 - short} zeros" if short < 12 else "12 digits"
    raise ValidationError(
        f"{kind.value} code {code!r} has {len(text)} digits; a {kind.value} code has {shapes}"
    )


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
