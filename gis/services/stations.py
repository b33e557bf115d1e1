"""Station siting: where k units of a platform should stand so that the drive to the town's cases
of the last year is shortest on average (p-median by drive time on the road network).

- **Demand**: the town's valid cases of the platform in the period (default: the 365 days before
  ``until``), each snapped to its nearest road segment by the dispatch rule
  (``routing.snap_points``); a case farther than ``GIS_ROUTE_MAX_SNAP_M`` from every road is
  off the network and is counted apart.
- **Candidates**: the road nodes inside the town. Above ``max_candidates`` they are thinned on a
  square grid (the cell grows until few enough remain), keeping in each cell the node with the
  most road ends (a junction before a bend), ties by id.
- **Drive times**: pgRouting over the same reversed graph, box, speeds and one-way rule as
  dispatch's drive times (``routing.node_costs``, many to many), combined per case by
  ``routing``'s own rule: the last stretch of the case's segment from either end, plus the
  off-road leg at walking speed. A candidate stands on its node (no off-road leg of its own).
  The current units are timed by ``routing.best_drive`` itself, exactly as dispatch times them.
- **Reduced problem**: cases on the same segment within a tenth of its length are one demand
  point weighted by their count (its row: the mean of its cases' times), and a pair with no road
  between them costs twice the longest drive found.
- **Solve**: the p-median MILP with HiGHS (``highspy``), each demand point allowed only its
  ``NEAREST`` nearest candidates plus a fallback variable priced at the next-nearest one's time.
  That truncation is a relaxation, so HiGHS's dual bound is a lower bound of the reduced problem;
  the chosen sites are then re-evaluated on the full matrix (the upper bound) and the reply's
  ``optimality_gap`` is (upper − lower) / upper. A greedy answer is HiGHS's first incumbent.
- **Before and after**: the mean and 90th percentile of every case's drive time from the nearest
  current unit of the platform serving the town (its own and the county's, 属地管理) and from
  the nearest chosen site, per case, not per demand point.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import GisError, ValidationError
from gis.layers.categories import Platform, parse_platform
from gis.layers.incidents import valid_case
from gis.services import jobs, routing
from gis.services.jobs import Progress, no_progress
from gis.services.siting import (
    Bounds,
    SitingQuery,
    Solution,
    grid_of,
    highs_model,
    site_layer,
)
from gis.settings import Settings, get_settings

FloatArray = npt.NDArray[np.float64]

KIND = "station_siting"
MAX_K = 50
MIN_CASES = 10
DEFAULT_MAX_CANDIDATES = 300
MAX_CANDIDATES = 1_000
# A station-siting job's parameters besides the solver's time limit (``siting.TIME_LIMIT_S``).
K = Bounds(1, MAX_K)
CANDIDATES = Bounds(10, MAX_CANDIDATES)
# Candidates each demand point may be assigned to in the MILP (the rest priced by a fallback).
NEAREST = 25
# Cases on one segment within this share of its length are one demand point.
BUCKETS = 10


@dataclass(frozen=True)
class StationSitingQuery(SitingQuery):
    """Where, which platform, how many units, which cases count."""

    platform: str
    k: int
    max_candidates: int = DEFAULT_MAX_CANDIDATES

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> StationSitingQuery:
        """The query a job stored."""
        return cls(
            platform=str(params["platform"]),
            k=int(params["k"]),
            max_candidates=int(params.get("max_candidates") or DEFAULT_MAX_CANDIDATES),
            **SitingQuery.stored(params),
        )

    def params(self) -> dict[str, Any]:
        """The JSON a job stores."""
        return {
            **super().params(),
            "platform": self.platform,
            "k": self.k,
            "max_candidates": self.max_candidates,
        }


def check_query(session: Session, query: StationSitingQuery) -> Platform:
    """Cheap checks before a job is queued (unknown town or platform, bounds, period)."""
    query.check(session)
    platform = parse_platform(query.platform)
    if platform is None:
        raise ValidationError("give a platform")
    K.check("k", query.k)
    CANDIDATES.check("max_candidates", query.max_candidates)
    return platform


# --- reading the town ---------------------------------------------------------------------------

_CASES_SQL = sa.text(
    f"""
    SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
    FROM incidents AS i
    WHERE i.town_code = :town AND i.platform = :platform
      AND i.reported_at >= :since AND i.reported_at < :until
      AND {valid_case("i")}
    ORDER BY i.id
    """  # noqa: S608 -- module constants only
)

# Every node of the network inside the town, with how many road ends meet there.
_NODES_SQL = sa.text(
    """
    WITH ends AS (
        SELECT r.source AS node, ST_StartPoint(r.geom) AS pt FROM roads r
        JOIN regions t ON t.code = :town
        WHERE r.source IS NOT NULL AND r.target IS NOT NULL AND r.geom && t.geom
        UNION ALL
        SELECT r.target, ST_EndPoint(r.geom) FROM roads r
        JOIN regions t ON t.code = :town
        WHERE r.source IS NOT NULL AND r.target IS NOT NULL AND r.geom && t.geom
    )
    SELECT e.node, ST_X(min(e.pt)) AS lon, ST_Y(min(e.pt)) AS lat, count(*) AS degree
    FROM ends e JOIN regions t ON t.code = :town
    WHERE ST_Covers(t.geom, e.pt)
    GROUP BY e.node
    ORDER BY e.node
    """
)

_UNITS_SQL = sa.text(
    """
    SELECT u.id, u.code, u.name, ST_X(u.geom) AS lon, ST_Y(u.geom) AS lat
    FROM responder_units u
    WHERE u.platform = :platform AND u.jurisdiction_code = ANY(:jurisdiction)
    ORDER BY u.id
    """
)


@dataclass(frozen=True)
class Node:
    """A candidate site: a road node in the town."""

    id: int
    lon: float
    lat: float
    degree: int


def candidate_nodes(
    session: Session, town_code: str, max_candidates: int
) -> tuple[int, list[Node]]:
    """The town's road nodes (their count) thinned to at most ``max_candidates``."""
    nodes = [
        Node(int(r.node), float(r.lon), float(r.lat), int(r.degree))
        for r in session.execute(_NODES_SQL, {"town": town_code})
    ]
    return len(nodes), thin(nodes, max_candidates)


