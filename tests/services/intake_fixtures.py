"""A small hand-made county for exact intake cases, built inside the test's transaction.

Far from the demo county (around 110.0°E, 30.0°N), so the demo never interferes:

    town T1 = [110.00, 110.02] x [30.00, 30.02]      town T2 = [110.02, 110.04] x [30.00, 30.02]
      grid A = [110.00, 110.01] x [30.00, 30.01]       grid D = T2 (one grid)
      grid B = [110.01, 110.02] x [30.00, 30.01]
      grid C = [110.00, 110.01] x [30.01, 30.02]
      the quadrant [110.01, 110.02] x [30.01, 30.02] has no grid: a gap inside T1

A, B and C meet at the vertex (110.01, 30.01); A and B share the edge lon = 110.01.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.geo import sector_polygon
from gis.layers.cameras import Camera
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident
from gis.layers.regions import Region
from gis.layers.units import ResponderUnit
from gis.services.intake import IncidentReport

COUNTY = "990100"
TOWN_1 = "990100001000"
TOWN_2 = "990100002000"
VILLAGE_1 = "990100001001"
VILLAGE_2 = "990100002001"
GRID_A, GRID_B, GRID_C, GRID_D = "T1-A", "T1-B", "T1-C", "T2-D"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _multi(minx: float, miny: float, maxx: float, maxy: float) -> object:
    return from_shape(MultiPolygon([box(minx, miny, maxx, maxy)]), srid=4326)


def _point(lon: float, lat: float) -> object:
    return from_shape(Point(lon, lat), srid=4326)


@dataclass
class Area:
    """Ids of what ``build_area`` created."""

    member_a: int
    units: dict[str, int]
    camera: int


def build_area(session: Session) -> Area:
    """Create the county above with grids, a member, units and a camera; flushed, not committed."""
    session.add(
        Region(code=COUNTY, name="测试县", level="county", geom=_multi(109.9, 29.9, 110.1, 30.1))
    )
    session.flush()
    session.add_all(
        [
            Region(
                code=TOWN_1,
                name="一号镇",
                level="town",
                parent_code=COUNTY,
                geom=_multi(110.00, 30.00, 110.02, 30.02),
            ),
            Region(
                code=TOWN_2,
                name="二号镇",
                level="town",
                parent_code=COUNTY,
                geom=_multi(110.02, 30.00, 110.04, 30.02),
            ),
        ]
    )
    session.flush()
    session.add_all(
        [
            Region(
                code=VILLAGE_1,
                name="一村",
                level="village",
                parent_code=TOWN_1,
                geom=_multi(110.00, 30.00, 110.02, 30.02),
            ),
            Region(
                code=VILLAGE_2,
                name="二村",
                level="village",
                parent_code=TOWN_2,
                geom=_multi(110.02, 30.00, 110.04, 30.02),
            ),
        ]
    )
    session.flush()
    for code, bounds, village, town in (
        (GRID_A, (110.00, 30.00, 110.01, 30.01), VILLAGE_1, TOWN_1),
        (GRID_B, (110.01, 30.00, 110.02, 30.01), VILLAGE_1, TOWN_1),
        (GRID_C, (110.00, 30.01, 110.01, 30.02), VILLAGE_1, TOWN_1),
        (GRID_D, (110.02, 30.00, 110.04, 30.02), VILLAGE_2, TOWN_2),
    ):
        session.add(
            Grid(
                code=code,
                version=1,
                name=f"网格{code}",
                village_code=village,
                town_code=town,
                geom=_multi(*bounds),
                valid_from=EPOCH,
            )
        )
    member = GridMember(name="张网格", phone="13800000000", town_code=TOWN_1)
    session.add(member)
    session.flush()
    session.add(GridMemberGrid(member_id=member.id, grid_code=GRID_A))
    units = {
        # T1's police station sits at T1's west edge; T2's is just across the town border, so
        # for points in T1's east it is nearer — and must not be chosen (属地管理).
        "police_t1": ResponderUnit(
            code="T-PS-1",
            name="一号镇派出所",
            platform="governance",
            unit_type="police_station",
            jurisdiction_code=TOWN_1,
            geom=_point(110.001, 30.005),
        ),
        "police_t2": ResponderUnit(
            code="T-PS-2",
            name="二号镇派出所",
            platform="governance",
            unit_type="police_station",
            jurisdiction_code=TOWN_2,
            geom=_point(110.021, 30.005),
        ),
        "traffic_county": ResponderUnit(
            code="T-TP-1",
            name="测试县交警大队",
            platform="governance",
            unit_type="traffic_police",
            jurisdiction_code=COUNTY,
            geom=_point(110.03, 30.015),
        ),
        "market_t2": ResponderUnit(
            code="T-MK-2",
            name="二号镇市场监管所",
            platform="market",
            unit_type="market_office",
            jurisdiction_code=TOWN_2,
            geom=_point(110.03, 30.01),
        ),
    }
    session.add_all(units.values())
    camera = Camera(
        code="T-CAM-1",
        name="一号镇路口",
        kind="dome",
        heading_deg=0.0,
        fov_deg=360.0,
        range_m=200.0,
        town_code=TOWN_1,
        geom=_point(110.005, 30.005),
        view=from_shape(sector_polygon(110.005, 30.005, 0.0, 360.0, 200.0), srid=4326),
    )
    session.add(camera)
    session.flush()
    return Area(
        member_a=member.id,
        units={key: unit.id for key, unit in units.items()},
        camera=camera.id,
    )


@pytest.fixture
def area(session: Session, catalog: int) -> Area:
    """The hand-made county in the test's transaction (with the category catalog)."""
    return build_area(session)


def make_report(
    lon: float,
    lat: float,
    *,
    category: str = "public_security_hazard",
    crs: str = "EPSG:4326",
    **extra: Any,
) -> IncidentReport:
    """A citizen's report at (lon, lat)."""
    return IncidentReport.model_validate(
        {
            "category": category,
            "location": {"lon": lon, "lat": lat, "crs": crs},
            "reporter": {"kind": "citizen", "id": "13900000000"},
            **extra,
        }
    )


@contextmanager
def committed_area(engine: Engine) -> Iterator[None]:
    """The area committed, for tests whose code opens its own connections (CLI, asyncpg, the
    app's own sessions); removed with every incident in it afterwards."""
    with Session(engine) as setup:
        build_area(setup)
        setup.commit()
    try:
        yield
    finally:
        with Session(engine) as cleanup:
            delete_area(cleanup)
            cleanup.commit()


def delete_area(session: Session) -> None:
    """Remove a committed copy of the area and every incident in it (for multi-connection tests)."""
    session.execute(sa.delete(Incident).where(Incident.county_code == COUNTY))
    session.execute(sa.delete(Camera).where(Camera.code.like("T-%")))
    session.execute(sa.delete(ResponderUnit).where(ResponderUnit.code.like("T-%")))
    members = sa.select(GridMember.id).where(GridMember.town_code.in_([TOWN_1, TOWN_2]))
    session.execute(sa.delete(GridMemberGrid).where(GridMemberGrid.member_id.in_(members)))
    session.execute(sa.delete(GridMember).where(GridMember.town_code.in_([TOWN_1, TOWN_2])))
    session.execute(sa.delete(Grid).where(Grid.code.in_([GRID_A, GRID_B, GRID_C, GRID_D])))
    for level in ("village", "town", "county"):
        session.execute(
            sa.delete(Region).where(Region.code.like(f"{COUNTY}%"), Region.level == level)
        )
