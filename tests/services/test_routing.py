"""Drive times on a small hand-made road graph with known answers, and topology building.

The graph (metres east/north of the origin; speeds in m/s):

    D(1000,1000)
     |  \\
   5 |    \\ 20  (1414 m)
     |      \\
    A(0,0)---B(1000,0)---C(2000,0)<===E(3000,0)      F(5000,5000)---G(5500,5000)
          10          10          10, one-way E→C         10 (an island)

The incident is halfway between A and B, at (500, 0).
"""

from __future__ import annotations

import math

import pytest
from shapely.geometry import LineString
from sqlalchemy.orm import Session

from gis.layers.roads import Road
from gis.services import dispatch
from gis.services.dispatch import RankBy
from gis.services.routing import RouteOptions, build_topology, drive_times, node_lines
from tests.services.dispatch_fixtures import add_regions, add_road, add_unit, lonlat

A, B, C, D, E, F, G = 1, 2, 3, 4, 5, 6, 7
DIAGONAL = math.hypot(1000, 1000)
OPTIONS = RouteOptions(snap_speed_kmh=5.0, max_snap_m=1000.0, margin_m=3000.0)
WALK = 5 / 3.6
# UTM 50N distorts lengths by ~0.03 % here and road lengths are geodesic: allow a little slack.
SECONDS = 0.5
METRES = 2.0


@pytest.fixture
def graph(session: Session) -> dict[str, int]:
    """The roads of the module docstring and one unit at each interesting place."""
    add_regions(session)
    add_road(session, [(0, 0), (1000, 0)], A, B, speed_kmh=36)
    add_road(session, [(1000, 0), (2000, 0)], B, C, speed_kmh=36)
    add_road(session, [(1000, 0), (1000, 1000)], B, D, speed_kmh=18)
    add_road(session, [(2000, 0), (1000, 1000)], C, D, speed_kmh=72)
    add_road(session, [(3000, 0), (2000, 0)], E, C, speed_kmh=36, oneway=True)
    add_road(session, [(5000, 5000), (5500, 5000)], F, G, speed_kmh=36)
    units = {
        "at_c": add_unit(session, "99R-C", 2000, 0),
        "at_d": add_unit(session, "99R-D", 1000, 1000),
        "at_e": add_unit(session, "99R-E", 3000, 0),
        "island": add_unit(session, "99R-F", 5000, 5000),
        "off_road": add_unit(session, "99R-OFF", 1500, 100),
    }
    return {name: unit.id for name, unit in units.items()}


def test_drive_times_match_hand_computed_answers(session: Session, graph: dict[str, int]) -> None:
    lon, lat = lonlat(500, 0)
    times = drive_times(session, lon, lat, list(graph.values()), options=OPTIONS)
    # C → B → incident: 100 s + 50 s.
    assert times[graph["at_c"]].eta_s == pytest.approx(150, abs=SECONDS)
    assert times[graph["at_c"]].route_m == pytest.approx(1500, abs=METRES)
    # D → C → B → incident (70.7 + 100 + 50 s) beats the slow lane D → B (200 + 50 s).
    assert times[graph["at_d"]].eta_s == pytest.approx(DIAGONAL / 20 + 150, abs=SECONDS)
    assert times[graph["at_d"]].route_m == pytest.approx(DIAGONAL + 1500, abs=METRES)
    # E → C along the one-way, then as from C.
    assert times[graph["at_e"]].eta_s == pytest.approx(250, abs=SECONDS)
    # 100 m on foot to the middle of B–C, then 50 s to B and 50 s to the incident.
    off_road = times[graph["off_road"]]
    assert off_road.eta_s == pytest.approx(100 / WALK + 100, abs=SECONDS)
    assert off_road.route_m == pytest.approx(1100, abs=METRES)
    assert off_road.snap_m == pytest.approx(100, abs=0.5)
    island = times[graph["island"]]
    assert not island.reachable and island.eta_s is None and island.route_m is None


