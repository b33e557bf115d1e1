"""Camera siting: where k new cameras of a given range would see the most cases (MCLP).

The maximal covering location problem: demand points are the town's valid cases of the period
that no online camera sees now (each weighs 1); candidate sites are points every ``spacing_m``
along the town's roads; a new camera (PTZ/dome, full circle) at a site sees the cases within
``range_m``. Maximise the cases seen by k sites:

    max Σ_i w_i y_i   s.t.   y_i ≤ Σ_{j covers i} x_j,   Σ_j x_j = k,   x binary, 0 ≤ y ≤ 1

solved by HiGHS (``highspy``) with a time limit; the reply carries HiGHS's optimality gap. The
problem is first reduced without changing its optimum:

- candidates that cover no case are dropped, and a candidate whose cases are a subset of
  another's (coverage dominance) is dropped — some optimal solution never needs it;
- cases covered by exactly the same candidates are one demand point with their count as weight.

Coverage is measured in the UTM zone of the town (metres), on the kept sites, and recomputed on
the original cases after the solve for the per-grid counts (tests recompute it in PostGIS).
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa
from pyproj import Transformer
from scipy import sparse
from scipy.spatial import cKDTree
from sqlalchemy.orm import Session

from gis.errors import GisError, ValidationError
from gis.geo import transform_geometry, utm_crs_for
from gis.layers.base import utcnow
from gis.layers.incidents import valid_case
from gis.layers.regions import RegionLevel, get_region
from gis.services import jobs
from gis.services.jobs import Progress, no_progress

FloatArray = npt.NDArray[np.float64]

KIND = "camera_siting"
MAX_K = 100
MIN_CASES = 10
MAX_CANDIDATES = 20_000


class Bounds(NamedTuple):
    """The inclusive range of a job parameter: checked here, declared by the API schema."""

    low: int
    high: int

    def check(self, name: str, value: float) -> None:
        """``ValidationError`` unless ``value`` is within the bounds."""
        if not self.low <= value <= self.high:
            raise ValidationError(f"{name} must be between {self.low} and {self.high}")


# A siting job's parameters: defaults and bounds for the service, the API schema and the CLI.
K = Bounds(1, MAX_K)
DEFAULT_RANGE_M = 100.0
RANGE_M = Bounds(10, 5_000)
DEFAULT_SPACING_M = 50.0
SPACING_M = Bounds(5, 1_000)
DEFAULT_TIME_LIMIT_S = 50.0
TIME_LIMIT_S = Bounds(1, 600)


@dataclass(frozen=True)
class SitingQuery:
    """What every siting job asks: the town, the period of its cases (``[since, until)``, by
    default the 365 days before now) and the solver's time limit. The period and the limit are
    keyword-only, after each kind's own parameters."""

    town_code: str
    _: KW_ONLY
    since: datetime | None = None
    until: datetime | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S

    @staticmethod
    def stored(params: dict[str, Any]) -> dict[str, Any]:
        """The town, period and time limit a job stored, as keyword arguments of a query."""
        return {
            "town_code": str(params["town"]),
            **{
                key: None if params.get(key) is None else datetime.fromisoformat(str(params[key]))
                for key in ("since", "until")
            },
            "time_limit_s": float(params.get("time_limit_s") or DEFAULT_TIME_LIMIT_S),
        }

    def params(self) -> dict[str, Any]:
        """The JSON a job stores (the period in ISO 8601, or None)."""
        return {
            "town": self.town_code,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "time_limit_s": self.time_limit_s,
        }

    def period(self) -> tuple[datetime, datetime]:
        """``[since, until)``: by default the 365 days before ``until`` (now)."""
        until = self.until or utcnow()
        since = self.since or until - timedelta(days=365)
        if since >= until:
            raise ValidationError("since must be before until")
        return since, until

    def check(self, session: Session) -> None:
        """Cheap checks of what every siting asks: a known town, the time limit, the period."""
        get_region(session, self.town_code, level=RegionLevel.TOWN)
        TIME_LIMIT_S.check("time_limit_s", self.time_limit_s)
        self.period()


