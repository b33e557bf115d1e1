"""Drive times over the road network (pgRouting), and building that network's topology.

A place is joined to the network by snapping it to the nearest road segment: the straight leg to
the segment is covered at a slow off-road speed, then the part of the segment to one of its ends
at the segment's speed. Dijkstra (``pgr_dijkstra``) runs once, from the incident's side, over the
*reversed* graph, so one search answers "how long from each unit to here" for every candidate
(driving from a unit to the incident is driving from the incident to the unit against the
arrows). Only roads inside a box around the incident and the candidates, widened by a margin, are
loaded: one query stays fast on a province's network, at the price that a route leaving that box
is not found (the margin makes this rare; such a unit is reported as unreachable, never given an
invented time).

Topology: every segment's ``source``/``target`` are node ids shared by segment ends that lie
within a tolerance in metres of each other (clustered in a UTM projection). Lines are split
("noded") where they share a vertex or where one line's end touches another's middle (a
T-junction). Two lines that cross without a shared vertex are *not* joined: in OSM-like data
that is a bridge or a tunnel.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely import STRtree
from shapely.geometry import LineString, Point
from shapely.ops import substring
from sqlalchemy.orm import Session

from gis.geo import utm_crs_for
from gis.settings import (
    DEFAULT_ROUTE_MARGIN_M,
    DEFAULT_ROUTE_MAX_SNAP_M,
    DEFAULT_ROUTE_SNAP_SPEED_KMH,
    Settings,
)

# Degrees of latitude per metre (mean); used only to size a search box, never to measure.
_DEG_PER_M_LAT = 1.0 / 111_320.0


@dataclass(frozen=True)
class RouteOptions:
    """How places are joined to the network and how far around them routes are searched."""

    snap_speed_kmh: float = DEFAULT_ROUTE_SNAP_SPEED_KMH
    max_snap_m: float = DEFAULT_ROUTE_MAX_SNAP_M
    margin_m: float = DEFAULT_ROUTE_MARGIN_M

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteOptions:
        """The options configured by ``GIS_ROUTE_*``."""
        return cls(
            snap_speed_kmh=settings.route_snap_speed_kmh,
            max_snap_m=settings.route_max_snap_m,
            margin_m=settings.route_margin_m,
        )


@dataclass(frozen=True)
class Snap:
    """A place joined to the road network: its segment, where along it, and how far off it."""

    edge: int
    source: int
    target: int
    oneway: bool
    cost_s: float  # travel time of the whole segment
    length_m: float
    fraction: float  # 0 at the segment's source, 1 at its target
    snap_m: float
    lon: float
    lat: float


@dataclass(frozen=True)
class Legs:
    """How a unit's best route is made: its snap, the place's snap, the node it drives to first,
    the road edges in driving order and the node it reaches the place's segment from (both
    nodes None when it stays on one segment)."""

    unit: Snap
    place: Snap
    start_node: int | None  # the node the unit drives to first (None: same segment)
    edges: tuple[int, ...]
    end_node: int | None  # the node the place is reached from


@dataclass(frozen=True)
class DriveTime:
    """The drive from one unit to the place; ``eta_s``/``route_m`` are None when unreachable."""

    unit_id: int
    reachable: bool
    eta_s: float | None
    route_m: float | None
    snap_m: float | None  # the unit's off-road leg
    legs: Legs | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Access:
    """Reaching a graph node from a place (or the place from a node): seconds and metres."""

    node: int
    cost_s: float
    length_m: float


# The nearest road segment of each place ``p`` (key, geom): a few candidates by geography KNN
# (sphere; an index scan on ix_roads_geog only when ordered by the operator alone), then the
# exact nearest, ties by id. One rule for a dispatch's places and for a siting's many cases.
_SNAP_SELECT = """
    SELECT p.key, r.id, r.source, r.target, r.oneway, r.length_m, r.cost_s, r.snap_m,
           ST_LineLocatePoint(ST_Transform(r.geom, :srid), ST_Transform(p.geom, :srid))
             AS fraction,
           ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
    FROM ({places}) AS p
    CROSS JOIN LATERAL (
        SELECT c.*, ST_Distance(c.geom::geography, p.geom::geography) AS snap_m
        FROM (
            SELECT r.id, r.source, r.target, r.oneway, r.length_m, r.geom,
                   r.length_m / (r.speed_kmh / 3.6) AS cost_s
            FROM roads r
            WHERE r.source IS NOT NULL AND r.target IS NOT NULL
            ORDER BY r.geom::geography <-> p.geom::geography
            LIMIT 4
        ) AS c
        ORDER BY snap_m, c.id
        LIMIT 1
    ) AS r
