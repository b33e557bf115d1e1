"""False gaps of exact splits (issue 24): plan validation now and as it was, on the demo county.

    python -m bench.plans.splits --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_gaps

For each village, the largest grid is split by a straight line through its centroid at each
angle (shapely ``split``: the pieces share the cut exactly and tile the grid), the other grids
are kept, and the proposal is validated. Every ``gap``/``overlap``/``outside`` error of such a
plan is false. Counted for: the issue's protocol (first 12 villages × 3 angles), every village
× 3 angles, the same with the pieces rounded to 9 decimals, and town plans with every grid of
the town split at once. "before" is validation as it was, run in the same process on the same
proposals: areas by pyproj's geodesic-edge measure and GEOS's floating overlay. Validation time
is summed for both (ratio = before / now; ≥ 1.0: no slower).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from pyproj import Geod
from shapely.geometry import LineString, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import split
from sqlalchemy.orm import Session

from gis import provision
from gis.db import make_engine
from gis.layers.grids import Grid
from gis.layers.plans import PlanScope
from gis.migrations.api import upgrade
from gis.services import planning
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_gaps"
ANGLES = (0.0, 45.0, 100.0)
FALSE = {"gap", "overlap", "outside"}
_GEOD = Geod(ellps="WGS84")


def _geodesic_edge_area_m2(geom: BaseGeometry | None) -> float:
    """The measure validation used before: every edge redrawn as a geodesic."""
    if geom is None or geom.is_empty:
        return 0.0
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(float(area))


@contextmanager
def _as_before() -> Iterator[None]:
    """Validation as it was: geodesic-edge areas and GEOS's floating overlay."""
    saved = planning.area_m2, planning.OVERLAY_GRID_DEG
    planning.area_m2 = _geodesic_edge_area_m2
    planning.OVERLAY_GRID_DEG = None  # type: ignore[assignment]
    try:
        yield
    finally:
        planning.area_m2, planning.OVERLAY_GRID_DEG = saved


def _cut(grid: Polygon, angle: float) -> list[Polygon]:
    centre = grid.centroid
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    line = LineString([(centre.x - dx, centre.y - dy), (centre.x + dx, centre.y + dy)])
    return [p for p in split(grid, line).geoms if isinstance(p, Polygon)]


def _rounded(pieces: list[Polygon]) -> list[Polygon]:
    return [shapely.transform(p, lambda xy: np.round(xy, 9)) for p in pieces]


@dataclass
class Tally:
    """False errors and validation time of one variant over one set of plans."""

    plans: int = 0
    refused: int = 0
    worst_m2: float = 0.0
    seconds: float = 0.0


def _proposal(shapes: dict[str, BaseGeometry]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": dict(mapping(g)), "properties": {"code": c}}
            for c, g in shapes.items()
        ],
    }


def _count(
    session: Session,
    settings: Settings,
    scope: planning.Scope,
    shapes: dict[str, BaseGeometry],
    tally: Tally,
) -> None:
    grids = planning.parse_proposal(_proposal(shapes))
    started = time.perf_counter()
    issues = planning.validate(session, scope, grids, settings=settings)
    tally.seconds += time.perf_counter() - started
    false = [i for i in issues if i["severity"] == "error" and i["kind"] in FALSE]
    tally.plans += 1
    if false:
        tally.refused += 1
        tally.worst_m2 = max(tally.worst_m2, *(float(i["area_m2"]) for i in false))


def _split_plans(
    session: Session,
    villages: list[str],
    round_to_9: bool,
) -> list[tuple[planning.Scope, dict[str, BaseGeometry]]]:
    plans = []
    for village in villages:
        scope = planning.load_scope(session, PlanScope.VILLAGE, village)
        shapes: dict[str, BaseGeometry] = {
            g.code: to_shape(g.geom) for g in planning.current_grids(session, scope)
        }
        code = max(shapes, key=lambda c: shapes[c].area)
        parts = list(shapely.get_parts(shapes[code]))
        if len(parts) != 1:
            continue
        for angle in ANGLES:
            pieces = _cut(parts[0], angle)
            if len(pieces) < 2:
                continue
            if round_to_9:
                pieces = _rounded(pieces)
            proposal = {k: v for k, v in shapes.items() if k != code}
            proposal.update({f"{code}S{i}": p for i, p in enumerate(pieces)})
            plans.append((scope, proposal))
    return plans