@dataclass(frozen=True)
class CameraSitingQuery(SitingQuery):
    """Where, how many cameras, how far they see, which cases count."""

    k: int
    range_m: float = DEFAULT_RANGE_M
    spacing_m: float = DEFAULT_SPACING_M

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CameraSitingQuery:
        """The query a job stored."""
        return cls(
            k=int(params["k"]),
            range_m=float(params.get("range_m") or DEFAULT_RANGE_M),
            spacing_m=float(params.get("spacing_m") or DEFAULT_SPACING_M),
            **SitingQuery.stored(params),
        )

    def params(self) -> dict[str, Any]:
        """The JSON a job stores."""
        return {
            **super().params(),
            "k": self.k,
            "range_m": self.range_m,
            "spacing_m": self.spacing_m,
        }


@dataclass(frozen=True)
class Demand:
    """The cases no camera sees now, in metres (UTM), with their grid codes."""

    ids: npt.NDArray[np.int64]
    xy: FloatArray
    grid_codes: list[str | None]
    seen_now: int


@dataclass(frozen=True)
class Candidates:
    """Road points where a camera could go: lon/lat, metres, and their road."""

    lonlat: FloatArray
    xy: FloatArray
    road_ids: npt.NDArray[np.int64]


_DEMAND_SQL = sa.text(
    f"""
    SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.grid_code,
           EXISTS (SELECT 1 FROM cameras c
                    WHERE c.status = 'online' AND ST_Covers(c.view, i.geom)) AS seen
    FROM incidents AS i
    WHERE i.town_code = :town AND i.reported_at >= :since AND i.reported_at < :until
      AND {valid_case("i")}
    ORDER BY i.id
    """  # noqa: S608 -- module constants only
)

_ROADS_SQL = sa.text(
    """
    SELECT r.id, ST_AsBinary(ST_Intersection(r.geom, t.geom)) AS wkb
    FROM roads AS r JOIN regions AS t ON t.code = :town
    WHERE ST_Intersects(r.geom, t.geom)
    ORDER BY r.id
    """
)


def _transformers(session: Session, town_code: str) -> tuple[Transformer, Transformer]:
    lon, lat = session.execute(
        sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c "
            "FROM regions WHERE code = :town) AS p"
        ),
        {"town": town_code},
    ).one()
    crs = utm_crs_for(float(lon), float(lat))
    return (
        Transformer.from_crs("EPSG:4326", crs, always_xy=True),
        Transformer.from_crs(crs, "EPSG:4326", always_xy=True),
    )


def demand(session: Session, query: CameraSitingQuery, forward: Transformer) -> Demand:
    """The period's valid cases of the town that no online camera sees now."""
    since, until = query.period()
    rows = session.execute(
        _DEMAND_SQL, {"town": query.town_code, "since": since, "until": until}
    ).all()
    unseen = [r for r in rows if not r.seen]
    lon = np.array([r.lon for r in unseen], dtype=np.float64)
    lat = np.array([r.lat for r in unseen], dtype=np.float64)
    x, y = forward.transform(lon, lat)
    return Demand(
        ids=np.array([r.id for r in unseen], dtype=np.int64),
        xy=np.column_stack([x, y]) if unseen else np.zeros((0, 2)),
        grid_codes=[r.grid_code for r in unseen],
        seen_now=len(rows) - len(unseen),
    )


