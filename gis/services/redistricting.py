"""Grid redistricting suggestions: contiguous grids of balanced workload, as a draft plan.

The building blocks are a fine square grid of cells (in the UTM zone of the village, metres)
clipped to the village, each piece of a cell a unit of its own. Each unit is measured by the
plan system's own balance rule (``gis.services.planning.balance``: households and population
apportioned by area from the current grids, cases of the last 12 months by location), so the
suggestion and the plan's balance table count the same things. A unit's workload is the
planner-weighted mean of its shares of the village's totals; ideally every grid holds 1/k of it.

Regionalisation is spopt's: AZP (``spopt.region.azp.AZPOrig``) with an objective of its own —
Σ over grids of (workload − 1/k)² — over rook contiguity (shared edges, so every grid is one
piece), from several random starts, the best kept. AZP only moves a unit when its old grid stays
connected, so every grid is contiguous by construction. max-p (threshold bisected to get k
grids) and SKATER are available for comparison (``method``); docs/analytics.md has the
measurement that made AZP the default.

The dissolved grids become a draft plan through ``planning.create_plan`` — validated (tiling,
contiguity, codes), with its balance table and impact preview — applied only by a planner.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import area_m2, transform_geometry, utm_crs_for
from gis.layers.base import utcnow
from gis.layers.grids import Grid
from gis.layers.plans import PlanScope
from gis.services import jobs, planning
from gis.services.jobs import Progress, no_progress
from gis.settings import Settings, get_settings

FloatArray = npt.NDArray[np.float64]

KIND = "redistricting"
WEIGHT_COLUMNS = ("households", "population", "incidents_12m")
DEFAULT_WEIGHTS = {"households": 1.0, "population": 1.0, "incidents_12m": 1.0}
# Cells per proposed grid when the planner gives no cell size: fine enough to draw a boundary,
# coarse enough for AZP to finish in seconds (bench/analytics).
CELLS_PER_GRID = 12
MIN_CELL_M, MAX_CELL_M = 25.0, 2_000.0
MAX_UNITS = 3_000
MAX_GRIDS = 200
STARTS = 4


class Method(StrEnum):
    """The regionalisation algorithm: ``balance`` (the default, see ``balanced_regions``) or
    one of spopt's, kept for comparison (too slow here beyond a few hundred blocks)."""

    BALANCE = "balance"
    AZP = "azp"
    MAXP = "maxp"
    SKATER = "skater"


@dataclass(frozen=True)
class RedistrictQuery:
    """What to redraw and how to weigh the work."""

    level: PlanScope
    code: str
    grids: int | None = None  # per village; None: as many as now
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    cell_m: float | None = None
    method: Method = Method.BALANCE
    seed: int = 0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RedistrictQuery:
        """The query stored in a job's params (4xx for unknown values)."""
        try:
            level = PlanScope(params.get("level", "village"))
            method = Method(params.get("method", Method.BALANCE.value))
        except ValueError as error:
            raise ValidationError(str(error)) from None
        weights = params.get("weights") or dict(DEFAULT_WEIGHTS)
        return cls(
            level=level,
            code=str(params["code"]),
            grids=params.get("grids"),
            weights={str(k): float(v) for k, v in weights.items()},
            cell_m=params.get("cell_m"),
            method=method,
            seed=int(params.get("seed") or 0),
        )

    def params(self) -> dict[str, Any]:
        """The JSON a job stores."""
        return {
            "level": self.level.value,
            "code": self.code,
            "grids": self.grids,
            "weights": self.weights,
            "cell_m": self.cell_m,
            "method": self.method.value,
            "seed": self.seed,
        }


def check_weights(weights: dict[str, float]) -> None:
    """``ValidationError`` for an unknown column, a negative weight, or all weights zero."""
    unknown = sorted(set(weights) - set(WEIGHT_COLUMNS))
    if unknown:
        raise ValidationError(
            f"unknown weight column(s) {', '.join(map(repr, unknown))}: use "
            + ", ".join(WEIGHT_COLUMNS)
        )
    if any(not np.isfinite(w) or w < 0 for w in weights.values()):
        raise ValidationError("weights must be finite numbers ≥ 0")
    if sum(weights.values()) <= 0:
        raise ValidationError("at least one weight must be > 0")


@dataclass
class _Village:
    code: str
    geom: MultiPolygon
    current: list[Grid]
    k: int


