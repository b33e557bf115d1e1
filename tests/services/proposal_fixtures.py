"""A lattice village with uneven workload (for redistricting) and roads (for camera siting),
built on the hotspot lattice of ``analytics_fixtures``; flushed, not committed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.services.analytics_fixtures import (
    CELL,
    ORIGIN,
    WEEK_0,
    add_case_points,
    build_lattice,
    grid_code,
)

# The balance table counts cases of the 12 months before this moment (WEEK_0 is inside).
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def uneven_village(session: Session, rows: int = 5, cols: int = 8, *, cases: int = 800) -> None:
    """The lattice with random households and cases crowded into its south-west."""
    build_lattice(session, rows, cols)
    rng = np.random.default_rng(7)
    for r in range(rows):
        for c in range(cols):
            households = int(rng.integers(40, 400))
            session.execute(
                sa.text("UPDATE grids SET households = :h, population = :p WHERE code = :code"),
                {"h": households, "p": int(households * 2.6), "code": grid_code(r, c)},
            )
    points = [
        (ORIGIN[0] + rng.beta(1.5, 4) * cols * CELL, ORIGIN[1] + rng.beta(1.5, 3) * rows * CELL)
        for _ in range(cases)
    ]
    add_case_points(session, points, reported=[WEEK_0] * len(points))
    session.flush()


def add_roads(session: Session, rows: int, cols: int) -> None:
    """East–west and north–south roads along the lattice's grid lines (ids 9_700_001…)."""
    x0, y0 = ORIGIN
    lines = [((x0, y0 + r * CELL), (x0 + cols * CELL, y0 + r * CELL)) for r in range(1, rows)] + [
        ((x0 + c * CELL, y0), (x0 + c * CELL, y0 + rows * CELL)) for c in range(1, cols)
    ]
    for n, ((ax, ay), (bx, by)) in enumerate(lines, start=1):
        session.execute(
            sa.text(
                "INSERT INTO roads (id, name, road_class, speed_kmh, oneway, length_m, geom) "
                "VALUES (:id, :name, 'residential', 30, false, "
                "ST_Length(ST_SetSRID(ST_MakeLine(ST_MakePoint(:ax, :ay), "
                "ST_MakePoint(:bx, :by)), 4326)::geography), "
                "ST_SetSRID(ST_MakeLine(ST_MakePoint(:ax, :ay), ST_MakePoint(:bx, :by)), 4326))"
            ),
            {"id": 9_700_000 + n, "name": f"格路{n}", "ax": ax, "ay": ay, "bx": bx, "by": by},
        )
    session.flush()
