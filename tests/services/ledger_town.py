"""A hand-made town far from the demo county, with one village, two grids and a few roads,
for the ledger-import tests.

The town is the box lon 121.00–121.10, lat 30.00–30.08 (≈ 9.6 km × 8.9 km); the village covers
it; grid ``-01`` (一网格) is the west half, ``-02`` (二网格) the east half. Roads run along
lat 30.02/30.04/30.06 and lon 121.02/121.05/121.08.
"""

from __future__ import annotations

from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, MultiPolygon, box
from sqlalchemy.orm import Session

from gis.layers.grids import Grid
from gis.layers.regions import Region
from gis.layers.roads import Road

TOWN = "330899201000"
VILLAGE = "330899201001"
GRID_W, GRID_E = f"{VILLAGE}-01", f"{VILLAGE}-02"
WEST, EAST, SOUTH, NORTH = 121.00, 121.10, 30.00, 30.08
MID = (WEST + EAST) / 2
ROAD_LATS = (30.02, 30.04, 30.06)
ROAD_LONS = (121.02, 121.05, 121.08)


def _multi(geom: object) -> object:
    return from_shape(MultiPolygon([geom]), srid=4326)


def make_town(session: Session) -> None:
    """Insert the town, village, grids and roads in the session's transaction."""
    session.add(
        Region(
            code=TOWN, name="导入测试镇", level="town", geom=_multi(box(WEST, SOUTH, EAST, NORTH))
        )
    )
    session.flush()
    session.add(
        Region(
            code=VILLAGE,
            name="导入测试村",
            level="village",
            parent_code=TOWN,
            geom=_multi(box(WEST, SOUTH, EAST, NORTH)),
        )
    )
    session.flush()
    for code, name, geom in (
        (GRID_W, "一网格", box(WEST, SOUTH, MID, NORTH)),
        (GRID_E, "二网格", box(MID, SOUTH, EAST, NORTH)),
    ):
        session.add(
            Grid(code=code, name=name, village_code=VILLAGE, town_code=TOWN, geom=_multi(geom))
        )
    lines = [LineString([(WEST, lat), (EAST, lat)]) for lat in ROAD_LATS]
    lines += [LineString([(lon, SOUTH), (lon, NORTH)]) for lon in ROAD_LONS]
    for index, line in enumerate(lines):
        session.add(
            Road(
                id=9_210_000 + index,
                name=f"测试路{index}",
                speed_kmh=40.0,
                length_m=1000.0,
                geom=from_shape(line, srid=4326),
            )
        )
    session.flush()
