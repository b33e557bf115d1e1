"""Hand-made places for the dispatch tests: a made-up county, units, roads and cameras.

Everything sits around lon 117.5, lat 30.5 (in UTM zone 50N, far from the demo county) and is
laid out in metres of EPSG:32650 relative to an origin, so expected answers are easy to state.
Codes start with 99 so they never clash with the demo's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.cameras import Camera
from gis.layers.grids import Grid
from gis.layers.regions import Region
from gis.layers.roads import Road
from gis.layers.units import ResponderUnit
from gis.layers.users import Role
from gis.services.access import Principal

ORIGIN_LON, ORIGIN_LAT = 117.5, 30.5
COUNTY = "990100"
TOWN = "990100001000"
OTHER_TOWN = "990100002000"
VILLAGE = "990100001001"
UTM = "EPSG:32650"
_GEOD = Geod(ellps="WGS84")
_TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
_TO_WGS = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
ORIGIN_X, ORIGIN_Y = _TO_UTM.transform(ORIGIN_LON, ORIGIN_LAT)
# Node ids of the hand-made road graph, far above any demo node id.
NODE_BASE = 9_000_000


def lonlat(x: float, y: float) -> tuple[float, float]:
    """WGS84 lon/lat of a point given in metres east/north of the origin (UTM 50N)."""
    lon, lat = _TO_WGS.transform(ORIGIN_X + x, ORIGIN_Y + y)
    return float(lon), float(lat)


def to_wgs(geom: BaseGeometry) -> BaseGeometry:
    """A geometry in metres from the origin, in WGS84 lon/lat."""
    return shapely.transform(
        geom, lambda x, y: _TO_WGS.transform(ORIGIN_X + x, ORIGIN_Y + y), interleaved=False
    )


def to_utm(geom: BaseGeometry) -> BaseGeometry:
    """A WGS84 geometry in UTM 50N metres (absolute)."""
    return shapely.transform(geom, _TO_UTM.transform, interleaved=False)


def add_regions(session: Session) -> None:
    """A county with two towns (each 10 km square) and one village, around the origin."""
    town_a = Polygon([(-5000, -5000), (5000, -5000), (5000, 5000), (-5000, 5000)])
    town_b = Polygon([(5000, -5000), (15000, -5000), (15000, 5000), (5000, 5000)])
    county = town_a.union(town_b)
    rows = [
        (COUNTY, "Test county", "county", None, county),
        (TOWN, "Test town A", "town", COUNTY, town_a),
        (OTHER_TOWN, "Test town B", "town", COUNTY, town_b),
        (VILLAGE, "Test village", "village", TOWN, town_a),
    ]
    for code, name, level, parent, shape in rows:
        session.add(
            Region(
                code=code,
                name=name,
                level=level,
                parent_code=parent,
                geom=from_shape(MultiPolygon([to_wgs(shape)]), srid=4326),
            )
        )
    session.flush()


def add_unit(
    session: Session,
    code: str,
    x: float,
    y: float,
    *,
    unit_type: str = "police_station",
    platform: str = "governance",
    status: str = "available",
    town: str = TOWN,
) -> ResponderUnit:
    """A unit at (x, y) metres from the origin."""
    unit = ResponderUnit(
        code=code,
        name=f"Unit {code}",
        platform=platform,
        unit_type=unit_type,
        jurisdiction_code=town,
        status=status,
        geom=from_shape(Point(*lonlat(x, y)), srid=4326),
    )
    session.add(unit)
    session.flush()
    return unit


def add_road(
    session: Session,
    points: Iterable[tuple[float, float]],
    source: int,
    target: int,
    *,
    speed_kmh: float,
    oneway: bool = False,
    road_class: str = "primary",
) -> Road:
    """A road through points in metres, with hand-given node ids (offset by NODE_BASE)."""
    line = LineString([lonlat(x, y) for x, y in points])
    road = Road(
        name=None,
        road_class=road_class,
        speed_kmh=speed_kmh,
        oneway=oneway,
        length_m=float(_GEOD.geometry_length(line)),
        source=NODE_BASE + source,
        target=NODE_BASE + target,
        geom=from_shape(line, srid=4326),
    )
    session.add(road)
    session.flush()
    return road


def add_grid(session: Session, code: str, shape: Polygon, *, town: str = TOWN) -> Grid:
    """A current grid of the test village, given in metres from the origin."""
    grid = Grid(
        code=code,
        version=1,
        name=f"Grid {code}",
        village_code=VILLAGE,
        town_code=town,
        geom=from_shape(MultiPolygon([to_wgs(shape)]), srid=4326),
    )
    session.add(grid)
    session.flush()
    return grid


def camera_kwargs(code: str, x: float, y: float, **extra: object) -> dict[str, object]:
    """Keyword arguments for creating a camera at (x, y) metres from the origin."""
    lon, lat = lonlat(x, y)
    return {"code": code, "name": f"Camera {code}", "lon": lon, "lat": lat, **extra}


__all__ = [
    "COUNTY",
    "NODE_BASE",
    "OTHER_TOWN",
    "TOWN",
    "UTM",
    "VILLAGE",
    "Camera",
    "add_grid",
    "add_regions",
    "add_road",
    "add_unit",
    "camera_kwargs",
    "client_as",
    "lonlat",
    "to_utm",
    "to_wgs",
]


def client_as(
    app: Any, role: Role, *, unit_id: int | None = None, towns: Sequence[str] | None = None
) -> TestClient:
    """A test client acting as a principal with ``role`` (no token needed), of ``towns``
    (None: every town)."""
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None,
        name=f"test-{role.value}",
        role=role,
        unit_id=unit_id,
        town_codes=None if towns is None else frozenset(towns),
    )
    return TestClient(app)