def _villages(session: Session, query: RedistrictQuery) -> tuple[planning.Scope, list[_Village]]:
    """The scope and, per village, its current grids and how many grids to propose."""
    check_weights(query.weights)
    if query.cell_m is not None and not MIN_CELL_M <= query.cell_m <= MAX_CELL_M:
        raise ValidationError(f"cell_m must be between {MIN_CELL_M:.0f} and {MAX_CELL_M:.0f} m")
    scope = planning.load_scope(session, query.level, query.code)
    current = planning.current_grids(session, scope)
    by_village: dict[str, list[Grid]] = defaultdict(list)
    for grid in current:
        by_village[grid.village_code].append(grid)
    villages = []
    for code, geom in sorted(scope.villages.items()):
        grids = by_village.get(code, [])
        k = query.grids if query.grids is not None else len(grids)
        if not grids:
            raise ValidationError(
                f"village {code} has no current grids: there is nothing to compare with"
            )
        if k < 2:
            raise ValidationError(
                f"village {code} has {len(grids)} current grid(s): a suggestion needs at least "
                "2 grids to balance (give grids=N to split it)"
            )
        if k > MAX_GRIDS:
            raise ValidationError(f"at most {MAX_GRIDS} grids per village")
        villages.append(_Village(code, geom, grids, k))
    if not villages:
        raise ValidationError(f"{query.level.value} {query.code} has no villages to redraw")
    return scope, villages


def check(session: Session, params: dict[str, Any]) -> None:
    """The checks done before a job is queued (unknown village, one grid, bad weights…)."""
    _villages(session, RedistrictQuery.from_params(params))


# --- building blocks -------------------------------------------------------------------------


def building_blocks(village: BaseGeometry, k: int, cell_m: float | None = None) -> list[Polygon]:
    """Square cells of ``cell_m`` metres (UTM) clipped to ``village``; each piece is a block.

    The cell corners are transformed to lon/lat once, so neighbouring cells share their corners
    exactly and the pieces tile the village with no slivers.
    """
    lon, lat = village.centroid.x, village.centroid.y
    crs = utm_crs_for(lon, lat)
    forward = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    back = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    if cell_m is None:
        # Area in m² on the ellipsoid, the same measure as the plan's balance table.
        cell_m = float(np.sqrt(area_m2(village) / (CELLS_PER_GRID * k)))
        cell_m = min(MAX_CELL_M, max(MIN_CELL_M, cell_m))
    minx, miny, maxx, maxy = transform_geometry(village, forward.transform).bounds
    xs = np.arange(minx - cell_m / 2, maxx + cell_m, cell_m)
    ys = np.arange(miny - cell_m / 2, maxy + cell_m, cell_m)
    if (len(xs) - 1) * (len(ys) - 1) > MAX_UNITS * 4:
        raise ValidationError(
            f"{cell_m:.0f} m cells are too fine for this area: use a larger cell_m"
        )
    gx, gy = np.meshgrid(xs, ys)
    glon, glat = back.transform(gx, gy)
    shapely.prepare(village)
    blocks: list[Polygon] = []
    for r in range(len(ys) - 1):
        for c in range(len(xs) - 1):
            cell = Polygon(
                [
                    (glon[r, c], glat[r, c]),
                    (glon[r, c + 1], glat[r, c + 1]),
                    (glon[r + 1, c + 1], glat[r + 1, c + 1]),
                    (glon[r + 1, c], glat[r + 1, c]),
                ]
            )
            if not village.intersects(cell):
                continue
            if village.contains(cell):
                blocks.append(cell)
                continue
            piece = planning.polygonal(village.intersection(cell))
            blocks.extend(p for p in piece.geoms if p.area > 0)
    if len(blocks) > MAX_UNITS:
        raise ValidationError(
            f"{len(blocks)} building blocks at {cell_m:.0f} m: use a larger cell_m"
        )
    if len(blocks) < k:
        raise ValidationError(f"{len(blocks)} building blocks for {k} grids: use a smaller cell_m")
    return blocks


