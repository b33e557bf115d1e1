"""A small hand-made county for workflow, statistics and errand tests, built in the test's
transaction, with helpers that write cases and their history the way intake and the workflow do.

Around 111.0°E, 31.0°N, far from the demo county and from the intake fixtures:

    town T1 = [111.00, 111.02] x [31.00, 31.01]      town T2 = [111.02, 111.04] x [31.00, 31.01]
      grid G1 = [111.00, 111.01] x [31.00, 31.01]      grid G3 = [111.02, 111.035] x [31.00, 31.01]
      grid G2 = [111.01, 111.02] x [31.00, 31.01]      [111.035, 111.04] has no grid
    members: M1 serves G1, M2 serves G2, M3 serves G3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.orm import Session

from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.regions import Region
from gis.layers.units import ResponderUnit
from gis.services.workflow import apply_action

COUNTY = "980100"
TOWN_1 = "980100001000"
TOWN_2 = "980100002000"
VILLAGE_1 = "980100001001"
VILLAGE_2 = "980100002001"
G1, G2, G3 = "W1-G1", "W1-G2", "W2-G3"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
GRID_CENTRES = {G1: (111.005, 31.005), G2: (111.015, 31.005), G3: (111.03, 31.005)}
GRID_TOWN = {G1: (VILLAGE_1, TOWN_1), G2: (VILLAGE_1, TOWN_1), G3: (VILLAGE_2, TOWN_2)}


def _multi(minx: float, miny: float, maxx: float, maxy: float) -> object:
    return from_shape(MultiPolygon([box(minx, miny, maxx, maxy)]), srid=4326)


def _point(lon: float, lat: float) -> object:
    return from_shape(Point(lon, lat), srid=4326)


@dataclass
class County:
    """Ids of what ``build_county`` created."""

    members: dict[str, int]  # grid code → member id
    units: dict[str, int]


def build_county(session: Session) -> County:
    """Create the county above with grids, members and units; flushed, not committed."""
    session.add(
        Region(code=COUNTY, name="工作流县", level="county", geom=_multi(110.9, 30.9, 111.1, 31.1))
    )
    session.flush()
    for code, name, bounds in (
        (TOWN_1, "甲镇", (111.00, 31.00, 111.02, 31.01)),
        (TOWN_2, "乙镇", (111.02, 31.00, 111.04, 31.01)),
    ):
        session.add(
            Region(code=code, name=name, level="town", parent_code=COUNTY, geom=_multi(*bounds))
        )
    session.flush()
    for code, name, town, bounds in (
        (VILLAGE_1, "甲村", TOWN_1, (111.00, 31.00, 111.02, 31.01)),
        (VILLAGE_2, "乙村", TOWN_2, (111.02, 31.00, 111.04, 31.01)),
    ):
        session.add(
            Region(code=code, name=name, level="village", parent_code=town, geom=_multi(*bounds))
        )
    session.flush()
    for code, bounds in (
        (G1, (111.00, 31.00, 111.01, 31.01)),
        (G2, (111.01, 31.00, 111.02, 31.01)),
        (G3, (111.02, 31.00, 111.035, 31.01)),  # T2's east strip has no grid
    ):
        village, town = GRID_TOWN[code]
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
    members = {}
    for code, name in ((G1, "一号网格员"), (G2, "二号网格员"), (G3, "三号网格员")):
        member = GridMember(name=name, phone="13900000000", town_code=GRID_TOWN[code][1])
        session.add(member)
        session.flush()
        session.add(GridMemberGrid(member_id=member.id, grid_code=code))
        members[code] = member.id
    units = {
        "police_t1": ResponderUnit(
            code="W-PS-1",
            name="甲镇派出所",
            platform="governance",
            unit_type="police_station",
            jurisdiction_code=TOWN_1,
            geom=_point(111.001, 31.005),
        ),
        "market_t1": ResponderUnit(
            code="W-MK-1",
            name="甲镇市场监管所",
            platform="market",
            unit_type="market_office",
            jurisdiction_code=TOWN_1,
            geom=_point(111.011, 31.005),
        ),
        "squad_t2": ResponderUnit(
            code="W-ZF-2",
            name="乙镇综合执法中队",
            platform="enforcement",
            unit_type="enforcement_squad",
            jurisdiction_code=TOWN_2,
            geom=_point(111.03, 31.006),
        ),
    }
    session.add_all(units.values())
    session.flush()
    return County(members=members, units={key: unit.id for key, unit in units.items()})


def add_case(
    session: Session,
    county: County,
    *,
    grid: str,
    reported_at: datetime,
    due_at: datetime,
    category: str = "neighbour_dispute",
    platform: str = "governance",
    unit: str | None = "police_t1",
) -> Incident:
    """A case as intake writes it: the incident plus its report and assign events."""
    lon, lat = GRID_CENTRES[grid]
    village, town = GRID_TOWN[grid]
    incident = Incident(
        category_code=category,
        platform=platform,
        status="assigned" if unit else "reported",
        description="test",
        reporter_kind="grid_member",
        reporter_id=str(county.members[grid]),
        photos=[],
        geom=_point(lon, lat),
        source_crs="EPSG:4326",
        source_lon=lon,
        source_lat=lat,
        location_quality="inside",
        grid_code=grid,
        village_code=village,
        town_code=town,
        county_code=COUNTY,
        member_id=county.members[grid],
        unit_id=county.units[unit] if unit else None,
        reported_at=reported_at,
        assigned_at=reported_at if unit else None,
        due_at=due_at,
        updated_at=reported_at,
    )
    session.add(incident)
    session.flush()
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=reported_at,
            actor="intake",
            action="report",
            from_status=None,
            to_status="reported",
            data={"due_at": due_at.isoformat()},
        )
    )
    if unit:
        session.add(
            IncidentEvent(
                incident_id=incident.id,
                at=reported_at,
                actor="intake",
                action="assign",
                from_status="reported",
                to_status="assigned",
                data={"unit_id": county.units[unit]},
            )
        )
    session.flush()
    return incident


def inject_event(
    session: Session,
    case_id: int,
    action: str,
    at: datetime,
    *,
    status: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Write an event straight into the log, past the database's guard against future-dated
    events (triggers off for this statement only): damage as an old bug or a hand-made SQL
    insert left it. ``status`` is both its from and to status; returns the event id."""
    session.flush()
    session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    event_id = session.execute(
        sa.text(
            "INSERT INTO incident_events "
            "(incident_id, at, actor, action, from_status, to_status, data) "
            "VALUES (:case, :at, 'test:damage', :action, :status, :status, "
            "CAST(:data AS jsonb)) RETURNING id"
        ),
        {
            "case": case_id,
            "at": at,
            "action": action,
            "status": status,
            "data": json.dumps(data or {}),
        },
    ).scalar_one()
    session.execute(sa.text("SET LOCAL session_replication_role = origin"))
    return int(event_id)