def thin(nodes: list[Node], max_count: int) -> list[Node]:
    """At most ``max_count`` nodes: one per cell of a square grid (the best-connected, ties by
    id), the cell growing by a quarter from 25 m until few enough remain."""
    if len(nodes) <= max_count:
        return nodes
    forward, _ = routing.metric_transformers(nodes[0].lon, nodes[0].lat)
    x, y = forward.transform([n.lon for n in nodes], [n.lat for n in nodes])
    xy = np.column_stack([x, y])
    cell = 25.0
    while True:
        keys = np.floor(xy / cell).astype(np.int64)
        best: dict[tuple[int, int], Node] = {}
        for node, key in zip(nodes, map(tuple, keys.tolist()), strict=True):
            held = best.get(key)
            if held is None or (node.degree, -node.id) > (held.degree, -held.id):
                best[key] = node
        if len(best) <= max_count:
            return sorted(best.values(), key=lambda n: n.id)
        cell *= 1.25


# --- the matrix -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matrix:
    """Drive seconds case × candidate (inf: no road between), and from the current units."""

    case_ids: npt.NDArray[np.int64]
    snaps: list[routing.Snap]
    times: FloatArray  # cases × candidates
    current: FloatArray  # cases: from the nearest current unit (inf: none reaches it)
    off_network: int