def _measure(
    session: Session,
    scope: planning.Scope,
    village: str,
    shapes: Sequence[BaseGeometry],
    *,
    settings: Settings,
    now: datetime,
) -> FloatArray:
    """households, population, incidents_12m of each shape, by the plan's balance rule."""
    grids = [
        planning.ProposedGrid(
            index=i,
            code=f"u{i}",
            name=None,
            geom=MultiPolygon([s]) if isinstance(s, Polygon) else planning.polygonal(s),
            village_code=village,
        )
        for i, s in enumerate(shapes)
    ]
    report = planning.balance(session, scope, grids, settings=settings, now=now)
    return np.array(
        [[float(entry[m]) for m in WEIGHT_COLUMNS] for entry in report["grids"]],
        dtype=np.float64,
    )


def workload(values: FloatArray, weights: dict[str, float]) -> FloatArray:
    """Each row's weighted share of the column totals (the rows' workloads sum to 1)."""
    w = np.array([weights.get(m, 0.0) for m in WEIGHT_COLUMNS], dtype=np.float64)
    totals = values.sum(axis=0)
    use = (w > 0) & (totals > 0)
    if not use.any():
        raise ValidationError(
            "the weighted columns are all zero in this village: weigh another column"
        )
    shares = values[:, use] / totals[use]
    return np.asarray(shares @ (w[use] / w[use].sum()), dtype=np.float64)


def imbalance(loads: FloatArray) -> dict[str, float]:
    """The balance measure of a set of grid workloads: coefficient of variation (the one that
    is compared) and the largest deviation from the mean."""
    mean = float(loads.mean())
    return {
        "cv": round(float(loads.std() / mean), 4) if mean > 0 else 0.0,
        "max_deviation": round(float(np.abs(loads / mean - 1).max()), 4) if mean > 0 else 0.0,
    }


# --- regionalisation -------------------------------------------------------------------------


class BalanceObjective:
    """AZP's objective for balanced regions: Σ_r (S_r − T)², S_r a region's total workload."""

    def __init__(self, target: float) -> None:
        self.target = target

    def __call__(self, labels: npt.NDArray[Any], attr: FloatArray) -> float:
        """The objective of a labelling."""
        values = attr[:, 0]
        total = 0.0
        for region in np.unique(labels):
            total += (float(values[labels == region].sum()) - self.target) ** 2
        return total

    def update(
        self, moving_area: int, recipient_region: Any, labels: npt.NDArray[Any], attr: FloatArray
    ) -> float:
        """The change of the objective when ``moving_area`` joins ``recipient_region``."""
        values = attr[:, 0]
        a = float(values[moving_area])
        donor = float(values[labels == labels[moving_area]].sum())
        recipient = float(values[labels == recipient_region].sum())
        return 2 * a * (recipient - donor) + 2 * a * a