def test_one_way_road_cannot_be_driven_against(session: Session, graph: dict[str, int]) -> None:
    # The incident at E: the only road there leaves E, so nobody can drive to it.
    lon, lat = lonlat(3000, 0)
    times = drive_times(session, lon, lat, [graph["at_c"], graph["at_e"]], options=OPTIONS)
    assert not times[graph["at_c"]].reachable
    assert times[graph["at_e"]].reachable and times[graph["at_e"]].eta_s == pytest.approx(
        0, abs=SECONDS
    )


def test_unit_on_the_incident_segment_drives_along_it(
    session: Session, graph: dict[str, int]
) -> None:
    unit = add_unit(session, "99R-AB", 900, 0)
    lon, lat = lonlat(500, 0)
    times = drive_times(session, lon, lat, [unit.id], options=OPTIONS)
    assert times[unit.id].eta_s == pytest.approx(40, abs=SECONDS)
    assert times[unit.id].route_m == pytest.approx(400, abs=METRES)


def test_nearest_by_drive_time_orders_by_eta_and_puts_unreachable_last(
    session: Session, graph: dict[str, int]
) -> None:
    lon, lat = lonlat(500, 0)
    by_distance = dispatch.nearest_responders(session, lon=lon, lat=lat, k=5)
    by_time = dispatch.nearest_responders(
        session, lon=lon, lat=lat, k=5, by=RankBy.DRIVE_TIME, options=OPTIONS
    )
    ids = {unit_id: name for name, unit_id in graph.items()}
    assert [ids[r.unit.id] for r in by_distance.units] == [
        "off_road",
        "at_d",
        "at_c",
        "at_e",
        "island",
    ]
    assert [ids[r.unit.id] for r in by_time.units] == [
        "at_c",
        "off_road",
        "at_d",
        "at_e",
        "island",
    ]
    assert [r.reachable for r in by_time.units] == [True, True, True, True, False]
    assert by_time.units[-1].eta_s is None
    etas = [r.eta_s for r in by_time.units if r.eta_s is not None]
    assert etas == sorted(etas)


def test_incident_far_from_every_road_makes_every_unit_unreachable(
    session: Session, graph: dict[str, int]
) -> None:
    lon, lat = lonlat(-3000, -3000)  # ~3 km from the nearest road, beyond max_snap_m
    times = drive_times(session, lon, lat, list(graph.values()), options=OPTIONS)
    assert not any(t.reachable for t in times.values())


def test_route_beyond_the_search_box_is_not_invented(
    session: Session, graph: dict[str, int]
) -> None:
    # With no margin the box still spans incident and units, so the C–D detour is found.
    tight = RouteOptions(snap_speed_kmh=5.0, max_snap_m=1000.0, margin_m=0.0)
    lon, lat = lonlat(500, 0)
    times = drive_times(session, lon, lat, [graph["at_d"]], options=tight)
    assert times[graph["at_d"]].eta_s == pytest.approx(DIAGONAL / 20 + 150, abs=SECONDS)


def test_node_lines_splits_at_shared_vertices_and_t_junctions() -> None:
    # A long line through (10, 0) shared with a second one; a third ends on its middle at (50, 0).
    long = LineString([(0, 0), (10, 0), (100, 0)])
    crossing = LineString([(10, -10), (10, 0), (10, 10)])
    tee = LineString([(50, 0.2), (50, 30)])
    bridge = LineString([(70, -10), (70, 10)])  # crosses without a shared vertex: not split
    pieces = node_lines([long, crossing, tee, bridge], tolerance=0.5)
    by_line: dict[int, list[list[tuple[float, float]]]] = {}
    for index, piece in pieces:
        by_line.setdefault(index, []).append([tuple(c) for c in piece.coords])
    assert by_line[0] == [[(0, 0), (10, 0)], [(10, 0), (50, 0.2)], [(50, 0.2), (100, 0)]]
    assert by_line[1] == [[(10, -10), (10, 0)], [(10, 0), (10, 10)]]
    assert by_line[2] == [[(50, 0.2), (50, 30)]]
    assert by_line[3] == [[(70, -10), (70, 10)]]


