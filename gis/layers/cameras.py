"""Surveillance cameras (天眼) and their view sectors."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import WKBElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import NotFoundError
from gis.layers.base import Base, Page, TZDateTime, check_in, geometry, matching_page, utcnow
from gis.layers.units import GEOGRAPHY


class CameraKind(StrEnum):
    """Fixed cameras see a sector; PTZ and dome cameras can turn to see a full circle."""

    FIXED = "fixed"
    PTZ = "ptz"
    DOME = "dome"


class CameraStatus(StrEnum):
    """Whether the camera's feed is usable."""

    ONLINE = "online"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"


class Camera(Base):
    """A camera at a point, looking along ``heading_deg`` with ``fov_deg`` up to ``range_m``."""

    __tablename__ = "cameras"
    __table_args__ = (
        check_in("kind", CameraKind),
        check_in("status", CameraStatus),
        sa.CheckConstraint("heading_deg >= 0 AND heading_deg < 360", name="heading_range"),
        sa.CheckConstraint("fov_deg > 0 AND fov_deg <= 360", name="fov_range"),
        sa.CheckConstraint("range_m > 0 AND range_m <= 5000", name="range_m_range"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(10), default=CameraKind.FIXED.value)
    status: Mapped[str] = mapped_column(sa.String(12), default=CameraStatus.ONLINE.value)
    heading_deg: Mapped[float] = mapped_column(sa.Float, default=0.0)
    fov_deg: Mapped[float] = mapped_column(sa.Float, default=60.0)
    range_m: Mapped[float] = mapped_column(sa.Float, default=100.0)
    town_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    geom: Mapped[WKBElement] = mapped_column(geometry("POINT"))
    # The view sector, computed in metres from the fields above whenever they change.
    view: Mapped[WKBElement] = mapped_column(geometry("POLYGON"))
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


@lru_cache(maxsize=2)
def _seeing_query(online_only: bool) -> sa.Select[Any]:
    """The cameras-seeing statement, built once with bound parameters (building it per call
    costs more than running it)."""
    point = sa.func.ST_SetSRID(
        sa.func.ST_MakePoint(
            sa.bindparam("lon", type_=sa.Float), sa.bindparam("lat", type_=sa.Float)
        ),
        4326,
    )
    distance = sa.func.ST_Distance(sa.cast(Camera.geom, GEOGRAPHY), sa.cast(point, GEOGRAPHY), True)
    bearing = sa.func.degrees(
        sa.func.ST_Azimuth(sa.cast(Camera.geom, GEOGRAPHY), sa.cast(point, GEOGRAPHY))
    )
    query = sa.select(Camera, distance, bearing).where(sa.func.ST_Covers(Camera.view, point))
    if online_only:
        query = query.where(Camera.status == CameraStatus.ONLINE.value)
    return query.order_by(distance, Camera.code).limit(sa.bindparam("limit", type_=sa.Integer))


def cameras_seeing(
    session: Session, lon: float, lat: float, *, online_only: bool = True, limit: int = 20
) -> list[tuple[Camera, float, float]]:
    """Cameras whose view covers a WGS84 point: (camera, distance m, bearing camera→point),
    nearest first."""
    params = {"lon": float(lon), "lat": float(lat), "limit": limit}
    return [
        (camera, float(d), float(b) if b is not None else 0.0)
        for camera, d, b in session.execute(_seeing_query(online_only), params).all()
    ]


def find_camera(session: Session, code: str) -> Camera | None:
    """The camera with this code, if any."""
    return session.scalar(sa.select(Camera).where(Camera.code == code))


def get_camera(session: Session, code: str) -> Camera:
    """The camera with this code, or ``NotFoundError``."""
    camera = find_camera(session, code)
    if camera is None:
        raise NotFoundError(f"no camera with code {code!r}")
    return camera


def list_cameras(
    session: Session,
    *,
    town_code: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    page: Page,
) -> tuple[list[Camera], int]:
    """Cameras matching the filters, by code, with the total number matching."""
    equal = {Camera.town_code: town_code, Camera.status: status, Camera.kind: kind}
    return matching_page(session, Camera, equal, order_by=Camera.code, page=page)