def candidates(
    session: Session, query: CameraSitingQuery, forward: Transformer, back: Transformer
) -> Candidates:
    """Points every ``spacing_m`` along the town's roads (both ends included), deduplicated."""
    xy: list[FloatArray] = []
    road_ids: list[int] = []
    for road_id, wkb in session.execute(_ROADS_SQL, {"town": query.town_code}):
        geom = transform_geometry(shapely.from_wkb(bytes(wkb)), forward.transform)
        for line in shapely.get_parts(geom):
            if line.geom_type != "LineString" or line.length == 0:
                continue
            steps = np.append(np.arange(0.0, line.length, query.spacing_m), line.length)
            points = shapely.get_coordinates(shapely.line_interpolate_point(line, steps))
            xy.append(points)
            road_ids.extend([int(road_id)] * len(points))
    if not xy:
        return Candidates(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, dtype=np.int64))
    points = np.vstack(xy)
    # Points within 1 m of each other (shared road ends) are one site.
    _, keep = np.unique(np.round(points), axis=0, return_index=True)
    keep = np.sort(keep)
    points = points[keep]
    lon, lat = back.transform(points[:, 0], points[:, 1])
    return Candidates(np.column_stack([lon, lat]), points, np.array(road_ids)[keep])


def coverage(demand_xy: FloatArray, site_xy: FloatArray, range_m: float) -> sparse.csr_matrix:
    """The 0/1 matrix demand × site: the site is within ``range_m`` of the case."""
    if len(demand_xy) == 0 or len(site_xy) == 0:
        return sparse.csr_matrix((len(demand_xy), len(site_xy)), dtype=np.int8)
    pairs = cKDTree(site_xy).query_ball_point(demand_xy, r=range_m)
    rows = np.repeat(np.arange(len(pairs)), [len(p) for p in pairs])
    cols = np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs])
    data = np.ones(len(rows), dtype=np.int8)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(demand_xy), len(site_xy)))


@dataclass(frozen=True)
class Reduced:
    """The reduced problem: kept candidates, aggregated demand points and their weights."""

    kept: npt.NDArray[np.int64]  # indices into the candidates
    matrix: sparse.csr_matrix  # aggregated demand × kept candidates
    weights: FloatArray


def reduce_problem(matrix: sparse.csr_matrix) -> Reduced:
    """Drop empty and dominated candidates; merge demand covered by the same candidates."""
    cols = matrix.tocsc()
    sizes = np.asarray(cols.sum(axis=0)).ravel()
    useful = np.flatnonzero(sizes > 0)
    sub = cols[:, useful].astype(np.int32)
    overlap = (sub.T @ sub).tocoo()  # shared cases of each pair of candidates
    own = sizes[useful]
    dominated = np.zeros(len(useful), dtype=bool)
    for a, b, shared in zip(overlap.row, overlap.col, overlap.data, strict=True):
        if a == b or shared != own[a]:
            continue
        # a's cases are all b's: a goes, unless they are equal and a comes first
        if own[b] > own[a] or a > b:
            dominated[a] = True
    kept = useful[~dominated]
    rows = matrix.tocsc()[:, kept].tocsr()
    groups: dict[tuple[int, ...], int] = defaultdict(int)
    for i in range(rows.shape[0]):
        key = tuple(rows.indices[rows.indptr[i] : rows.indptr[i + 1]].tolist())
        if key:
            groups[tuple(sorted(key))] += 1
    keys = list(groups)
    data_rows = np.repeat(np.arange(len(keys)), [len(k) for k in keys])
    data_cols = np.array([c for k in keys for c in k], dtype=np.int64)
    aggregated = sparse.csr_matrix(
        (np.ones(len(data_rows), dtype=np.int8), (data_rows, data_cols)),
        shape=(len(keys), len(kept)),
    )
    return Reduced(kept, aggregated, np.array([groups[k] for k in keys], dtype=np.float64))