"""

_SNAP_SQL = sa.text(
    _SNAP_SELECT.format(
        places="""
        SELECT 0 AS key, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom
        UNION ALL
        SELECT u.id, u.geom FROM responder_units u WHERE u.id = ANY(:unit_ids)
        """
    )
)

_SNAP_POINTS_SQL = sa.text(
    _SNAP_SELECT.format(
        places="""
        SELECT s.key, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS geom
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY
             AS s(lon, lat, key)
        """
    )
)

# The road graph inside a box, *reversed* (source/target and cost/reverse_cost swapped): the
# travel time of a segment is its length at its speed, and a one-way segment cannot be driven
# against its arrows. Text for pgRouting: its only values are the box's four numbers, formatted
# by PostgreSQL from bound parameters.
_REVERSED_EDGES = """
        format(
            'SELECT id, target AS source, source AS target,'
            '       length_m / (speed_kmh / 3.6) AS cost,'
            '       CASE WHEN oneway THEN -1 ELSE length_m / (speed_kmh / 3.6) END'
            '         AS reverse_cost'
            ' FROM roads WHERE source IS NOT NULL AND target IS NOT NULL'
            ' AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)',
            CAST(:xmin AS float8), CAST(:ymin AS float8),
            CAST(:xmax AS float8), CAST(:ymax AS float8)
        )"""

# Dijkstra over the reversed graph from the incident's nodes; each path's time and length are
# summed per (incident node, unit node).
_PATHS_TEMPLATE = """
    SELECT d.start_vid AS from_node, d.end_vid AS to_node,
           sum(d.cost) AS cost_s, sum(r.length_m) AS length_m,
           array_agg(d.edge ORDER BY d.path_seq) AS edges
    FROM pgr_dijkstra({edges},
        CAST(:from_nodes AS bigint[]), CAST(:to_nodes AS bigint[]), true
    ) AS d
    -- One primary-key lookup per path row (LIMIT 1 keeps the planner from turning this into a
    -- hash join that would scan every road of the province).
    CROSS JOIN LATERAL (SELECT rd.length_m FROM roads rd WHERE rd.id = d.edge LIMIT 1) AS r
    GROUP BY d.start_vid, d.end_vid
"""
_PATHS_SQL = sa.text(_PATHS_TEMPLATE.format(edges=_REVERSED_EDGES))

# Only the times, many to many, over the same reversed graph (siting's matrices).
_COSTS_TEMPLATE = """
    SELECT start_vid AS from_node, end_vid AS to_node, agg_cost AS cost_s
    FROM pgr_dijkstraCost({edges},
        CAST(:from_nodes AS bigint[]), CAST(:to_nodes AS bigint[]), true)
