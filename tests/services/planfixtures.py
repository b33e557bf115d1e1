"""A hand-made town with one square village split into two grids, for exact planning tests.

The village is the box lon 118.80–118.81, lat 28.90–28.91 near Quzhou (≈ 975 m × 1 112 m).
Its current grids are the west half (``…-W``) and the east half (``…-E``). Proposals are drawn
in the same box, so every expected area and geometry can be computed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box, mapping
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
