"""Grids (网格) with dated versions, and the grid members (网格员) who serve them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy.orm import Mapped, Session, mapped_column

from gis.errors import NotFoundError
from gis.layers.base import Base, TZDateTime, geometry, utcnow


class Grid(Base):
    """One version of a grid. The current version has ``valid_to`` null.

    A grid's identity is its ``code``; each boundary change writes a new row with the next
    ``version`` so that cases keep the version they were assigned to and "which grid covered this
    point on date D" stays answerable.
    """

    __tablename__ = "grids"
    __table_args__ = (
        sa.UniqueConstraint("code", "version", name="uq_grids_code_version"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
        sa.Index(
            "uq_grids_current_code",
            "code",
            unique=True,
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        sa.Index(
            "ix_grids_geom_3857_current",
            "geom_3857",
            postgresql_using="gist",
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20), index=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    name: Mapped[str] = mapped_column(sa.String(100))
    village_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    town_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    households: Mapped[int] = mapped_column(sa.Integer, default=0)
    population: Mapped[int] = mapped_column(sa.Integer, default=0)
    geom: Mapped[WKBElement] = mapped_column(geometry("MULTIPOLYGON"))
    # ``geom`` in Web Mercator, computed by PostgreSQL on every write, for vector tiles (which
    # would otherwise transform every grid they draw on every request). Never loaded unless
    # asked for.
    geom_3857: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=3857, spatial_index=False),
        sa.Computed("ST_Transform(geom, 3857)", persisted=True),
        deferred=True,
    )
    valid_from: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    valid_to: Mapped[datetime | None] = mapped_column(TZDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(sa.Text)


class GridMember(Base):
    """A grid member (网格员): patrols a grid, reports cases and runs errands for residents."""

    __tablename__ = "grid_members"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str] = mapped_column(sa.String(32))
    town_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class GridMemberGrid(Base):
    """Which grid codes a member serves (by code, so it survives boundary versions)."""

    __tablename__ = "grid_member_grids"

    member_id: Mapped[int] = mapped_column(
        sa.ForeignKey("grid_members.id", ondelete="CASCADE"), primary_key=True
    )
    grid_code: Mapped[str] = mapped_column(sa.String(20), primary_key=True, index=True)


def current_grids_query() -> sa.Select[Grid]:
    """Select the current version of every grid."""
    return sa.select(Grid).where(Grid.valid_to.is_(None))


def get_current_grid(session: Session, code: str) -> Grid:
    """The current version of grid ``code``, or ``NotFoundError``."""
    grid = session.scalars(current_grids_query().where(Grid.code == code)).one_or_none()
    if grid is None:
        raise NotFoundError(f"no current grid with code {code!r}")
    return grid


def valid_at(at: datetime) -> sa.ColumnElement[bool]:
    """The condition "this grid version was in force at ``at``"."""
    return sa.and_(Grid.valid_from <= at, sa.or_(Grid.valid_to.is_(None), Grid.valid_to > at))


def list_grids(
    session: Session,
    *,
    at: datetime | None = None,
    town_code: str | None = None,
    village_code: str | None = None,
) -> list[Grid]:
    """Grid versions in force at ``at`` (default: the current ones), by code."""
    query = sa.select(Grid).order_by(Grid.code)
    query = query.where(Grid.valid_to.is_(None) if at is None else valid_at(at))
    if town_code is not None:
        query = query.where(Grid.town_code == town_code)
    if village_code is not None:
        query = query.where(Grid.village_code == village_code)
    return list(session.scalars(query))


def member_names_by_grid(session: Session, codes: list[str]) -> dict[str, list[str]]:
    """Active member names for each grid code."""
    query = (
        sa.select(GridMemberGrid.grid_code, GridMember.name)
        .join(GridMember, GridMember.id == GridMemberGrid.member_id)
        .where(GridMemberGrid.grid_code.in_(codes), GridMember.active.is_(True))
        .order_by(GridMemberGrid.grid_code, GridMember.id)
    )
    names: dict[str, list[str]] = {}
    for code, name in session.execute(query):
        names.setdefault(code, []).append(name)
    return names


def list_members(
    session: Session, *, town_code: str, also: list[int] | None = None
) -> list[GridMember]:
    """The grid members of a town (active first, by name), and any of the ids in ``also`` from
    elsewhere (a plan may name a member of another town)."""
    condition = GridMember.town_code == town_code
    if also:
        condition = sa.or_(condition, GridMember.id.in_(also))
    query = (
        sa.select(GridMember)
        .where(condition)
        .order_by(GridMember.active.desc(), GridMember.name, GridMember.id)
    )
    return list(session.scalars(query))