def drive_matrix(
    session: Session,
    cases: Sequence[Any],
    nodes: list[Node],
    units: Sequence[Any],
    options: routing.RouteOptions,
) -> Matrix:
    """Every case's drive time from every candidate node and from the nearest current unit."""
    snaps = routing.snap_points(
        session, [(r.lon, r.lat) for r in cases], max_snap_m=options.max_snap_m
    )
    kept = [(row, snap) for row, snap in zip(cases, snaps, strict=True) if snap is not None]
    unit_snaps = [
        s
        for s in routing.snap_points(
            session, [(u.lon, u.lat) for u in units], max_snap_m=options.max_snap_m
        )
        if s is not None
    ]
    place_nodes = sorted({node for _, snap in kept for node, _ in routing.arrivals(snap)})
    unit_nodes = sorted(
        {n.id for n in nodes} | {d for s in unit_snaps for d in routing.departures(s)}
    )
    box: list[routing.Located] = [snap for _, snap in kept] + unit_snaps + list(nodes)
    costs = routing.node_costs(session, place_nodes, unit_nodes, box, options=options)
    # Node-to-node seconds as a dense table: place nodes × candidates.
    row_of = {node: i for i, node in enumerate(place_nodes)}
    col_of = {node.id: j for j, node in enumerate(nodes)}
    table = np.full((len(place_nodes), len(nodes)), np.inf)
    for (place, origin), seconds in costs.items():
        j = col_of.get(origin)
        if j is not None:
            table[row_of[place], j] = seconds
    walk_mps = options.snap_speed_kmh / 3.6
    times = np.full((len(kept), len(nodes)), np.inf)
    for i, (_, snap) in enumerate(kept):
        for node, last_s in routing.arrivals(snap):
            np.minimum(times[i], table[row_of[node]] + last_s, out=times[i])
        times[i] += snap.snap_m / walk_mps
    # The current units: dispatch's own rule, pair by pair (a handful of units).
    paths = {key: (seconds, 0.0, ()) for key, seconds in costs.items()}
    current = np.full(len(kept), np.inf)
    for i, (_, snap) in enumerate(kept):
        for unit in unit_snaps:
            best = routing.best_drive(unit, snap, paths)
            if best is not None:
                seconds = best[0] + (unit.snap_m + snap.snap_m) / walk_mps
                current[i] = min(current[i], seconds)
    return Matrix(
        case_ids=np.array([row.id for row, _ in kept], dtype=np.int64),
        snaps=[snap for _, snap in kept],
        times=times,
        current=current,
        off_network=len(cases) - len(kept),
    )


# --- the reduced problem and its solution ---------------------------------------------------------


@dataclass(frozen=True)
class Reduced:
    """Demand points (groups of cases) × candidates, with the groups' weights."""

    groups: npt.NDArray[np.int64]  # the demand point of each case
    costs: FloatArray  # demand points × candidates: mean seconds of the group's cases
    weights: FloatArray


def reduce_problem(snaps: list[routing.Snap], times: FloatArray) -> Reduced:
    """Cases on one segment within a tenth of its length are one demand point; no road between
    a pair costs twice the longest drive found."""
    keys = [(s.edge, min(int(s.fraction * BUCKETS), BUCKETS - 1)) for s in snaps]
    index: dict[tuple[int, int], int] = {}
    groups = np.array([index.setdefault(key, len(index)) for key in keys], dtype=np.int64)
    finite = times[np.isfinite(times)]
    penalty = 2.0 * float(finite.max()) if finite.size else 1.0
    priced = np.where(np.isfinite(times), times, penalty)
    weights = np.bincount(groups, minlength=len(index)).astype(np.float64)
    sums = np.zeros((len(index), times.shape[1]))
    np.add.at(sums, groups, priced)
    return Reduced(groups, sums / weights[:, None], weights)


def assigned_cost(reduced: Reduced, chosen: npt.NDArray[np.int64]) -> float:
    """Σ weight × seconds to the nearest chosen candidate, on the reduced problem."""
    return float((reduced.weights * reduced.costs[:, chosen].min(axis=1)).sum())


def greedy(reduced: Reduced, k: int) -> npt.NDArray[np.int64]:
    """k candidates added one by one, each lowering the weighted time the most."""
    best = np.full(len(reduced.weights), np.inf)
    chosen: list[int] = []
    for _ in range(k):
        totals = (reduced.weights[:, None] * np.minimum(best[:, None], reduced.costs)).sum(axis=0)
        totals[chosen] = np.inf
        j = int(np.argmin(totals))
        chosen.append(j)
        best = np.minimum(best, reduced.costs[:, j])
    return np.array(chosen, dtype=np.int64)