def greedy(reduced: Reduced, k: int) -> npt.NDArray[np.int64]:
    """k columns picked one by one, each covering the most weight not yet covered."""
    cols = reduced.matrix.tocsc()
    left = reduced.weights.copy()
    chosen: list[int] = []
    for _ in range(k):
        gains = cols.T @ left
        gains[chosen] = -1
        j = int(np.argmax(gains))
        chosen.append(j)
        left[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]] = 0
    return np.array(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Solution:
    """A solved siting problem (camera sites here, stations in ``gis.services.stations``): the
    chosen candidates, the objective, HiGHS's bound, the gap, the solver's status and time."""

    chosen: npt.NDArray[np.int64]
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float

    def summary(self) -> dict[str, Any]:
        """How the problem was solved, as both siting jobs' summaries report it."""
        return {
            "optimality_gap": round(self.gap, 6),
            "solver_status": self.status,
            "solve_s": round(self.seconds, 3),
        }


def solve_mclp(reduced: Reduced, k: int, *, time_limit_s: float) -> Solution:
    """Solve the reduced MCLP with HiGHS (all kept candidates when k reaches their count)."""
    n_sites = len(reduced.kept)
    started = time.perf_counter()
    if k >= n_sites:
        total = float(reduced.weights.sum())
        return Solution(np.arange(n_sites), total, total, 0.0, "all candidates", 0.0)
    import highspy

    n_demand = reduced.matrix.shape[0]
    h = highs_model(time_limit_s)
    inf = highspy.kHighsInf
    # Columns: x_0…x_{n_sites-1} (binary), then y_0…y_{n_demand-1} in [0, 1].
    costs = np.concatenate([np.zeros(n_sites), reduced.weights])
    lower = np.zeros(n_sites + n_demand)
    upper = np.ones(n_sites + n_demand)
    h.addVars(n_sites + n_demand, lower, upper)
    h.changeColsCost(n_sites + n_demand, np.arange(n_sites + n_demand, dtype=np.int32), costs)
    h.changeColsIntegrality(
        n_sites,
        np.arange(n_sites, dtype=np.int32),
        np.full(n_sites, highspy.HighsVarType.kInteger),
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    # y_i − Σ_j a_ij x_j ≤ 0
    m = reduced.matrix.tocsr()
    starts: list[int] = []
    index: list[int] = []
    value: list[float] = []
    for i in range(n_demand):
        starts.append(len(index))
        index.append(n_sites + i)
        value.append(1.0)
        cols = m.indices[m.indptr[i] : m.indptr[i + 1]]
        index.extend(cols.tolist())
        value.extend([-1.0] * len(cols))
    h.addRows(
        n_demand,
        np.full(n_demand, -inf),
        np.zeros(n_demand),
        len(index),
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value, dtype=np.float64),
    )
    # Σ x_j = k
    h.addRow(float(k), float(k), n_sites, np.arange(n_sites, dtype=np.int32), np.ones(n_sites))
    # The greedy answer as the first incumbent: HiGHS then only has to prove or beat it.
    start = greedy(reduced, k)
    x0 = np.zeros(n_sites)
    x0[start] = 1.0
    y0 = (np.asarray(m[:, start].sum(axis=1)).ravel() > 0).astype(np.float64)
    initial = highspy.HighsSolution()
    initial.col_value = np.concatenate([x0, y0]).tolist()
    initial.value_valid = True
    h.setSolution(initial)
    h.run()
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    x = np.asarray(h.getSolution().col_value[:n_sites])
    chosen = np.flatnonzero(x > 0.5)
    if len(chosen) != k:
        raise GisError(f"HiGHS found no solution ({status})")
    objective = float(info.objective_function_value)
    bound = float(info.mip_dual_bound)
    gap = max(0.0, (bound - objective) / bound) if bound > 0 else 0.0
    return Solution(chosen, objective, bound, gap, status, time.perf_counter() - started)


@dataclass(frozen=True)
class Site:
    """One chosen site: where, on which road and grid, and the cases it would see."""

    rank: int
    lon: float
    lat: float
    road_id: int
    grid_code: str | None
    cases: int  # cases unseen today within range
    only_here: int  # of those, seen by no other chosen site

    def properties(self, range_m: float) -> dict[str, Any]:
        """The site's feature properties (the CSV's columns but lon/lat, and the range)."""
        return {
            "rank": self.rank,
            "road_id": self.road_id,
            "grid": self.grid_code,
            "cases_seen": self.cases,
            "only_this_site": self.only_here,
            "range_m": range_m,
        }


@dataclass(frozen=True)
class CameraSiting:
    """The answer: the sites, the cases they add, per grid, and how the problem was solved."""

    town_code: str
    k: int
    range_m: float
    cases: int
    seen_now: int
    added: int
    sites: list[Site]
    per_grid: dict[str, int]
    candidates: int
    candidates_kept: int
    demand_points: int
    solution: Solution

    def result(self) -> dict[str, Any]:
        """The job's result: a GeoJSON layer of the sites, the summary, and a CSV table."""
        return site_layer(
            [(site.lon, site.lat, site.properties(self.range_m)) for site in self.sites],
            {
                "town": self.town_code,
                "k": self.k,
                "range_m": self.range_m,
                "cases": self.cases,
                "seen_by_current_cameras": self.seen_now,
                "added_by_new_cameras": self.added,
                "per_grid": self.per_grid,
                "candidates": self.candidates,
                "candidates_after_pruning": self.candidates_kept,
                "demand_points_after_aggregation": self.demand_points,
                "bound": self.solution.bound,
                **self.solution.summary(),
            },
            ["rank", "lon", "lat", "road_id", "grid", "cases_seen", "only_this_site"],
        )


def site_layer(
    sites: list[tuple[float, float, dict[str, Any]]],
    summary: dict[str, Any],
    columns: list[str],
) -> dict[str, Any]:
    """A siting job's result: the sites as GeoJSON points (id: their rank) with the summary,
    and a table of ``columns`` (read from each site's properties, lon/lat to 7 decimals) for
    the CSV."""

    def cell(lon: float, lat: float, properties: dict[str, Any], column: str) -> Any:
        if column in ("lon", "lat"):
            return round(lon if column == "lon" else lat, 7)
        value = properties.get(column)
        return "" if value is None else value

    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": properties["rank"],
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": properties,
            }
            for lon, lat, properties in sites
        ],
        "summary": summary,
        "table": {
            "columns": columns,
            "rows": [[cell(lon, lat, p, c) for c in columns] for lon, lat, p in sites],
        },
    }