def test_build_topology_joins_ends_within_the_tolerance(session: Session) -> None:
    first = add_road(session, [(0, 0), (100, 0)], 0, 0, speed_kmh=36)
    # Starts 0.3 m from the first road's end: the same node. Ends 5 m from nothing.
    second = add_road(session, [(100.3, 0), (200, 0)], 0, 0, speed_kmh=36)
    third = add_road(session, [(205, 0), (300, 0)], 0, 0, speed_kmh=36)
    build_topology(session, tolerance_m=0.5)
    for road in (first, second, third):
        session.refresh(road)
    assert first.target == second.source
    assert second.target != third.source
    assert len({first.source, first.target, second.target, third.source, third.target}) == 5


def test_roads_without_topology_are_ignored_by_routing(session: Session) -> None:
    add_regions(session)
    road = add_road(session, [(0, 0), (1000, 0)], 0, 0, speed_kmh=36)
    road.source = road.target = None
    session.flush()
    unit = add_unit(session, "99R-NT", 1000, 0)
    lon, lat = lonlat(0, 0)
    assert not drive_times(session, lon, lat, [unit.id], options=OPTIONS)[unit.id].reachable
    assert session.get(Road, road.id) is not None


def test_demo_county_drive_times_obey_physical_bounds(
    session: Session, demo: dict[str, object]
) -> None:
    import random

    import sqlalchemy as sa

    from gis.layers.regions import Region

    towns = session.execute(
        sa.select(
            sa.func.ST_X(sa.func.ST_PointOnSurface(Region.geom)),
            sa.func.ST_Y(sa.func.ST_PointOnSurface(Region.geom)),
        ).where(Region.level == "village")
    ).all()
    fastest_mps = session.execute(sa.text("SELECT max(speed_kmh) / 3.6 FROM roads")).scalar_one()
    rng = random.Random(11)
    reachable = 0
    for lon, lat in rng.sample(towns, min(10, len(towns))):
        result = dispatch.nearest_responders(
            session, lon=lon, lat=lat, k=5, by=RankBy.DRIVE_TIME, available_only=False
        )
        for ranked in result.units:
            if not ranked.reachable:
                continue
            reachable += 1
            assert ranked.eta_s is not None and ranked.route_m is not None
            # No route is shorter than the geodesic, nor faster than the fastest road allows.
            assert ranked.route_m >= ranked.distance_m - 1.0
            assert ranked.eta_s >= ranked.distance_m / fastest_mps - 1.0
    assert reachable > 0


def test_node_lines_splits_a_line_where_it_loops_back_on_itself() -> None:
    lollipop = LineString([(0, 0), (10, 0), (20, 10), (20, -10), (10, 0)])
    pieces = [list(piece.coords) for _, piece in node_lines([lollipop], tolerance=0.5)]
    assert pieces == [[(0, 0), (10, 0)], [(10, 0), (20, 10), (20, -10), (10, 0)]]


