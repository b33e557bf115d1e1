"""The versioned grid write: the one way the grids in force change, for plans and imports alike.

A change to the grids of a scope runs in the caller's transaction, in this order:

1. ``lock_regions``: the scope's region rows ``FOR UPDATE``, in code order, with a lock timeout
   (a timeout is SQLSTATE 55P03, which ``gis.db`` turns into a 409). Every writer takes this lock
   first, so a plan apply and an import of one village queue here instead of deadlocking.
2. ``lock_current``: the grid versions in force that the change may end, in id order.
3. ``write_versions`` with a ``GridWrite``: the retired versions get ``valid_to = now``, the new
   ones ``valid_from = now`` and version = highest so far + 1 (so "the grid at time T" is always
   exactly one version), every change is recorded in ``grid_changes``, and the open cases follow
   the new boundaries at once (``gis.services.reassign``, set-based).

The caller reads the clock after taking the locks, so a change that waited for another is never
dated before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import shapely
import sqlalchemy as sa
from geoalchemy2 import Geography
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session
from tqdm import tqdm

from gis.errors import NotFoundError
from gis.layers.base import SRID
from gis.layers.grids import Grid
from gis.layers.plans import GridChange, GridChangeKind
from gis.layers.regions import Region
from gis.services import reassign
from gis.settings import DEFAULT_SNAP_M

PROGRESS_ABOVE = 2_000  # new versions; smaller writes finish before a bar would be readable
# Above this many touched codes the open cases are re-assigned county-wide in one join, cheaper
# than a huge filter on codes and areas.
WHOLE_COUNTY_ABOVE = 1_000


@dataclass(frozen=True)
class NewGridVersion:
    """One grid version to put in force: every column decided by the caller."""

    code: str
    name: str
    village_code: str
    town_code: str
    households: int
    population: int
    geom: BaseGeometry


@dataclass(frozen=True)
class GridWrite:
    """One change to the grids: the current versions that end and the new versions that start."""

    retire: Sequence[Grid]
    create: Sequence[NewGridVersion]
    actor: str
    source: str  # "plan" or "import", as recorded in grid_changes
    note: str  # on the new versions and on their change records
    reason: str  # on the re-assigned cases' events
    plan_id: int | None = None
    # Where open cases may change grid; default: the new shapes (retired codes are always in).
    cases_area: BaseGeometry | None = None
    snap_m: float = DEFAULT_SNAP_M


@dataclass(frozen=True)
class GridWriteResult:
    """The versions written and ended, and what happened to the open cases."""

    created: list[Grid]
    retired: list[Grid]
    cases: reassign.ReassignResult


@dataclass(frozen=True)
class GridVersionRecord:
    """One dated version of a grid, its area, who brought it into force and who retired it."""

    grid: Grid
    area_m2: float
    geojson: str | None
    retired_by: str | None
    plan_id: int | None
    retired_by_plan_id: int | None


def lock_regions(session: Session, codes: Iterable[str], *, lock_timeout_s: float) -> None:
    """Serialise changes to a scope: lock its region rows in code order, waiting at most
    ``lock_timeout_s`` (then SQLSTATE 55P03, a 409 through ``gis.db``)."""
    session.execute(
        sa.text("SELECT set_config('lock_timeout', :ms, true)"),
        {"ms": f"{int(lock_timeout_s * 1000)}ms"},
    )
    session.execute(
        sa.select(Region.code)
        .where(Region.code.in_(sorted(set(codes))))
        .order_by(Region.code)
        .with_for_update()
    ).all()


def lock_current(session: Session, where: sa.ColumnElement[bool]) -> list[Grid]:
    """The grid versions in force matching ``where``, row-locked in id order (never deadlocks),
    and read after the lock so they are the committed state."""
    ids = session.scalars(
        sa.select(Grid.id).where(Grid.valid_to.is_(None), where).order_by(Grid.id).with_for_update()
    ).all()
    query = sa.select(Grid).where(Grid.id.in_(ids)).execution_options(populate_existing=True)
    return sorted(session.scalars(query), key=lambda g: g.code)


def write_versions(session: Session, write: GridWrite, *, now: datetime) -> GridWriteResult:
    """Retire ``write.retire``, insert ``write.create`` as the next versions, record both and
    re-assign the open cases; the caller holds the locks and owns the transaction."""
    for old in write.retire:
        old.valid_to = now
    session.add_all(_change(old, GridChangeKind.RETIRED, write, now) for old in write.retire)
    # The partial unique index on current codes is checked per statement: retire first.
    session.flush()
    versions = dict(
        session.execute(
            sa.select(Grid.code, sa.func.max(Grid.version))
            .where(Grid.code.in_([g.code for g in write.create]))
            .group_by(Grid.code)
        ).all()
    )
    creating: Iterable[NewGridVersion] = write.create
    if len(write.create) > PROGRESS_ABOVE:
        creating = tqdm(write.create, unit="grid", desc="writing grid versions")
    created = [
        Grid(
            code=new.code,
            version=int(versions.get(new.code) or 0) + 1,
            name=new.name,
            village_code=new.village_code,
            town_code=new.town_code,
            households=new.households,
            population=new.population,
            geom=from_shape(new.geom, srid=SRID),
            valid_from=now,
            valid_to=None,
            created_by=write.actor,
            created_at=now,
            note=write.note,
        )
        for new in creating
    ]
    session.add_all(created)
    session.flush()
    session.add_all(_change(row, GridChangeKind.CREATED, write, now) for row in created)
    session.flush()
    cases = reassign.reassign_cases(
        session,
        actor=write.actor,
        reason=write.reason,
        scope=_case_scope(write),
        snap_m=write.snap_m,
        plan_id=write.plan_id,
        now=now,
    )
    return GridWriteResult(created=created, retired=list(write.retire), cases=cases)


def _case_scope(write: GridWrite) -> reassign.CaseScope:
    """The open cases a write may move: those in the area or on one of the touched codes."""
    codes = sorted({g.code for g in write.retire} | {g.code for g in write.create})
    if len(codes) > WHOLE_COUNTY_ABOVE:
        return reassign.CaseScope()
    area = write.cases_area
    if area is None and write.create:
        area = shapely.union_all([g.geom for g in write.create])
    return reassign.CaseScope(
        area_wkb=None if area is None else shapely.to_wkb(area), grid_codes=codes
    )


def _change(grid: Grid, kind: GridChangeKind, write: GridWrite, now: datetime) -> GridChange:
    return GridChange(
        grid_id=grid.id,
        code=grid.code,
        version=grid.version,
        change=kind.value,
        at=now,
        actor=write.actor,
        plan_id=write.plan_id,
        source=write.source,
        note=write.note,
    )


# --- reading the history ------------------------------------------------------------------------


def grid_history(
    session: Session, code: str, *, with_geometry: bool = False
) -> list[GridVersionRecord]:
    """Every version of grid ``code``, oldest first, or ``NotFoundError``."""
    area = sa.func.ST_Area(sa.cast(Grid.geom, Geography)).label("area_m2")
    shape_json = (sa.func.ST_AsGeoJSON(Grid.geom, 9) if with_geometry else sa.null()).label(
        "geojson"
    )
    rows = session.execute(
        sa.select(Grid, area, shape_json).where(Grid.code == code).order_by(Grid.version)
    ).all()
    if not rows:
        raise NotFoundError(f"no grid with code {code!r}")
    changes = session.scalars(sa.select(GridChange).where(GridChange.code == code)).all()
    created = {c.grid_id: c for c in changes if c.change == GridChangeKind.CREATED.value}
    retired = {c.grid_id: c for c in changes if c.change == GridChangeKind.RETIRED.value}
    by_version = {row[0].version: row[0] for row in rows}
    history = []
    for row in rows:
        grid: Grid = row[0]
        gone = retired.get(grid.id)
        retired_by = gone.actor if gone is not None else None
        if retired_by is None and grid.valid_to is not None:
            # Versions retired before the change log existed: the next version's author.
            successor = by_version.get(grid.version + 1)
            if successor is not None and successor.valid_from == grid.valid_to:
                retired_by = successor.created_by
        made = created.get(grid.id)
        history.append(
            GridVersionRecord(
                grid=grid,
                area_m2=round(float(row.area_m2), 1),
                geojson=row.geojson,
                retired_by=retired_by,
                plan_id=made.plan_id if made is not None else None,
                retired_by_plan_id=gone.plan_id if gone is not None else None,
            )
        )
    return history