"""
_COSTS_SQL = sa.text(_COSTS_TEMPLATE.format(edges=_REVERSED_EDGES))


def _srid_for(lon: float, lat: float) -> int:
    """The EPSG number of the UTM zone of a point."""
    return int(utm_crs_for(lon, lat).split(":")[1])


def _snap(row: sa.Row[Any]) -> Snap:
    return Snap(
        edge=row.id,
        source=row.source,
        target=row.target,
        oneway=row.oneway,
        cost_s=float(row.cost_s),
        length_m=float(row.length_m),
        fraction=min(max(float(row.fraction), 0.0), 1.0),
        snap_m=float(row.snap_m),
        lon=float(row.lon),
        lat=float(row.lat),
    )


def snap_places(
    session: Session, lon: float, lat: float, unit_ids: Sequence[int], *, max_snap_m: float
) -> tuple[Snap | None, dict[int, Snap]]:
    """The incident point's and each unit's nearest road segment (None beyond ``max_snap_m``)."""
    rows = session.execute(
        _SNAP_SQL,
        {"lon": lon, "lat": lat, "unit_ids": list(unit_ids), "srid": _srid_for(lon, lat)},
    ).all()
    incident: Snap | None = None
    units: dict[int, Snap] = {}
    for row in rows:
        if row.snap_m > max_snap_m:
            continue
        if row.key == 0:
            incident = _snap(row)
        else:
            units[int(row.key)] = _snap(row)
    return incident, units


def snap_points(
    session: Session, lonlat: Sequence[tuple[float, float]], *, max_snap_m: float
) -> list[Snap | None]:
    """Each WGS84 point's nearest road segment, in order (None beyond ``max_snap_m``)."""
    if not lonlat:
        return []
    lons = [float(p[0]) for p in lonlat]
    lats = [float(p[1]) for p in lonlat]
    rows = session.execute(
        _SNAP_POINTS_SQL,
        {"lons": lons, "lats": lats, "srid": _srid_for(lons[0], lats[0])},
    ).all()
    snaps: list[Snap | None] = [None] * len(lonlat)
    for row in rows:
        if row.snap_m <= max_snap_m:
            snaps[int(row.key) - 1] = _snap(row)
    return snaps


def _leave(snap: Snap) -> list[_Access]:
    """The nodes a unit on this segment can drive to first (against a one-way is not allowed)."""
    ahead = _Access(
        snap.target, (1 - snap.fraction) * snap.cost_s, (1 - snap.fraction) * snap.length_m
    )
    if snap.oneway:
        return [ahead]
    return [ahead, _Access(snap.source, snap.fraction * snap.cost_s, snap.fraction * snap.length_m)]


def _arrive(snap: Snap) -> list[_Access]:
    """The nodes from which the place on this segment is reached, with the last stretch."""
    from_source = _Access(snap.source, snap.fraction * snap.cost_s, snap.fraction * snap.length_m)
    if snap.oneway:
        return [from_source]
    return [
        from_source,
        _Access(
            snap.target, (1 - snap.fraction) * snap.cost_s, (1 - snap.fraction) * snap.length_m
        ),
    ]


def _same_segment(unit: Snap, place: Snap) -> tuple[float, float] | None:
    """Driving along the shared segment without leaving it, when both are on the same one."""
    if unit.edge != place.edge:
        return None
    if place.fraction < unit.fraction and unit.oneway:
        return None
    share = abs(place.fraction - unit.fraction)
    return share * unit.cost_s, share * unit.length_m


class Located(Protocol):
    """Anything with a WGS84 position (a snap, a candidate site)."""

    @property
    def lon(self) -> float:
        """Longitude."""

    @property
    def lat(self) -> float:
        """Latitude."""


def _search_box(snaps: Iterable[Located], margin_m: float) -> tuple[float, float, float, float]:
    """The lon/lat box around the places, widened by ``margin_m`` (and by half its own size)."""
    lons = [s.lon for s in snaps]
    lats = [s.lat for s in snaps]
    mid_lat = (min(lats) + max(lats)) / 2.0
    deg_lon_per_m = _DEG_PER_M_LAT / max(math.cos(math.radians(mid_lat)), 1e-6)
    # Half the box's own size again on each side: a route between far-apart places may bend.
    span_m = max((max(lons) - min(lons)) / deg_lon_per_m, (max(lats) - min(lats)) / _DEG_PER_M_LAT)
    pad_m = margin_m + 0.5 * span_m
    return (
        min(lons) - pad_m * deg_lon_per_m,
        min(lats) - pad_m * _DEG_PER_M_LAT,
        max(lons) + pad_m * deg_lon_per_m,
        max(lats) + pad_m * _DEG_PER_M_LAT,
    )