def _town_plans(session: Session) -> list[tuple[planning.Scope, dict[str, BaseGeometry]]]:
    towns = session.scalars(
        sa.select(Grid.town_code).where(Grid.valid_to.is_(None)).distinct().order_by("town_code")
    ).all()
    plans = []
    for town in towns:
        scope = planning.load_scope(session, PlanScope.TOWN, town)
        for angle in ANGLES:
            proposal: dict[str, BaseGeometry] = {}
            for grid in planning.current_grids(session, scope):
                shape = to_shape(grid.geom)
                parts = list(shapely.get_parts(shape))
                pieces = _cut(parts[0], angle) if len(parts) == 1 else []
                if len(pieces) < 2:
                    proposal[grid.code] = shape
                    continue
                proposal.update({f"{grid.code}S{i}": p for i, p in enumerate(pieces)})
            plans.append((scope, proposal))
    return plans


def _ensure_demo(url: str) -> Settings:
    provision.up(url, log=print)
    upgrade(url)
    settings = Settings(database_url=url, _env_file=None)
    engine = make_engine(settings)
    with Session(engine) as session:
        if session.scalar(sa.select(sa.func.count()).select_from(Grid)) == 0:
            from gis.layers.categories import load_catalog
            from gis.sample import load_sample

            print("loading the demo county …", flush=True)
            load_catalog(session)
            load_sample(session, seed=20261127, scale=1, end=datetime(2026, 11, 1, tzinfo=UTC))
            session.commit()
    engine.dispose()
    return settings


def main(argv: list[str] | None = None) -> None:
    """Count false gap/overlap/outside errors of exact splits, before and now."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    settings = _ensure_demo(args.database_url)
    engine = make_engine(settings)
    with Session(engine) as session:
        villages = list(
            session.scalars(
                sa.select(Grid.village_code)
                .where(Grid.valid_to.is_(None))
                .group_by(Grid.village_code)
                .order_by(Grid.village_code)
            )
        )
        sets: dict[str, Callable[[], list[tuple[planning.Scope, dict[str, BaseGeometry]]]]] = {
            "issue protocol: 12 villages × 3 angles": lambda: _split_plans(
                session, villages[:12], False
            ),
            f"every village ({len(villages)}) × 3 angles": lambda: _split_plans(
                session, villages, False
            ),
            "the same, pieces rounded to 9 decimals": lambda: _split_plans(session, villages, True),
            "town plans, every grid split (5 towns × 3 angles)": lambda: _town_plans(session),
        }
        print(f"{'plans':<52} {'refused before':>22} {'refused now':>22} {'ms/plan':>15} ratio")
        for name, make in sets.items():
            plans = make()
            before, now = Tally(), Tally()
            for scope, shapes in plans:  # interleaved, so both see the same machine load
                with _as_before():
                    _count(session, settings, scope, shapes, before)
                _count(session, settings, scope, shapes, now)
            print(
                f"{name:<52} {before.refused:>4} of {before.plans:<4} "
                f"({before.worst_m2:>6.1f} m²) {now.refused:>4} of {now.plans:<4} "
                f"({now.worst_m2:>6.1f} m²) {1e3 * before.seconds / before.plans:>6.1f} → "
                f"{1e3 * now.seconds / now.plans:>6.1f} {before.seconds / now.seconds:>5.2f}×",
                flush=True,
            )
        session.rollback()
    engine.dispose()


if __name__ == "__main__":
    main()