def hours_after(hours: float, start: datetime = T0) -> datetime:
    return start + timedelta(hours=hours)


def run_steps(
    session: Session,
    case_id: int,
    steps: list[tuple[float, str, dict[str, Any]]],
    start: datetime = T0,
) -> None:
    for hours, action, extra in steps:
        apply_action(
            session, case_id, action, actor="tester", now=hours_after(hours, start), **extra
        )


def closed_flow(resolve: float, close: float) -> list[tuple[float, str, dict[str, Any]]]:
    return [(0.5, "accept", {}), (1, "start", {}), (resolve, "resolve", {}), (close, "close", {})]


def build_history(session: Session) -> dict[str, int]:
    """The hand-made history described in tests/services/test_stats.py; name → incident id."""
    county = build_county(session)
    ids: dict[str, int] = {}

    def case(name: str, grid: str, *, at: datetime = T0, due_h: float = 72, **kw: Any) -> int:
        incident = add_case(
            session, county, grid=grid, reported_at=at, due_at=hours_after(due_h, at), **kw
        )
        ids[name] = incident.id
        return incident.id

    run_steps(session, case("A", G1), closed_flow(10, 12))
    run_steps(session, case("B", G1), closed_flow(80, 90))
    run_steps(
        session,
        case("C", G1),
        [
            (0.5, "accept", {}),
            (1, "start", {}),
            (48, "extend", {"reason": "survey", "due_at": hours_after(120)}),
            (100, "resolve", {}),
            (110, "close", {}),
        ],
    )
    run_steps(
        session,
        case("D", G1),
        [
            (0.5, "accept", {}),
            (1, "start", {}),
            (5, "resolve", {}),
            (6, "return", {"reason": "no photo"}),
            (7, "start", {}),
            (20, "resolve", {}),
            (24, "close", {}),
        ],
    )
    run_steps(
        session, case("E", G1), [*closed_flow(8, 10), (30, "reopen", {"reason": "it recurred"})]
    )
    run_steps(session, case("G", G1), [(2, "mark_duplicate", {"duplicate_of": ids["A"]})])
    run_steps(session, case("H", G1), [(1, "cancel", {"reason": "prank call"})])
    feb = datetime(2026, 2, 20, 1, 0, tzinfo=UTC)
    run_steps(session, case("L", G1, at=feb), closed_flow(3, 4), start=feb)
    run_steps(
        session,
        case("F", G2),
        [
            (
                1,
                "reassign",
                {"reason": "a scam, not a dispute", "unit_id": county.units["market_t1"]},
            ),
            (2, "accept", {}),
            (3, "start", {}),
            (30, "resolve", {}),
            (40, "close", {}),
        ],
    )
    late_march = datetime(2026, 3, 28, 1, 0, tzinfo=UTC)
    run_steps(
        session, case("I", G2, at=late_march, due_h=720), [(1, "accept", {})], start=late_march
    )
    run_steps(session, case("J", G2), [(0.5, "accept", {}), (1, "start", {}), (70, "resolve", {})])
    squad = {"unit": "squad_t2", "platform": "enforcement", "category": "cooking_fume"}
    run_steps(session, case("K", G3, **squad), closed_flow(5, 6))
    m_at = datetime(2026, 3, 30, 1, 0, tzinfo=UTC)
    run_steps(
        session,
        case("M", G3, at=m_at, **squad),
        [(1, "accept", {}), (60, "start", {}), (70, "resolve", {}), (80, "close", {})],
        start=m_at,
    )
    return ids