def _rook(blocks: list[Polygon]) -> Any:
    import geopandas as gpd
    from libpysal.weights import Rook

    frame = gpd.GeoDataFrame(geometry=blocks, crs="EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rook.from_dataframe(frame, use_index=False, silence_warnings=True)


def regionalise(
    blocks: list[Polygon],
    loads: FloatArray,
    k: int,
    *,
    method: Method = Method.BALANCE,
    seed: int = 0,
    progress: Progress = no_progress,
) -> npt.NDArray[np.int64]:
    """Region labels 0…k−1 of the blocks: contiguous (rook) regions of balanced workload."""
    w = _rook(blocks)
    if w.n_components > 1:
        raise ValidationError(
            f"the village is in {w.n_components} separate pieces at this cell size: a grid "
            "cannot be contiguous across them (use a larger cell_m)"
        )
    adj = w.sparse.tocsr()
    attr = loads.reshape(-1, 1)
    if method is Method.MAXP:
        return _maxp(blocks, w, loads, k)
    if method is Method.SKATER:
        return _skater(blocks, w, loads, k)
    if method is Method.BALANCE:
        neighbours = [list(w.neighbors[i]) for i in range(w.n)]
        centres = np.array([[b.centroid.x, b.centroid.y] for b in blocks])
        return balanced_regions(neighbours, centres, loads, k, seed=seed, progress=progress)
    from spopt.region.azp import AZPOrig

    best: tuple[float, npt.NDArray[np.int64]] | None = None
    objective = BalanceObjective(float(loads.sum()) / k)
    for start in range(STARTS):
        progress(start / STARTS, f"AZP start {start + 1} of {STARTS}")
        azp = AZPOrig(random_state=seed + start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            azp.fit_from_scipy_sparse_matrix(adj, attr, k, objective_func=objective)
        labels = np.asarray(azp.labels_, dtype=np.int64)
        value = objective(labels, attr)
        if best is None or value < best[0]:
            best = (value, labels)
    assert best is not None
    return _relabel(best[1])


def balanced_regions(
    neighbours: list[list[int]],
    centres: FloatArray,
    loads: FloatArray,
    k: int,
    *,
    seed: int = 0,
    max_rounds: int = 200,
    progress: Progress = no_progress,
) -> npt.NDArray[np.int64]:
    """k contiguous regions of near-equal load over a connected adjacency.

    1. Seeds: k-means (scipy) on the block centres, each seed the block nearest a centre.
    2. Growth: the region with the least load takes its unassigned neighbour nearest its seed,
       until every block has a region — contiguous by construction, roughly balanced.
    3. AZP's move rule with a balance objective: a boundary block moves to a neighbouring region
       when that lowers Σ_r (S_r − T)² (the change is 2a(S_to − S_from) + 2a²) and its old
       region stays connected; rounds until no move helps.
    """
    from scipy.cluster.vq import kmeans2

    n = len(neighbours)
    rng = np.random.default_rng(seed)
    _, near = kmeans2(centres, k, minit="++", seed=rng)
    seeds: list[int] = []
    for c in range(k):
        cluster = np.flatnonzero(near == c)
        pool = cluster if cluster.size else np.setdiff1d(np.arange(n), seeds)
        centre = centres[pool].mean(axis=0)
        order = pool[np.argsort(((centres[pool] - centre) ** 2).sum(axis=1))]
        seeds.append(int(next(i for i in order if i not in seeds)))
    labels = np.full(n, -1, dtype=np.int64)
    sums = np.zeros(k)
    for r, i in enumerate(seeds):
        labels[i] = r
        sums[r] = loads[i]
    assigned = k
    while assigned < n:
        grew = False
        for r in np.argsort(sums):
            frontier = {
                j for i in np.flatnonzero(labels == r) for j in neighbours[i] if labels[j] < 0
            }
            if not frontier:
                continue
            seed_xy = centres[seeds[r]]
            j = min(frontier, key=lambda j: float(((centres[j] - seed_xy) ** 2).sum()))
            labels[j] = r
            sums[r] += loads[j]
            assigned += 1
            grew = True
            break
        if not grew:  # unreachable from every seed: the adjacency is not connected
            raise ValidationError("the building blocks are not connected")
    progress(0.3, "regions grown; balancing")
    target = float(loads.sum()) / k
    members = [set(np.flatnonzero(labels == r).tolist()) for r in range(k)]
    for rounds in range(max_rounds):
        moved = 0
        for i in rng.permutation(n):
            d = int(labels[i])
            if len(members[d]) == 1:
                continue
            a = float(loads[i])
            best: tuple[float, int] | None = None
            for r in {int(labels[j]) for j in neighbours[i]} - {d}:
                delta = 2 * a * (sums[r] - sums[d]) + 2 * a * a
                if delta < -1e-12 * target * target and (best is None or delta < best[0]):
                    best = (delta, r)
            if best is None or not _connected_without(members[d], i, neighbours):
                continue
            r = best[1]
            members[d].discard(i)
            members[r].add(i)
            labels[i] = r
            sums[d] -= a
            sums[r] += a
            moved += 1
        progress(0.3 + 0.7 * min(1.0, (rounds + 1) / 20), f"balancing: round {rounds + 1}")
        if not moved:
            break
    return labels


def _connected_without(region: set[int], removed: int, neighbours: list[list[int]]) -> bool:
    """Whether ``region`` minus ``removed`` is still one connected piece (BFS)."""
    rest = region - {removed}
    start = next(iter(rest))
    seen = {start}
    stack = [start]
    while stack:
        i = stack.pop()
        for j in neighbours[i]:
            if j in rest and j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(rest)


def _relabel(labels: npt.ArrayLike) -> npt.NDArray[np.int64]:
    _, dense = np.unique(np.asarray(labels), return_inverse=True)
    return np.asarray(dense, dtype=np.int64)


def _maxp(blocks: list[Polygon], w: Any, loads: FloatArray, k: int) -> npt.NDArray[np.int64]:
    """max-p with its threshold bisected until it yields k regions (or the closest found)."""
    import geopandas as gpd
    from spopt.region import MaxPHeuristic

    frame = gpd.GeoDataFrame({"load": loads}, geometry=blocks, crs="EPSG:4326")
    lo, hi = 0.3 / k, 1.0 / k
    found: tuple[int, npt.NDArray[np.int64]] | None = None
    for _ in range(8):
        threshold = (lo + hi) / 2
        model = MaxPHeuristic(frame, w, ["load"], "load", threshold, top_n=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.solve()
        labels = _relabel(model.labels_)
        p = int(labels.max()) + 1
        if found is None or abs(p - k) < abs(found[0] - k):
            found = (p, labels)
        if p == k:
            break
        if p > k:
            lo = threshold
        else:
            hi = threshold
    assert found is not None
    return found[1]


def _skater(blocks: list[Polygon], w: Any, loads: FloatArray, k: int) -> npt.NDArray[np.int64]:
    import geopandas as gpd
    from spopt.region import Skater

    frame = gpd.GeoDataFrame({"load": loads}, geometry=blocks, crs="EPSG:4326")
    model = Skater(frame, w, ["load"], n_clusters=k, floor=1, trace=False, islands="increase")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.solve()
    return _relabel(model.labels_)


# --- the suggestion --------------------------------------------------------------------------


@dataclass(frozen=True)
class VillageSuggestion:
    """One village's proposed grids and the balance before and after."""

    village_code: str
    method: Method
    blocks: int
    grids: list[planning.ProposedGrid]
    before: dict[str, float]
    after: dict[str, float]


def _codes(
    session: Session, village: _Village, regions: list[MultiPolygon], taken: set[str]
) -> list[str]:
    """Each region keeps the code of the current grid it overlaps most (greedy, largest first);
    the others get new codes ``<village>-NN`` not used by any current grid."""
    pairs = sorted(
        (
            (-shapely.area(shapely.intersection(region, to_shape(g.geom))), i, g.code)
            for i, region in enumerate(regions)
            for g in village.current
        ),
    )
    codes: dict[int, str] = {}
    used: set[str] = set()
    for overlap, i, code in pairs:
        if overlap < 0 and i not in codes and code not in used:
            codes[i] = code
            used.add(code)
    n = 1
    for i in range(len(regions)):
        while i not in codes:
            candidate = f"{village.code}-{n:02d}"
            n += 1
            if candidate not in taken and candidate not in used:
                codes[i] = candidate
                used.add(candidate)
    return [codes[i] for i in range(len(regions))]


def suggest_village(
    session: Session,
    scope: planning.Scope,
    village: _Village,
    query: RedistrictQuery,
    *,
    settings: Settings,
    now: datetime,
    taken: set[str],
    progress: Progress = no_progress,
) -> VillageSuggestion:
    """The proposed grids of one village and their balance against the current grids'."""
    progress(0.05, f"village {village.code}: building blocks")
    blocks = building_blocks(village.geom, village.k, query.cell_m)
    progress(0.15, f"village {village.code}: measuring {len(blocks)} blocks")
    values = _measure(session, scope, village.code, blocks, settings=settings, now=now)
    current_geoms = [to_shape(g.geom) for g in village.current]
    current_values = _measure(
        session, scope, village.code, current_geoms, settings=settings, now=now
    )
    weights = query.weights
    loads = workload(values, weights)
    progress(0.3, f"village {village.code}: regionalising ({query.method.value})")

    def inner(fraction: float, message: str) -> None:
        progress(0.3 + 0.6 * fraction, f"village {village.code}: {message}")

    labels = regionalise(
        blocks, loads, village.k, method=query.method, seed=query.seed, progress=inner
    )
    regions = [
        planning.polygonal(shapely.union_all([blocks[i] for i in np.flatnonzero(labels == r)]))
        for r in range(int(labels.max()) + 1)
    ]
    region_values = np.array([values[labels == r].sum(axis=0) for r in range(len(regions))])
    # Shares of the village totals, so that before and after use the same denominators.
    after = imbalance(_shares(region_values, values, weights))
    before = imbalance(_shares(current_values, values, weights))
    codes = _codes(session, village, regions, taken)
    grids = [
        planning.ProposedGrid(
            index=i,
            code=code,
            name=None,
            geom=region,
            village_code=village.code,
            households=round(float(region_values[i][0])),
            population=round(float(region_values[i][1])),
        )
        for i, (code, region) in enumerate(zip(codes, regions, strict=True))
    ]
    return VillageSuggestion(village.code, query.method, len(blocks), grids, before, after)


def _shares(rows: FloatArray, units: FloatArray, weights: dict[str, float]) -> FloatArray:
    """Weighted workload of ``rows`` as shares of the village totals measured on ``units``."""
    w = np.array([weights.get(m, 0.0) for m in WEIGHT_COLUMNS], dtype=np.float64)
    totals = units.sum(axis=0)
    use = (w > 0) & (totals > 0)
    return np.asarray((rows[:, use] / totals[use]) @ (w[use] / w[use].sum()), dtype=np.float64)


@dataclass(frozen=True)
class Suggestion:
    """A redistricting suggestion stored as a draft plan."""

    plan_id: int
    valid: bool
    villages: list[VillageSuggestion]

    def summary(self) -> dict[str, Any]:
        """The job's result JSON."""
        return {
            "link": f"/plans/{self.plan_id}",
            "plan_id": self.plan_id,
            "valid": self.valid,
            "villages": [
                {
                    "village": v.village_code,
                    "method": v.method.value,
                    "blocks": v.blocks,
                    "grids": len(v.grids),
                    "before": v.before,
                    "after": v.after,
                }
                for v in self.villages
            ],
        }


def suggest(
    session: Session,
    query: RedistrictQuery,
    *,
    actor: str,
    settings: Settings | None = None,
    now: datetime | None = None,
    progress: Progress = no_progress,
) -> Suggestion:
    """Suggest balanced contiguous grids for a village (or each village of a town) and store
    them as a draft plan; ``ValidationError`` if no village's balance would improve."""
    settings = settings or get_settings()
    now = now or utcnow()
    scope, villages = _villages(session, query)
    token = planning.version_token(planning.current_grids(session, scope))
    in_scope = {g.code for v in villages for g in v.current}
    taken = set(
        session.scalars(
            sa.select(Grid.code).where(Grid.valid_to.is_(None), Grid.code.not_in(in_scope))
        )
    )
    suggestions: list[VillageSuggestion] = []
    for n, village in enumerate(villages):

        def step(fraction: float, message: str, n: int = n) -> None:
            progress(0.9 * (n + fraction) / len(villages), message)

        suggestions.append(
            suggest_village(
                session,
                scope,
                village,
                query,
                settings=settings,
                now=now,
                taken=taken,
                progress=step,
            )
        )
    worse = [s for s in suggestions if s.after["cv"] >= s.before["cv"]]
    if len(worse) == len(suggestions):
        detail = "; ".join(
            f"village {s.village_code}: now {s.before['cv']}, suggested {s.after['cv']}"
            for s in worse
        )
        raise ValidationError(
            "the current grids are already at least as balanced as the best suggestion "
            f"(coefficient of variation of the weighted workload: {detail})"
        )
    progress(0.92, "validating the draft plan")
    features = []
    for s in suggestions:
        # A village whose grids would not improve keeps them as they are.
        if s in worse:
            village = next(v for v in villages if v.code == s.village_code)
            features.extend(_unchanged(village))
        else:
            features.extend(g.feature() for g in s.grids)
    plan = planning.create_plan(
        session,
        scope_level=query.level,
        scope_code=query.code,
        proposed={"type": "FeatureCollection", "features": features},
        based_on_version=token,
        actor=actor,
        settings=settings,
        title=f"Suggested grids ({query.method.value}, balanced "
        + ", ".join(f"{k}×{v:g}" for k, v in query.weights.items() if v > 0)
        + ")",
        now=now,
    )
    return Suggestion(plan.id, bool(plan.validation.get("valid")), suggestions)


def _unchanged(village: _Village) -> list[dict[str, Any]]:
    return [
        planning.ProposedGrid(
            index=0,
            code=g.code,
            name=g.name,
            geom=planning.polygonal(to_shape(g.geom)),
            village_code=village.code,
        ).feature()
        for g in village.current
    ]


def run(session: Session, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The job's work: the suggestion as a draft plan; the result links to it."""
    query = RedistrictQuery.from_params(params)
    suggestion = suggest(session, query, actor=str(params.get("actor") or "job"), progress=progress)
    return suggestion.summary()


jobs.register(KIND, jobs.JobKind(check=check, run=run))