def test_drive_times_agree_with_pgr_withpoints_on_random_places(
    session: Session, graph: dict[str, int]
) -> None:
    """An independent check of the partial-segment and one-way arithmetic: pgRouting's own
    ``pgr_withPoints`` routes from the same snapped points over the forward graph."""
    import random

    import sqlalchemy as sa

    from gis.services.routing import snap_places

    rng = random.Random(3)
    units = [
        add_unit(session, f"99WP{i:02d}", rng.uniform(-100, 3100), rng.uniform(-80, 1080))
        for i in range(12)
    ]
    ids = [u.id for u in units]
    checked = 0
    for _ in range(4):
        lon, lat = lonlat(rng.uniform(0, 3000), rng.uniform(-50, 50))
        ours = drive_times(session, lon, lat, ids, options=OPTIONS)
        place, snaps = snap_places(session, lon, lat, ids, max_snap_m=OPTIONS.max_snap_m)
        assert place is not None
        points = [(0, place)] + [(unit_id, snap) for unit_id, snap in snaps.items()]
        values = ", ".join(
            f"({index + 1}, {snap.edge}, {snap.fraction!r}, 'b')"
            for index, (_, snap) in enumerate(points)
        )
        edges_sql = (
            "SELECT id, source, target, length_m / (speed_kmh / 3.6) AS cost, "
            "CASE WHEN oneway THEN -1 ELSE length_m / (speed_kmh / 3.6) END AS reverse_cost "
            "FROM roads WHERE source IS NOT NULL"
        )
        points_sql = (
            f"SELECT pid, edge_id, fraction, side::char AS side FROM (VALUES {values}) "
            "AS p(pid, edge_id, fraction, side)"
        )
        rows = session.execute(
            sa.text(
                "SELECT start_pid, agg_cost FROM pgr_withPoints(CAST(:edges AS text), "
                "CAST(:points AS text), CAST(:starts AS bigint[]), -1, true, 'b', false)"
            ),
            {
                "edges": edges_sql,
                "points": points_sql,
                "starts": [-(index + 1) for index in range(1, len(points))],
            },
        ).all()
        theirs = {points[-int(pid) - 1][0]: float(cost) for pid, cost in rows}
        for unit_id, snap in snaps.items():
            walk = (snap.snap_m + place.snap_m) / WALK
            if not 0 < snap.fraction < 1:
                # pgr_withPoints turns a point at a segment's end into that vertex and reports
                # its route under the vertex, not the point: nothing to compare by pid.
                continue
            checked += 1
            if unit_id in theirs:
                assert ours[unit_id].eta_s == pytest.approx(theirs[unit_id] + walk, abs=0.01)
            else:
                assert not ours[unit_id].reachable, (unit_id, snap, ours[unit_id])
    assert checked > 20


def _geodesic_length(line: LineString) -> float:
    from pyproj import Geod

    return float(Geod(ellps="WGS84").geometry_length(line))


def test_route_lines_follow_the_chosen_roads(session: Session, graph: dict[str, int]) -> None:
    from gis.services.routing import route_lines

    lon, lat = lonlat(500, 0)
    times = drive_times(session, lon, lat, list(graph.values()), options=OPTIONS)
    lines = route_lines(session, times.values())
    assert graph["island"] not in lines  # unreachable: no route
    for name in ("at_c", "at_d", "at_e", "off_road"):
        line = lines[graph[name]]
        time = times[graph[name]]
        # Starts at the unit, ends at the incident, and is as long as the reported route.
        assert line.coords[-1] == pytest.approx((lon, lat))
        assert _geodesic_length(line) == pytest.approx(time.route_m, abs=METRES), name
    # D's fastest way is the diagonal to C, then west: the line passes through C.
    via_c = lines[graph["at_d"]]
    assert via_c.coords[0] == pytest.approx(lonlat(1000, 1000))
    assert any(c == pytest.approx(lonlat(2000, 0)) for c in via_c.coords)
    # The off-road unit's line starts 100 m north of the road, at the unit.
    assert lines[graph["off_road"]].coords[0] == pytest.approx(lonlat(1500, 100))


def test_route_along_the_incident_segment(session: Session, graph: dict[str, int]) -> None:
    from gis.services.routing import route_lines

    unit = add_unit(session, "99R-AB2", 900, 0)
    lon, lat = lonlat(500, 0)
    times = drive_times(session, lon, lat, [unit.id], options=OPTIONS)
    line = route_lines(session, times.values())[unit.id]
    assert _geodesic_length(line) == pytest.approx(400, abs=METRES)


def test_nearest_with_routes_returns_lines_for_reachable_units_only(
    session: Session, graph: dict[str, int]
) -> None:
    lon, lat = lonlat(500, 0)
    result = dispatch.nearest_responders(
        session, lon=lon, lat=lat, k=5, by=RankBy.DRIVE_TIME, options=OPTIONS, with_routes=True
    )
    assert [r.route is not None for r in result.units] == [True, True, True, True, False]