def drive_times(
    session: Session,
    lon: float,
    lat: float,
    unit_ids: Sequence[int],
    *,
    options: RouteOptions | None = None,
) -> dict[int, DriveTime]:
    """Drive time and route length from each unit to a WGS84 point; unreachable units say so."""
    options = options or RouteOptions()
    walk_mps = options.snap_speed_kmh / 3.6
    place, snaps = snap_places(session, lon, lat, unit_ids, max_snap_m=options.max_snap_m)
    unreachable = {
        unit_id: DriveTime(
            unit_id, False, None, None, snaps[unit_id].snap_m if unit_id in snaps else None
        )
        for unit_id in unit_ids
    }
    if place is None or not snaps:
        return unreachable

    arrive = _arrive(place)
    leave = {unit_id: _leave(snap) for unit_id, snap in snaps.items()}
    to_nodes = sorted({a.node for accesses in leave.values() for a in accesses})
    from_nodes = sorted({a.node for a in arrive})
    xmin, ymin, xmax, ymax = _search_box([place, *snaps.values()], options.margin_m)
    # (incident-side node, unit-side node) -> (seconds, metres, edges from the incident side)
    paths: dict[tuple[int, int], tuple[float, float, tuple[int, ...]]] = {
        (int(row.from_node), int(row.to_node)): (
            float(row.cost_s),
            float(row.length_m),
            tuple(int(edge) for edge in row.edges),
        )
        for row in session.execute(
            _PATHS_SQL,
            {
                "xmin": xmin,
                "ymin": ymin,
                "xmax": xmax,
                "ymax": ymax,
                "from_nodes": from_nodes,
                "to_nodes": to_nodes,
            },
        )
    }
    # pgRouting returns no row for a path from a node to itself.
    for node in set(from_nodes) & set(to_nodes):
        paths[(node, node)] = (0.0, 0.0, ())

    result = dict(unreachable)
    for unit_id, snap in snaps.items():
        best = best_drive(snap, place, paths)
        if best is None:
            continue
        off_road_m = snap.snap_m + place.snap_m
        result[unit_id] = DriveTime(
            unit_id,
            True,
            best[0] + off_road_m / walk_mps,
            best[1] + off_road_m,
            snap.snap_m,
            best[2],
        )
    return result


# (place-side node, unit-side node) -> (seconds, metres, edges from the place's side)
Paths = Mapping[tuple[int, int], tuple[float, float, tuple[int, ...]]]


def best_drive(unit: Snap, place: Snap, paths: Paths) -> tuple[float, float, Legs] | None:
    """The fastest way on the roads from a unit's snap to a place's snap (seconds, metres and
    legs, the off-road legs excluded), given the node-to-node paths over the reversed graph;
    None when no path joins them."""
    best: tuple[float, float, Legs] | None = None
    along = _same_segment(unit, place)
    if along is not None:
        best = (along[0], along[1], Legs(unit, place, None, (), None))
    for first in _leave(unit):
        for last in _arrive(place):
            path = paths.get((last.node, first.node))
            if path is None:
                continue
            cost = first.cost_s + path[0] + last.cost_s
            if best is None or cost < best[0]:
                # Found over the reversed graph: driving order is the other way round.
                legs = Legs(unit, place, first.node, path[2][::-1], last.node)
                best = (cost, first.length_m + path[1] + last.length_m, legs)
    return best


def arrivals(place: Snap) -> list[tuple[int, float]]:
    """The nodes a place is reached from and the seconds of the last stretch from each."""
    return [(a.node, a.cost_s) for a in _arrive(place)]


def departures(unit: Snap) -> list[int]:
    """The nodes a unit on its segment can drive to first."""
    return [a.node for a in _leave(unit)]


def node_costs(
    session: Session,
    place_nodes: Sequence[int],
    unit_nodes: Sequence[int],
    places: Iterable[Located],
    *,
    options: RouteOptions,
) -> dict[tuple[int, int], float]:
    """Seconds of the fastest drive from each of ``unit_nodes`` to each of ``place_nodes``, keyed
    ``(place node, unit node)`` like the paths of ``best_drive``, over the roads in the box
    around ``places`` widened by the margin: ``drive_times``'s graph and search, many to many
    (one Dijkstra per place node; a pair with no path has no key)."""
    if not place_nodes or not unit_nodes:
        return {}
    xmin, ymin, xmax, ymax = _search_box(places, options.margin_m)
    costs = {
        (int(row.from_node), int(row.to_node)): float(row.cost_s)
        for row in session.execute(
            _COSTS_SQL,
            {
                "xmin": xmin,
                "ymin": ymin,
                "xmax": xmax,
                "ymax": ymax,
                "from_nodes": sorted(set(place_nodes)),
                "to_nodes": sorted(set(unit_nodes)),
            },
        )
    }
    # pgRouting returns no row for a path from a node to itself.
    for node in set(place_nodes) & set(unit_nodes):
        costs[(node, node)] = 0.0
    return costs


