"""A lattice town for the hotspot statistics, built inside the test's transaction.

Far from the demo county and the other hand-made towns (around 112.0°E, 28.0°N):

    county 970100; town L = 970100001000 with one village, divided into ``rows`` x ``cols``
    square grids of 0.005° (about 490 m x 555 m), named L-rr-cc from the south-west corner;
    town ONE = 970100002000 east of it, with a single grid.

Cases are placed at the centre of their grid, one row per case, reported in the given week.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy.orm import Session

from gis.layers.base import LOCAL_TZ
from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.regions import Region

COUNTY = "970100"
TOWN = "970100001000"
VILLAGE = "970100001001"
ONE_GRID_TOWN = "970100002000"
ONE_GRID_VILLAGE = "970100002001"
ORIGIN = (112.0, 28.0)
CELL = 0.005
# Monday 2026-01-05 in China time: week 0 of the cases.
WEEK_0 = datetime(2026, 1, 5, tzinfo=LOCAL_TZ)
EPOCH = datetime(2020, 1, 1, tzinfo=LOCAL_TZ)


def grid_code(row: int, col: int) -> str:
    """The code of the lattice grid in row ``row`` (from the south) and column ``col``."""
    return f"L-{row:02d}-{col:02d}"


def _multi(minx: float, miny: float, maxx: float, maxy: float) -> object:
    return from_shape(MultiPolygon([box(minx, miny, maxx, maxy)]), srid=4326)


def build_lattice(session: Session, rows: int, cols: int) -> None:
    """The county, the lattice town and the one-grid town; flushed, not committed."""
    x0, y0 = ORIGIN
    width, height = cols * CELL, rows * CELL
    session.add(
        Region(code=COUNTY, name="格子县", level="county", geom=_multi(x0, y0, x0 + 1, y0 + 1))
    )
    session.flush()
    towns = (
        (TOWN, VILLAGE, "格子镇", (x0, y0, x0 + width, y0 + height)),
        (ONE_GRID_TOWN, ONE_GRID_VILLAGE, "独格镇", (x0 + width, y0, x0 + width + CELL, y0 + CELL)),
    )
    for town, _, name, bounds in towns:
        session.add(
            Region(code=town, name=name, level="town", parent_code=COUNTY, geom=_multi(*bounds))
        )
    session.flush()
    for town, village, name, bounds in towns:
        session.add(
            Region(
                code=village, name=name + "村", level="village", parent_code=town,
                geom=_multi(*bounds),
            )
        )  # fmt: skip
    session.flush()
    grids = [
        {
            "code": grid_code(r, c),
            "version": 1,
            "name": f"格{r}-{c}",
            "village_code": VILLAGE,
            "town_code": TOWN,
            "geom": _multi(x0 + c * CELL, y0 + r * CELL, x0 + (c + 1) * CELL, y0 + (r + 1) * CELL),
            "valid_from": EPOCH,
        }
        for r in range(rows)
        for c in range(cols)
    ]
    grids.append(
        {
            "code": "ONE-1",
            "version": 1,
            "name": "独格",
            "village_code": ONE_GRID_VILLAGE,
            "town_code": ONE_GRID_TOWN,
            "geom": _multi(*towns[1][3]),
            "valid_from": EPOCH,
        }
    )
    session.execute(sa.insert(Grid), grids)


def add_cases(
    session: Session,
    counts: npt.ArrayLike,
    *,
    week: int = 0,
    category: str = "public_security_hazard",
    platform: str = "governance",
    status: str = "closed",
) -> None:
    """``counts[r][c]`` cases in lattice grid (r, c), reported in week ``week``."""
    matrix = np.asarray(counts, dtype=np.int64)
    reported = WEEK_0 + timedelta(weeks=week, days=2)
    rows: list[dict[str, object]] = []
    for (r, c), n in np.ndenumerate(matrix):
        lon = ORIGIN[0] + (c + 0.5) * CELL
        lat = ORIGIN[1] + (r + 0.5) * CELL
        rows.extend(
            _case(lon, lat, grid_code(r, c), reported, category, platform, status)
            for _ in range(int(n))
        )
    if rows:
        session.execute(sa.insert(Incident), rows)


def add_case_points(
    session: Session,
    points: Sequence[tuple[float, float]],
    *,
    reported: Sequence[datetime],
    category: str = "noise_nuisance",
    platform: str = "enforcement",
    status: str = "closed",
) -> list[int]:
    """One case per point (anywhere in the lattice town), reported at the given times; ids."""
    x0, y0 = ORIGIN
    rows = [
        _case(
            lon,
            lat,
            grid_code(int((lat - y0) // CELL), int((lon - x0) // CELL)),
            at,
            category,
            platform,
            status,
        )
        for (lon, lat), at in zip(points, reported, strict=True)
    ]
    return list(session.scalars(sa.insert(Incident).returning(Incident.id), rows))


def _case(
    lon: float,
    lat: float,
    grid: str,
    reported: datetime,
    category: str,
    platform: str,
    status: str,
) -> dict[str, object]:
    return {
        "category_code": category,
        "platform": platform,
        "status": status,
        "reporter_kind": "grid_member",
        "geom": f"SRID=4326;POINT({lon} {lat})",
        "source_lon": lon,
        "source_lat": lat,
        "location_quality": "inside",
        "grid_code": grid,
        "town_code": TOWN,
        "reported_at": reported,
        "due_at": reported + timedelta(days=3),
        "closed_at": reported + timedelta(days=1) if status == "closed" else None,
    }