def solve_pmedian(
    reduced: Reduced,
    k: int,
    *,
    time_limit_s: float,
    nearest: int = NEAREST,
    progress: Progress = no_progress,
) -> Solution:
    """The p-median of the reduced problem with HiGHS (see the module's docstring).

    Each demand point starts with its ``nearest`` nearest candidates; a point whose fallback is
    used in HiGHS's answer gets twice as many and the model is solved again (at most
    ``ROUNDS`` times, within the time limit), so the bound tightens where it is loose."""
    n_demand, n_sites = reduced.costs.shape
    started = time.perf_counter()
    if k >= n_sites:
        chosen = np.arange(n_sites)
        value = assigned_cost(reduced, chosen)
        return Solution(chosen, value, value, 0.0, "all candidates", 0.0)
    order = np.argsort(reduced.costs, axis=1, kind="stable")
    keep = np.full(n_demand, min(nearest, n_sites))
    incumbent = greedy(reduced, k)
    best = (incumbent, assigned_cost(reduced, incumbent))
    lower, status = 0.0, "not solved"
    for round_ in range(ROUNDS):
        progress(0.65 + 0.02 * round_, f"HiGHS, round {round_ + 1}")  # a cancel stops here
        left = time_limit_s - (time.perf_counter() - started)
        if left <= 0.5:
            break
        chosen, bound, status, short = _solve_truncated(
            reduced, order, keep, k, best[0], time_limit_s=left
        )
        value = assigned_cost(reduced, chosen)
        if value < best[1]:
            best = (chosen, value)
        lower = max(lower, bound)
        if not short.any() or keep.min() >= n_sites:
            break
        keep[short] = np.minimum(2 * keep[short], n_sites)
    upper = best[1]
    lower = min(lower, upper)
    gap = max(0.0, (upper - lower) / upper) if upper > 0 else 0.0
    return Solution(np.sort(best[0]), upper, lower, gap, status, time.perf_counter() - started)


ROUNDS = 12


def _solve_truncated(
    reduced: Reduced,
    order: npt.NDArray[np.int64],
    keep: npt.NDArray[np.int64],
    k: int,
    start: npt.NDArray[np.int64],
    *,
    time_limit_s: float,
) -> tuple[npt.NDArray[np.int64], float, str, npt.NDArray[np.bool_]]:
    """One HiGHS run of the truncated model: the chosen candidates, the dual bound, the status,
    and which demand points used their fallback."""
    import highspy

    n_demand, n_sites = reduced.costs.shape
    fallback = keep < n_sites
    # Columns: y_0…y_{S-1} (binary); then per demand point i its x_{i,r} (r < keep_i) and, when
    # truncated, u_i priced at its next-nearest candidate.
    widths = keep + fallback
    offsets = n_sites + np.concatenate([[0], np.cumsum(widths)[:-1]])
    n_cols = n_sites + int(widths.sum())
    costs = np.zeros(n_cols)
    site_of = np.full(n_cols, -1, dtype=np.int64)  # the candidate of each x column
    for i in range(n_demand):
        near = order[i, : keep[i]]
        base = offsets[i]
        costs[base : base + keep[i]] = reduced.weights[i] * reduced.costs[i, near]
        site_of[base : base + keep[i]] = near
        if fallback[i]:
            costs[base + keep[i]] = reduced.weights[i] * reduced.costs[i, order[i, keep[i]]]
    h = highs_model(time_limit_s)
    inf = highspy.kHighsInf
    h.addVars(n_cols, np.zeros(n_cols), np.ones(n_cols))
    h.changeColsCost(n_cols, np.arange(n_cols, dtype=np.int32), costs)
    h.changeColsIntegrality(
        n_sites, np.arange(n_sites, dtype=np.int32), np.full(n_sites, highspy.HighsVarType.kInteger)
    )
    # Σ_r x_{i,r} (+ u_i) = 1: each demand point's columns are contiguous.
    h.addRows(
        n_demand,
        np.ones(n_demand),
        np.ones(n_demand),
        int(widths.sum()),
        (offsets - n_sites).astype(np.int32),
        np.arange(n_sites, n_cols, dtype=np.int32),
        np.ones(int(widths.sum())),
    )
    # x_{i,r} − y_j ≤ 0
    x_cols = np.flatnonzero(site_of >= 0)
    n_x = len(x_cols)
    pairs = np.column_stack([x_cols, site_of[x_cols]]).astype(np.int32)
    h.addRows(
        n_x,
        np.full(n_x, -inf),
        np.zeros(n_x),
        2 * n_x,
        (np.arange(n_x) * 2).astype(np.int32),
        pairs.ravel(),
        np.tile([1.0, -1.0], n_x),
    )
    # Σ y_j = k
    h.addRow(float(k), float(k), n_sites, np.arange(n_sites, dtype=np.int32), np.ones(n_sites))
    # The best answer so far as the first incumbent, each point at its nearest open kept site.
    values = np.zeros(n_cols)
    values[start] = 1.0
    is_open = np.isin(site_of, start)
    for i in range(n_demand):
        span = slice(offsets[i], offsets[i] + keep[i])
        hits = np.flatnonzero(is_open[span])
        values[offsets[i] + (hits[0] if hits.size else keep[i])] = 1.0
    initial = highspy.HighsSolution()
    initial.col_value = values.tolist()
    initial.value_valid = True
    h.setSolution(initial)
    h.run()
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    col = np.asarray(h.getSolution().col_value)
    chosen = np.flatnonzero(col[:n_sites] > 0.5)
    if len(chosen) != k:
        raise GisError(f"HiGHS found no solution ({status})")
    short = fallback & (col[np.minimum(offsets + keep, n_cols - 1)] > 0.5)
    return chosen, float(info.mip_dual_bound), status, short


