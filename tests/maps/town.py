"""A small hand-made town whose every figure is known, built inside the test's transaction.

Far from the demo county (around 111.0°E, 29.0°N) with its own codes, so nothing interferes:

    town T  = [111.00, 111.04] x [29.00, 29.03]   village V1 = west half, V2 = east half
      G1 = [111.00, 111.02] x [29.000, 29.015]  100 households, member 李一
      G2 = [111.00, 111.02] x [29.015, 29.030]  200 households, member 王二
      G3 = [111.02, 111.04] x [29.000, 29.015]    0 households, member 王二
      G4 = [111.02, 111.04] x [29.015, 29.030]  400 households, no member
    town OTHER = [111.04, 111.06] x [29.00, 29.03] with one grid, two cases, a unit, a camera

The period of the figures is October 2026 in China time; ``NOW`` is 2026-11-01 12:00 UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.orm import Session

from gis.geo import sector_polygon
from gis.layers.base import LOCAL_TZ
from gis.layers.cameras import Camera
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.regions import Region
from gis.layers.units import ResponderUnit

COUNTY = "980100"
TOWN = "980100001000"
OTHER_TOWN = "980100002000"
VILLAGE_1 = "980100001001"
VILLAGE_2 = "980100001002"
OTHER_VILLAGE = "980100002001"
TOWN_BOUNDS = (111.00, 29.00, 111.04, 29.03)
SINCE = datetime(2026, 10, 1, tzinfo=LOCAL_TZ)
UNTIL = datetime(2026, 11, 1, tzinfo=LOCAL_TZ)
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    """The figures the maps must show for TOWN over [SINCE, UNTIL) at NOW."""

    period_total: int = 7  # cases reported in the period in TOWN (all platforms)
    open_not_overdue: int = 2  # open now, reported before UNTIL, deadline after NOW
    overdue: int = 2  # open now, reported before UNTIL, deadline before NOW
    units: int = 2
    cameras: int = 2
    grids: int = 4


EXPECTED = Expected()


def _multi(minx: float, miny: float, maxx: float, maxy: float) -> object:
    return from_shape(MultiPolygon([box(minx, miny, maxx, maxy)]), srid=4326)


def _point(lon: float, lat: float) -> object:
    return from_shape(Point(lon, lat), srid=4326)


def _case(
    lon: float,
    lat: float,
    *,
    grid: str,
    town: str = TOWN,
    category: str = "public_security_hazard",
    platform: str = "governance",
    status: str = "assigned",
    reported: datetime,
    due: datetime | None,
    closed: datetime | None = None,
    unit_id: int | None = None,
) -> Incident:
    return Incident(
        category_code=category,
        platform=platform,
        status=status,
        reporter_kind="grid_member",
        geom=_point(lon, lat),
        source_lon=lon,
        source_lat=lat,
        location_quality="inside",
        grid_code=grid,
        town_code=town,
        reported_at=reported,
        due_at=due,
        closed_at=closed,
        unit_id=unit_id,
    )


def build_town(session: Session) -> dict[str, int]:
    """Create the county, towns, grids, members, units, cameras and cases; flushed only."""
    session.add(
        Region(code=COUNTY, name="测试县", level="county", geom=_multi(110.9, 28.9, 111.2, 29.2))
    )
    session.flush()
    session.add_all(
        [
            Region(
                code=TOWN,
                name="高家镇",
                name_en="Gaojia",
                level="town",
                parent_code=COUNTY,
                geom=_multi(*TOWN_BOUNDS),
            ),
            Region(
                code=OTHER_TOWN,
                name="别镇",
                name_en="Other",
                level="town",
                parent_code=COUNTY,
                geom=_multi(111.04, 29.00, 111.06, 29.03),
            ),
        ]
    )
    session.flush()
    session.add_all(
        [
            Region(
                code=VILLAGE_1,
                name="东山村",
                name_en="Dongshan",
                level="village",
                parent_code=TOWN,
                geom=_multi(111.00, 29.00, 111.02, 29.03),
            ),
            Region(
                code=VILLAGE_2,
                name="西溪村",
                level="village",
                parent_code=TOWN,
                geom=_multi(111.02, 29.00, 111.04, 29.03),
            ),
            Region(
                code=OTHER_VILLAGE,
                name="别村",
                level="village",
                parent_code=OTHER_TOWN,
                geom=_multi(111.04, 29.00, 111.06, 29.03),
            ),
        ]
    )
    session.flush()
    grids = (
        ("G1", (111.00, 29.000, 111.02, 29.015), VILLAGE_1, TOWN, 100),
        ("G2", (111.00, 29.015, 111.02, 29.030), VILLAGE_1, TOWN, 200),
        ("G3", (111.02, 29.000, 111.04, 29.015), VILLAGE_2, TOWN, 0),
        ("G4", (111.02, 29.015, 111.04, 29.030), VILLAGE_2, TOWN, 400),
        ("GX", (111.04, 29.000, 111.06, 29.030), OTHER_VILLAGE, OTHER_TOWN, 50),
    )
    for code, bounds, village, town, households in grids:
        session.add(
            Grid(
                code=code,
                version=1,
                name=f"{code}网格",
                village_code=village,
                town_code=town,
                households=households,
                population=households * 3,
                geom=_multi(*bounds),
                valid_from=EPOCH,
            )
        )
    li = GridMember(name="李一", phone="13900000001", town_code=TOWN)
    wang = GridMember(name="王二", phone="13900000002", town_code=TOWN)
    session.add_all([li, wang])
    session.flush()
    session.add_all(
        [
            GridMemberGrid(member_id=li.id, grid_code="G1"),
            GridMemberGrid(member_id=wang.id, grid_code="G2"),
            GridMemberGrid(member_id=wang.id, grid_code="G3"),
        ]
    )
    police = ResponderUnit(
        code="M-PS-1",
        name="高家派出所",
        platform="governance",
        unit_type="police_station",
        jurisdiction_code=TOWN,
        status="available",
        geom=_point(111.005, 29.005),
    )
    market = ResponderUnit(
        code="M-MK-1",
        name="高家市场监管所",
        platform="market",
        unit_type="market_office",
        jurisdiction_code=TOWN,
        status="busy",
        geom=_point(111.025, 29.020),
    )
    other = ResponderUnit(
        code="M-PS-2",
        name="别镇派出所",
        platform="governance",
        unit_type="police_station",
        jurisdiction_code=OTHER_TOWN,
        geom=_point(111.05, 29.01),
    )
    session.add_all([police, market, other])
    for code, kind, status, lon, lat, heading, fov, town in (
        ("M-CAM-1", "fixed", "online", 111.010, 29.010, 45.0, 60.0, TOWN),
        ("M-CAM-2", "dome", "maintenance", 111.030, 29.020, 0.0, 360.0, TOWN),
        ("M-CAM-3", "fixed", "online", 111.050, 29.020, 90.0, 60.0, OTHER_TOWN),
    ):
        session.add(
            Camera(
                code=code,
                name=f"摄像头{code}",
                kind=kind,
                status=status,
                heading_deg=heading,
                fov_deg=fov,
                range_m=150.0,
                town_code=town,
                geom=_point(lon, lat),
                view=from_shape(sector_polygon(lon, lat, heading, fov, 150.0), srid=4326),
            )
        )
    session.flush()
    day = timedelta(days=1)
    oct5 = datetime(2026, 10, 5, 9, tzinfo=LOCAL_TZ)
    cases = [
        # G1: three governance cases, all closed; two on time, one late.
        _case(111.0055, 29.005, grid="G1", status="closed", reported=oct5, due=oct5 + day,
              closed=oct5 + day / 2, unit_id=police.id),
        _case(111.0065, 29.005, grid="G1", status="closed", reported=oct5, due=oct5 + day,
              closed=oct5 + day, unit_id=police.id),
        _case(111.015, 29.010, grid="G1", status="closed", reported=oct5 + 10 * day,
              due=oct5 + 11 * day, closed=oct5 + 13 * day, unit_id=police.id),
        # G2: two market cases, one open in time, one overdue.
        _case(111.010, 29.020, grid="G2", category="food_safety", platform="market",
              status="in_progress", reported=oct5 + 20 * day, due=FAR_FUTURE, unit_id=market.id),
        _case(111.011, 29.021, grid="G2", category="food_safety", platform="market",
              status="assigned", reported=oct5 + 21 * day, due=oct5 + 22 * day),
        # G3: an enforcement case, overdue; G4: one service case, open in time.
        _case(111.030, 29.005, grid="G3", category="noise_nuisance", platform="enforcement",
              status="accepted", reported=oct5 + 2 * day, due=oct5 + 5 * day),
        _case(111.030, 29.025, grid="G4", category="elderly_card", platform="service",
              status="closed", reported=oct5 + 3 * day, due=oct5 + 4 * day,
              closed=oct5 + 3 * day),
        # Before the period: open and in time, so on the open layer but not in the period.
        _case(111.001, 29.001, grid="G1", status="reported",
              reported=datetime(2026, 9, 15, tzinfo=LOCAL_TZ), due=FAR_FUTURE),
        # After the period: on no layer.
        _case(111.002, 29.002, grid="G1", status="assigned",
              reported=datetime(2026, 11, 5, tzinfo=LOCAL_TZ), due=FAR_FUTURE),
        # The other town: on no layer of TOWN.
        _case(111.05, 29.01, grid="GX", town=OTHER_TOWN, status="assigned", reported=oct5,
              due=EPOCH),
        _case(111.05, 29.02, grid="GX", town=OTHER_TOWN, status="closed", reported=oct5,
              due=oct5 + day, closed=oct5),
    ]  # fmt: skip
    session.add_all(cases)
    session.flush()
    # The statistics (and so the map's figures) read the event log: report, then resolve and
    # close for the closed cases.
    for case in cases:
        events = [("report", case.reported_at, None, "reported")]
        if case.closed_at is not None:
            events += [
                ("resolve", case.closed_at, "in_progress", "resolved"),
                ("close", case.closed_at, "resolved", "closed"),
            ]
        session.add_all(
            IncidentEvent(
                incident_id=case.id, at=at, actor="test", action=action, from_status=before,
                to_status=after,
            )
            for action, at, before, after in events
        )  # fmt: skip
    session.flush()
    return {"police": police.id, "market": market.id}


def page_text(html: str) -> str:
    """A page's text with its tags taken out (the title marks its figures with spans)."""
    return re.sub(r"<[^>]+>", "", html)
