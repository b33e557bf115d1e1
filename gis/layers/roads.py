"""The road network, with the columns pgRouting's topology needs."""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import WKBElement
from sqlalchemy.orm import Mapped, mapped_column

from gis.layers.base import Base, geometry

# Default speeds by road class (km/h) when a road file gives a class but no speed.
DEFAULT_SPEEDS_KMH = {
    "motorway": 100.0,
    "trunk": 80.0,
    "primary": 60.0,
    "secondary": 50.0,
    "tertiary": 40.0,
    "residential": 30.0,
    "unclassified": 30.0,
    "service": 20.0,
    "track": 15.0,
}


class Road(Base):
    """One road segment; ``source``/``target`` are topology node ids filled by pgRouting."""

    __tablename__ = "roads"
    __table_args__ = (sa.CheckConstraint("speed_kmh > 0", name="positive_speed"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(100))
    road_class: Mapped[str] = mapped_column(sa.String(30), default="unclassified")
    speed_kmh: Mapped[float] = mapped_column(sa.Float)
    oneway: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    length_m: Mapped[float] = mapped_column(sa.Float)
    source: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    target: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    geom: Mapped[WKBElement] = mapped_column(geometry("LINESTRING"))