# --- the answer -----------------------------------------------------------------------------------


def drive_summary(seconds: FloatArray) -> dict[str, Any]:
    """Mean and 90th percentile (seconds, of the reachable cases) and how many are unreachable."""
    reachable = seconds[np.isfinite(seconds)]
    if reachable.size == 0:
        return {"mean_s": None, "p90_s": None, "unreachable": int(seconds.size)}
    return {
        "mean_s": round(float(reachable.mean()), 1),
        "p90_s": round(float(np.percentile(reachable, 90)), 1),
        "unreachable": int(seconds.size - reachable.size),
    }


@dataclass(frozen=True)
class Station:
    """One chosen site: its node, where, its grid, the cases nearest to it and their drive."""

    rank: int
    node: int
    lon: float
    lat: float
    grid_code: str | None
    cases: int
    mean_s: float | None

    def properties(self, platform: str) -> dict[str, Any]:
        """The site's feature properties (the CSV's columns but lon/lat, and the platform)."""
        return {
            "rank": self.rank,
            "node": self.node,
            "grid": self.grid_code,
            "cases": self.cases,
            "mean_drive_s": self.mean_s,
            "platform": platform,
        }


@dataclass(frozen=True)
class StationSiting:
    """The answer: the sites, drive times before and after, and how the problem was solved."""

    town_code: str
    platform: str
    k: int
    cases: int
    off_network: int
    current_units: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    stations: list[Station]
    nodes: int
    candidates: int
    demand_points: int
    solution: Solution

    def result(self) -> dict[str, Any]:
        """The job's result: a GeoJSON layer of the sites, the summary, and a CSV table."""
        return site_layer(
            [(s.lon, s.lat, s.properties(self.platform)) for s in self.stations],
            {
                "town": self.town_code,
                "platform": self.platform,
                "k": self.k,
                "cases": self.cases,
                "cases_off_network": self.off_network,
                "current_units": self.current_units,
                "before": self.before,
                "after": self.after,
                "road_nodes": self.nodes,
                "candidates_after_pruning": self.candidates,
                "demand_points_after_aggregation": self.demand_points,
                "objective_s": round(self.solution.objective, 1),
                "bound_s": round(self.solution.bound, 1),
                **self.solution.summary(),
            },
            ["rank", "node", "lon", "lat", "grid", "cases", "mean_drive_s"],
        )