def route_lines(session: Session, times: Iterable[DriveTime]) -> dict[int, LineString]:
    """The route of each reachable drive as a WGS84 line: off-road leg, the rest of the unit's
    segment, the roads, the part of the place's segment, and the last off-road leg."""
    chosen = [t for t in times if t.legs is not None]
    wanted = {e for t in chosen for e in t.legs.edges}  # type: ignore[union-attr]
    wanted |= {t.legs.unit.edge for t in chosen} | {t.legs.place.edge for t in chosen}  # type: ignore[union-attr]
    roads = {
        int(row.id): (int(row.source), int(row.target), shapely.from_wkb(row.wkb))
        for row in session.execute(
            sa.text(
                "SELECT id, source, target, ST_AsBinary(geom) AS wkb FROM roads "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": sorted(wanted)},
        )
    }
    return {t.unit_id: _route_line(t.legs, roads) for t in chosen}  # type: ignore[arg-type]


def _part(line: LineString, start: float, end: float) -> list[tuple[float, float]]:
    """Coordinates of a line between two normalised positions (end < start runs backwards)."""
    piece = substring(line, start, end, normalized=True)
    if piece.is_empty:
        return []
    return [(float(c[0]), float(c[1])) for c in piece.coords]


def _route_line(legs: Legs, roads: dict[int, tuple[int, int, LineString]]) -> LineString:
    """Chain the pieces of one route into a line (see ``route_lines``)."""
    unit, place = legs.unit, legs.place
    coords: list[tuple[float, float]] = [(unit.lon, unit.lat)]
    unit_line = roads[unit.edge][2]
    if legs.start_node is None:  # along one segment
        coords += _part(unit_line, unit.fraction, place.fraction)
    else:
        source, _, _ = roads[unit.edge]
        coords += _part(unit_line, unit.fraction, 0.0 if legs.start_node == source else 1.0)
        node = legs.start_node
        for edge in legs.edges:
            edge_source, edge_target, line = roads[edge]
            forward = edge_source == node
            piece = list(line.coords) if forward else list(line.coords)[::-1]
            coords += [(float(c[0]), float(c[1])) for c in piece]
            node = edge_target if forward else edge_source
        place_source, _, place_line = roads[place.edge]
        start = 0.0 if legs.end_node == place_source else 1.0
        coords += _part(place_line, start, place.fraction)
    coords.append((place.lon, place.lat))
    # Drop repeated points where pieces meet.
    chain = [coords[0]] + [c for previous, c in pairwise(coords) if c != previous]
    if len(chain) == 1:
        chain.append(chain[0])
    return LineString(chain)


# --- topology -------------------------------------------------------------------------------


def _vertex_key(x: float, y: float) -> tuple[float, float]:
    """Exact coordinates as a dictionary key (shared OSM nodes have identical coordinates)."""
    return (x, y)


def _cut(coords: list[tuple[float, float]], cut_at: set[int]) -> list[list[tuple[float, float]]]:
    """Split a coordinate list at the given interior vertex indexes."""
    pieces: list[list[tuple[float, float]]] = []
    start = 0
    for index in sorted(cut_at):
        if 0 < index < len(coords) - 1:
            pieces.append(coords[start : index + 1])
            start = index
    pieces.append(coords[start:])
    return [piece for piece in pieces if len(piece) >= 2]


def node_lines(lines: Sequence[LineString], *, tolerance: float) -> list[tuple[int, LineString]]:
    """Split lines (in a metric CRS) where they share a vertex or one's end touches another.

    Returns ``(index of the input line, piece)`` so callers keep each piece's attributes.
    Crossings without a shared vertex are left alone (bridges and tunnels).
    """
    coords = [list(map(tuple, np.asarray(line.coords)[:, :2].tolist())) for line in lines]
    # How many lines use each vertex: an interior vertex used by another line is a junction.
    users: dict[tuple[float, float], set[int]] = {}
    for index, line_coords in enumerate(coords):
        for x, y in line_coords:
            users.setdefault(_vertex_key(x, y), set()).add(index)

    # T-junctions: an end of one line within ``tolerance`` of the middle of another, not at one
    # of its vertices. The other line gets that end as a new vertex.
    tree = STRtree(list(lines))
    inserts: dict[int, list[tuple[int, float, tuple[float, float]]]] = {}
    for index, line_coords in enumerate(coords):
        for end in (line_coords[0], line_coords[-1]):
            point = Point(end)
            for hit in tree.query(point, predicate="dwithin", distance=tolerance):
                other = int(hit)
                if other == index or other in users[_vertex_key(*end)]:
                    continue
                segment, along = _locate(coords[other], end)
                if segment is not None:
                    inserts.setdefault(other, []).append((segment, along, end))

    pieces: list[tuple[int, LineString]] = []
    for index, line_coords in enumerate(coords):
        if index in inserts:
            # Insert from the last segment backwards so earlier indexes stay valid.
            for segment, _, end in sorted(inserts[index], key=lambda i: (i[0], i[1]), reverse=True):
                line_coords.insert(segment + 1, end)
            for _, _, end in inserts[index]:
                users.setdefault(_vertex_key(*end), set()).add(index)
        # A vertex used by another line is a junction; one repeated within the line closes a
        # loop there.
        seen_here = Counter(line_coords)
        cut_at = {
            position
            for position, (x, y) in enumerate(line_coords)
            if len(users[_vertex_key(x, y)]) > 1 or seen_here[(x, y)] > 1
        }
        for piece in _cut(line_coords, cut_at):
            line = LineString(piece)
            if line.length > 0:
                pieces.append((index, line))
    return pieces


def _locate(
    coords: list[tuple[float, float]], point: tuple[float, float]
) -> tuple[int | None, float]:
    """The segment of a polyline a point projects onto strictly inside it, and how far along."""
    line = LineString(coords)
    along = line.project(Point(point))
    if along <= 0 or along >= line.length:
        return None, along
    walked = 0.0
    for segment in range(len(coords) - 1):
        (x0, y0), (x1, y1) = coords[segment], coords[segment + 1]
        step = math.hypot(x1 - x0, y1 - y0)
        if walked + step >= along:
            if along - walked <= 0 or walked + step - along <= 0:
                return None, along  # at an existing vertex: handled as a shared vertex
            return segment, along
        walked += step
    return None, along


def metric_transformers(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    """Forward and inverse transformers between WGS84 and the UTM zone of a point."""
    utm = utm_crs_for(lon, lat)
    return (
        Transformer.from_crs("EPSG:4326", utm, always_xy=True),
        Transformer.from_crs(utm, "EPSG:4326", always_xy=True),
    )


def build_topology(session: Session, *, tolerance_m: float = 0.5) -> int:
    """Give every road's ends node ids (``source``/``target``); ends closer than the tolerance
    share a node. Returns the number of nodes."""
    centre = session.execute(
        sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c FROM roads) s"
        )
    ).one()
    if centre[0] is None:
        return 0
    srid = _srid_for(float(centre[0]), float(centre[1]))
    # DBSCAN with one point per cluster allowed is a distance-threshold clustering: ends within
    # the tolerance (in metres, in UTM) chain into one node.
    session.execute(
        sa.text(
            """
            WITH ends AS (
                SELECT id, true AS is_start, ST_Transform(ST_StartPoint(geom), :srid) AS pt
                FROM roads
                UNION ALL
                SELECT id, false, ST_Transform(ST_EndPoint(geom), :srid) FROM roads
            ), nodes AS (
                SELECT id, is_start,
                       ST_ClusterDBSCAN(pt, eps := :tolerance, minpoints := 1) OVER () + 1 AS node
                FROM ends
            )
            UPDATE roads AS r
            SET source = s.node, target = t.node
            FROM nodes s, nodes t
            WHERE s.id = r.id AND s.is_start AND t.id = r.id AND NOT t.is_start
            """
        ),
        {"srid": srid, "tolerance": tolerance_m},
    )
    return int(
        session.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT source FROM roads UNION SELECT target FROM roads) n"
            )
        ).scalar_one()
    )
