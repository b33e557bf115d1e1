"""A hand-made town with one square village split into two grids, for exact planning tests.

The village is the box lon 118.80–118.81, lat 28.90–28.91 near Quzhou (≈ 975 m × 1 112 m).
Its current grids are the west half (``…-W``) and the east half (``…-E``). Proposals are drawn
in the same box, so every expected area and geometry can be computed by hand.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping
from shapely.ops import split
from sqlalchemy.orm import Session

from gis.geo import sector_polygon
from gis.layers.base import SRID
from gis.layers.cameras import Camera
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident
from gis.layers.regions import Region

WEST, EAST, SOUTH, NORTH = 118.80, 118.81, 28.90, 28.91
MID = (WEST + EAST) / 2
T0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
CATEGORY = "public_security_hazard"
_GEOD = Geod(ellps="WGS84")


@dataclass
class Village:
    """Codes and ids of the hand-made town."""

    town: str
    village: str
    west: str
    east: str
    member_w: int
    member_e: int
    cases: dict[str, int]


def multi(geom: Any) -> MultiPolygon:
    """A MultiPolygon of a Polygon."""
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def make_village(session: Session, prefix: str = "330899001") -> Village:
    """Insert the town, the village, its two grids, two members, cases and a camera."""
    town, village = f"{prefix}000", f"{prefix}001"
    session.add(
        Region(code=town, name="测试镇", level="town", geom=_wkb(box(118.79, 28.89, 118.82, 28.92)))
    )
    session.flush()
    session.add(
        Region(
            code=village,
            name="测试村",
            level="village",
            parent_code=town,
            households=400,
            population=1200,
            geom=_wkb(box(WEST, SOUTH, EAST, NORTH)),
        )
    )
    session.flush()
    west, east = f"{village}-W", f"{village}-E"
    for code, geom, hh in (
        (west, box(WEST, SOUTH, MID, NORTH), 200),
        (east, box(MID, SOUTH, EAST, NORTH), 200),
    ):
        session.add(
            Grid(
                code=code,
                version=1,
                name=code,
                village_code=village,
                town_code=town,
                households=hh,
                population=hh * 3,
                geom=_wkb(geom),
                valid_from=T0,
                created_by="seed",
                created_at=T0,
            )
        )
    members = [GridMember(name=n, phone="13800000000", town_code=town) for n in ("王伟", "李娜")]
    session.add_all(members)
    session.flush()
    session.add_all(
        [
            GridMemberGrid(member_id=members[0].id, grid_code=west),
            GridMemberGrid(member_id=members[1].id, grid_code=east),
        ]
    )
    grids = {g.code: g for g in session.query(Grid).filter(Grid.village_code == village)}
    cases = {
        # lon 118.8030 is in the west half now and in the middle third of a 3-way split.
        "open_west_moving": add_case(
            session, 118.8040, 28.905, "assigned", grids[west], members[0].id
        ),
        "open_west_staying": add_case(
            session, 118.8010, 28.905, "in_progress", grids[west], members[0].id
        ),
        "closed_west_moving": add_case(
            session, 118.8040, 28.906, "closed", grids[west], members[0].id
        ),
        "open_east_staying": add_case(
            session, 118.8090, 28.905, "reported", grids[east], members[1].id
        ),
    }
    session.add(
        Camera(
            code=f"CAM-{village}",
            name="村口",
            town_code=town,
            heading_deg=90,
            fov_deg=60,
            range_m=100,
            geom=_wkb(Point(118.8045, 28.901)),
            view=from_shape(sector_polygon(118.8045, 28.901, 90, 60, 100), srid=SRID),
        )
    )
    session.flush()
    return Village(town, village, west, east, members[0].id, members[1].id, cases)


def add_case(
    session: Session, lon: float, lat: float, status: str, grid: Grid, member_id: int
) -> int:
    """Insert a case at (lon, lat) assigned to ``grid`` and ``member_id``; returns its id."""
    incident = Incident(
        category_code=CATEGORY,
        platform="governance",
        status=status,
        reporter_kind="citizen",
        geom=_wkb(Point(lon, lat)),
        source_lon=lon,
        source_lat=lat,
        location_quality="inside",
        grid_id=grid.id,
        grid_code=grid.code,
        village_code=grid.village_code,
        town_code=grid.town_code,
        member_id=member_id,
        reported_at=datetime.fromisoformat("2026-10-01T00:00:00+00:00"),
    )
    session.add(incident)
    session.flush()
    return incident.id


def _wkb(geom: Any) -> Any:
    """WKB for a column: polygons go in as MultiPolygons (regions and grids are MULTIPOLYGON)."""
    if geom.geom_type == "Polygon":
        geom = multi(geom)
    return from_shape(geom, srid=SRID)


def feature(code: str, geom: Any, **props: Any) -> dict[str, Any]:
    """A GeoJSON feature of a proposed grid."""
    return {
        "type": "Feature",
        "geometry": dict(mapping(geom)),
        "properties": {"code": code, "name": props.pop("name", code), **props},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": list(features)}


def thirds(village: Village, **extra: Any) -> dict[str, Any]:
    """A valid proposal: the village split into three vertical strips (W keeps its code)."""
    a, b = WEST + (EAST - WEST) / 3, WEST + 2 * (EAST - WEST) / 3
    return collection(
        feature(village.west, box(WEST, SOUTH, a, NORTH), households=130, **extra),
        feature(f"{village.village}-M", box(a, SOUTH, b, NORTH), households=140, **extra),
        feature(village.east, box(b, SOUTH, EAST, NORTH), households=130, **extra),
    )


# --- cuts, merges and defects of real grids (property tests of validation, issue 24) -------------

REACH = 1.0  # degrees: a cut line this long crosses any grid


def straight_cut(grid: Polygon, through: tuple[float, float], angle_deg: float) -> list[Polygon]:
    """The pieces of ``grid`` cut by the straight line through ``through`` at ``angle_deg``."""
    dx = math.cos(math.radians(angle_deg)) * REACH
    dy = math.sin(math.radians(angle_deg)) * REACH
    (x, y) = through
    line = LineString([(x - dx, y - dy), (x + dx, y + dy)])
    return [p for p in split(grid, line).geoms if isinstance(p, Polygon)]


def zigzag_cut(
    grid: Polygon, start: int, end: int, inner: list[tuple[float, float]]
) -> list[Polygon] | None:
    """Cut ``grid`` from its vertex ``start`` to its vertex ``end`` through the ``inner`` points.

    The two pieces share the cut's vertices exactly, as a map editor draws them; None when the
    zig-zag leaves the grid (the pieces would not be valid).
    """
    ring = list(grid.exterior.coords)[:-1]
    if not 0 <= start < end < len(ring):
        return None
    cut = [ring[start], *inner, ring[end]]
    if not grid.covers(LineString(cut)):
        return None
    first = Polygon(ring[start : end + 1] + inner[::-1])
    second = Polygon(ring[end:] + ring[: start + 1] + inner)
    if not (first.is_valid and second.is_valid and first.area > 0 and second.area > 0):
        return None
    return [first, second]


def random_point_in(grid: Polygon, rng: random.Random) -> tuple[float, float]:
    """A uniformly random point inside ``grid``."""
    min_x, min_y, max_x, max_y = grid.bounds
    while True:
        x, y = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
        if grid.contains(Point(x, y)):
            return (x, y)


def shared_segment(a: Polygon, b: Polygon) -> tuple[tuple[float, float], tuple[float, float]]:
    """The longest straight segment of the boundary ``a`` and ``b`` share."""
    common = shapely.line_merge(a.boundary.intersection(b.boundary))
    pairs = [
        (p, q)
        for part in shapely.get_parts(common)
        if isinstance(part, LineString)
        for p, q in itertools.pairwise(part.coords)
    ]
    if not pairs:
        raise ValueError("the two polygons share no edge")
    (p, q) = max(pairs, key=lambda pq: math.dist(*pq))
    return (p[0], p[1]), (q[0], q[1])


def defect(a: Polygon, b: Polygon, *, into: Polygon, area_m2: float, shape_kind: str) -> Polygon:
    """A rectangle across the shared edge of ``a`` and ``b``, ``area_m2`` of it inside ``into``.

    ``shape_kind`` "notch": ~4 m wide; "strip": along 80 % of the edge, a few centimetres thin —
    the kind of sliver a geodesic-edge measure gets wrong by m². It also reaches ~1 cm back
    across the edge, so that removed from ``a`` it leaves a real gap, and added to ``a``
    (``into=b``) it joins ``a`` and makes a real overlap, of ``area_m2`` either way.
    """
    (x1, y1), (x2, y2) = shared_segment(a, b)
    length = math.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    nx, ny = -uy, ux
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    if not into.contains(Point(mx + nx * 1e-6, my + ny * 1e-6)):
        nx, ny = -nx, -ny
    half = min(2e-5, length / 4) if shape_kind == "notch" else 0.4 * length

    def rectangle(low: float, high: float) -> Polygon:
        return Polygon(
            [
                (mx + sx * ux * half + nx * h, my + sx * uy * half + ny * h)
                for sx, h in ((-1, low), (1, low), (1, high), (-1, high))
            ]
        )

    # The area beyond the edge is linear in the height: measure one trial height (independently
    # of gis.geo) and scale.
    trial = 1e-6
    height = trial * area_m2 / geodesic_area_m2(rectangle(0.0, trial))
    return rectangle(-1e-7, height)


def geodesic_area_m2(geom: Any) -> float:
    """An independent area measure: pyproj's geodesic area after cutting edges to ≤ ~1 m.

    Between vertices 1 m apart a geodesic and the straight lon/lat edge coincide to within
    nanometres, so this measures the region gis.geo.area_m2 measures, by another algorithm.
    Edges are cut here, not by ``shapely.segmentize``: GEOS re-validates a densified polygon
    with a zero buffer, which drops the spikes and slivers this is meant to measure.
    """
    total = 0.0
    for polygon in shapely.get_parts(geom):
        if not isinstance(polygon, Polygon):
            continue  # lines and points of an overlay result have no area
        for ring, sign in [(polygon.exterior, 1.0)] + [(r, -1.0) for r in polygon.interiors]:
            xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
            pieces = [xy[:1]]
            for a, b in itertools.pairwise(xy):
                steps = max(1, math.ceil(math.dist(a, b) / 1e-5))
                pieces.append(a + (b - a) * (np.arange(1, steps + 1) / steps)[:, None])
            dense = np.concatenate(pieces)
            area, _ = _GEOD.polygon_area_perimeter(dense[:, 0], dense[:, 1])
            total += sign * abs(float(area))
    return abs(total)