def _inputs(
    session: Session, query: StationSitingQuery
) -> tuple[Platform, Sequence[Any], int, list[Node]]:
    """The checked query's platform, cases and candidate nodes (the town's node count too):
    ``ValidationError`` for too few cases, a town without roads, k above the candidates."""
    platform = check_query(session, query)
    since, until = query.period()
    cases = session.execute(
        _CASES_SQL,
        {"town": query.town_code, "platform": platform.value, "since": since, "until": until},
    ).all()
    if len(cases) < MIN_CASES:
        raise ValidationError(
            f"only {len(cases)} {platform.value} case(s) in the town in the period; siting needs "
            f"at least {MIN_CASES} — widen the period"
        )
    n_nodes, nodes = candidate_nodes(session, query.town_code, query.max_candidates)
    if not nodes:
        raise ValidationError(f"town {query.town_code} has no road network to place units on")
    if query.k > len(nodes):
        raise ValidationError(
            f"k = {query.k} is more than the {len(nodes)} candidate road nodes; use fewer units "
            "or a larger max_candidates"
        )
    return platform, cases, n_nodes, nodes


def site_stations(
    session: Session,
    query: StationSitingQuery,
    *,
    progress: Progress = no_progress,
    settings: Settings | None = None,
) -> StationSiting:
    """Where the platform's k units should stand for the shortest drives to the year's cases."""
    platform, cases, n_nodes, nodes = _inputs(session, query)
    options = routing.RouteOptions.from_settings(settings or get_settings())
    progress(0.05, "reading units")
    from gis.services.dispatch import town_jurisdiction

    units = session.execute(
        _UNITS_SQL,
        {"platform": platform.value, "jurisdiction": town_jurisdiction(session, query.town_code)},
    ).all()
    progress(0.15, f"drive times: {len(cases)} cases × {len(nodes)} road nodes (pgRouting)")
    matrix = drive_matrix(session, cases, nodes, units, options)
    if not np.isfinite(matrix.times).any():
        raise ValidationError(
            f"none of the {len(cases)} cases can be reached from the town's roads"
        )
    progress(0.6, "aggregating demand")
    reduced = reduce_problem(matrix.snaps, matrix.times)
    progress(0.65, f"solving {len(reduced.weights)} × {len(nodes)} with HiGHS")
    solution = solve_pmedian(reduced, query.k, time_limit_s=query.time_limit_s, progress=progress)
    progress(0.95, "drive times before and after")
    after = matrix.times[:, solution.chosen]
    nearest = np.argmin(after, axis=1)
    best = after.min(axis=1)
    return StationSiting(
        town_code=query.town_code,
        platform=platform.value,
        k=query.k,
        cases=len(cases),
        off_network=matrix.off_network,
        current_units=[u.code for u in units],
        before=drive_summary(matrix.current),
        after=drive_summary(best),
        stations=_stations(session, nodes, solution.chosen, nearest, best),
        nodes=n_nodes,
        candidates=len(nodes),
        demand_points=len(reduced.weights),
        solution=solution,
    )


def _stations(
    session: Session,
    nodes: list[Node],
    chosen: npt.NDArray[np.int64],
    nearest: npt.NDArray[np.int64],
    best: FloatArray,
) -> list[Station]:
    served = np.bincount(nearest[np.isfinite(best)], minlength=len(chosen))
    order = np.argsort(-served, kind="stable")
    out: list[Station] = []
    for rank, j in enumerate(order, start=1):
        node = nodes[int(chosen[j])]
        mine = best[(nearest == j) & np.isfinite(best)]
        out.append(
            Station(
                rank,
                node.id,
                node.lon,
                node.lat,
                grid_of(session, node.lon, node.lat),
                int(served[j]),
                round(float(mine.mean()), 1) if mine.size else None,
            )
        )
    return out


def check(session: Session, params: dict[str, Any]) -> None:
    """The checks done before a station-siting job is queued (bad input is a 4xx at once)."""
    _inputs(session, StationSitingQuery.from_params(params))


def run(session: Session, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The job's work: the siting as a GeoJSON layer with its summary and CSV table."""
    return site_stations(
        session, StationSitingQuery.from_params(params), progress=progress
    ).result()


jobs.register(KIND, jobs.JobKind(check=check, run=run))