def highs_model(time_limit_s: float) -> Any:
    """A silent single-threaded HiGHS model with a time limit (camera and station siting).

    HiGHS prints its banner to the process's standard output the first time a model is made,
    whatever its options say; it goes to standard error instead, so that the CLI's CSV on
    standard output holds only the CSV."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        model = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    model.setOptionValue("output_flag", False)
    model.setOptionValue("time_limit", float(time_limit_s))
    model.setOptionValue("threads", 1)
    return model


def grid_of(session: Session, lon: float, lat: float) -> str | None:
    """The grid a site stands in (None outside every grid)."""
    from gis.errors import OutsideCoverageError
    from gis.services.assignment import locate

    try:
        return locate(session, lon, lat).grid_code
    except OutsideCoverageError:
        return None


def check_query(session: Session, query: CameraSitingQuery) -> None:
    """Cheap checks before a job is queued (unknown town, k or range out of bounds, period)."""
    query.check(session)
    K.check("k", query.k)
    RANGE_M.check("range_m", query.range_m)
    SPACING_M.check("spacing_m", query.spacing_m)


def site_cameras(
    session: Session, query: CameraSitingQuery, *, progress: Progress = no_progress
) -> CameraSiting:
    """The k road sites whose new cameras would see the most of the cases unseen today."""
    check_query(session, query)
    forward, back = _transformers(session, query.town_code)
    progress(0.05, "reading cases and cameras")
    cases = demand(session, query, forward)
    if len(cases.ids) < MIN_CASES:
        raise ValidationError(
            f"only {len(cases.ids)} case(s) in the period are unseen by today's cameras; siting "
            f"needs at least {MIN_CASES} — widen the period"
        )
    progress(0.15, "placing candidate sites along the roads")
    sites = candidates(session, query, forward, back)
    if len(sites.xy) == 0:
        raise ValidationError(f"town {query.town_code} has no roads to place cameras on")
    if len(sites.xy) > MAX_CANDIDATES:
        raise ValidationError(
            f"{len(sites.xy)} candidate sites: use a larger spacing_m (at most {MAX_CANDIDATES})"
        )
    if query.k > len(sites.xy):
        raise ValidationError(
            f"k = {query.k} is more than the {len(sites.xy)} candidate sites; use fewer cameras "
            "or a smaller spacing_m"
        )
    matrix = coverage(cases.xy, sites.xy, query.range_m)
    progress(0.25, f"reducing {matrix.shape[0]} cases × {matrix.shape[1]} sites")
    reduced = reduce_problem(matrix)
    progress(0.35, f"solving {reduced.matrix.shape[0]} × {len(reduced.kept)} with HiGHS")
    solution = solve_mclp(reduced, query.k, time_limit_s=query.time_limit_s)
    progress(0.9, "counting cases per grid")
    chosen = reduced.kept[solution.chosen]
    # Fill up to k with the best remaining sites if pruning left fewer than k useful ones.
    if len(chosen) < query.k:
        rest = np.setdiff1d(np.arange(len(sites.xy)), chosen)
        chosen = np.concatenate([chosen, rest[: query.k - len(chosen)]])
    return _answer(session, query, cases, sites, matrix, chosen, reduced, solution)


def _answer(
    session: Session,
    query: CameraSitingQuery,
    cases: Demand,
    sites: Candidates,
    matrix: sparse.csr_matrix,
    chosen: npt.NDArray[np.int64],
    reduced: Reduced,
    solution: Solution,
) -> CameraSiting:
    sub = matrix.tocsc()[:, chosen].tocsr()
    hits = np.asarray(sub.sum(axis=1)).ravel()
    covered = hits > 0
    per_grid: dict[str, int] = defaultdict(int)
    for i in np.flatnonzero(covered):
        per_grid[cases.grid_codes[i] or "unassigned"] += 1
    only = np.asarray(sub[hits == 1].sum(axis=0)).ravel()
    per_site = np.asarray(sub.sum(axis=0)).ravel()
    order = np.argsort(-per_site, kind="stable")
    out: list[Site] = []
    for rank, j in enumerate(order, start=1):
        lon, lat = (float(v) for v in sites.lonlat[chosen[j]])
        grid = grid_of(session, lon, lat)
        out.append(
            Site(
                rank, lon, lat, int(sites.road_ids[chosen[j]]), grid, int(per_site[j]), int(only[j])
            )
        )
    return CameraSiting(
        town_code=query.town_code,
        k=query.k,
        range_m=query.range_m,
        cases=len(cases.ids) + cases.seen_now,
        seen_now=cases.seen_now,
        added=int(covered.sum()),
        sites=out,
        per_grid=dict(sorted(per_grid.items(), key=lambda kv: -kv[1])),
        candidates=len(sites.xy),
        candidates_kept=len(reduced.kept),
        demand_points=reduced.matrix.shape[0],
        solution=solution,
    )


def check(session: Session, params: dict[str, Any]) -> None:
    """The checks done before a camera-siting job is queued."""
    check_query(session, CameraSitingQuery.from_params(params))


def run(session: Session, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The job's work: the siting as a GeoJSON layer with its summary and CSV table."""
    return site_cameras(session, CameraSitingQuery.from_params(params), progress=progress).result()


jobs.register(KIND, jobs.JobKind(check=check, run=run))
