"""Hotspots that are statistically real: Getis-Ord Gi* on the grids of a town, with permutation
inference and a false-discovery-rate correction, and emerging hotspots over time slices.

The statistics are PySAL's (``esda.G_Local`` with ``star=True``, queen contiguity from
``libpysal``) and ``pymannkendall``'s; this module only feeds them counts and weights and reads
their answers. docs/analytics.md explains the method and the class rules with examples.

- Counts: valid cases (not cancelled, not marked duplicate) reported in ``[since, until)`` per
  current grid of the town, optionally of one platform or category. A grid without cases counts 0.
- Weights: queen contiguity (grids sharing an edge or a corner), binary, with each grid its own
  neighbour (Gi*, not Gi). A grid with no neighbour is compared with itself only.
- Inference: ``permutations`` conditional random permutations (esda). esda's pseudo p-value is
  one-sided in the direction of the observed value; doubled (capped at 1) it is the two-sided
  p-value that the classes use, as the standard hot-spot tools do.
- Classes: for each confidence (90, 95, 99 %), Benjamini–Hochberg over all grids at
  alpha = 1 - confidence (``esda.fdr``); a grid whose p is within the cutoff is hot (z > 0) or
  cold (z < 0) at that confidence. ``confidence`` is signed like the tools' Gi_Bin: +99 … −99.

esda's permutation kernels are numba functions compiled on their first call in a process
(~30 s of CPU on this machine). They are compiled once per installation, not per process: esda
does not ask numba to cache them, so ``_cache_kernels`` does, and a later process (a worker, a
notebook's kernel, a test run) loads the machine code from numba's cache (``__pycache__`` beside
esda, or ``NUMBA_CACHE_DIR``) — all but the one that takes another kernel as an argument
(``_NOT_CACHEABLE``), which each process compiles: ~5 s in all. ``warm_up`` compiles or loads
them on a tiny lattice; the API runs it in a background thread at startup
(``GIS_ANALYTICS_WARMUP``) so that no request pays for it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import shapely.wkb
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.base import LOCAL_TZ, LOCAL_TZ_SQL
from gis.layers.incidents import valid_case
from gis.layers.regions import RegionLevel, get_region
from gis.maps.data import HotspotCell
from gis.services.mapdata import CaseFilter, Period, resolve_period

if TYPE_CHECKING:
    from libpysal.weights import W

FloatArray = npt.NDArray[np.float64]

DEFAULT_PERMUTATIONS = 999
MAX_PERMUTATIONS = 9999
# Fewer grids than this: each neighbourhood is a large share of the town and Gi* says nothing.
MIN_GRIDS = 5
# Fewer cases than this in the period: counts of 0 and 1 cannot be told from chance.
MIN_CASES = 20
CONFIDENCES = (99, 95, 90)

# Colours of the classes (ColorBrewer RdBu, 7 classes), for maps and legends.
COLOURS: dict[int, str] = {
    99: "#b2182b",
    95: "#ef8a62",
    90: "#fddbc7",
    0: "#f7f7f7",
    -90: "#d1e5f0",
    -95: "#67a9cf",
    -99: "#2166ac",
}


class SpotClass(StrEnum):
    """The class of a grid: hot or cold at a confidence, or not significant."""

    HOT_99 = "hot_99"
    HOT_95 = "hot_95"
    HOT_90 = "hot_90"
    NOT_SIGNIFICANT = "not_significant"
    COLD_90 = "cold_90"
    COLD_95 = "cold_95"
    COLD_99 = "cold_99"


# Colours of the emerging categories: reds for hot, blues for cold, the most urgent darkest.
EMERGING_COLOURS: dict[str, str] = {
    "intensifying_hot": "#67000d",
    "new_hot": "#cb181d",
    "consecutive_hot": "#ef3b2c",
    "persistent_hot": "#a50f15",
    "sporadic_hot": "#fc9272",
    "oscillating_hot": "#fcbba1",
    "diminishing_hot": "#fb6a4a",
    "historical_hot": "#fee0d2",
    "intensifying_cold": "#08306b",
    "new_cold": "#2171b5",
    "consecutive_cold": "#4292c6",
    "persistent_cold": "#08519c",
    "sporadic_cold": "#9ecae1",
    "oscillating_cold": "#c6dbef",
    "diminishing_cold": "#6baed6",
    "historical_cold": "#deebf7",
    "no_pattern": "#f7f7f7",
}

LABELS: dict[int, str] = {
    99: "热点 99% hot spot",
    95: "热点 95% hot spot",
    90: "热点 90% hot spot",
    0: "不显著 not significant",
    -90: "冷点 90% cold spot",
    -95: "冷点 95% cold spot",
    -99: "冷点 99% cold spot",
}


def spot_class(confidence: int) -> SpotClass:
    """The class for a signed confidence (+99 … −99, 0 for not significant)."""
    if confidence == 0:
        return SpotClass.NOT_SIGNIFICANT
    side = "hot" if confidence > 0 else "cold"
    return SpotClass(f"{side}_{abs(confidence)}")


@dataclass(frozen=True)
class HotspotQuery:
    """Which cases to count and how to test them."""

    town_code: str
    since: datetime | None = None
    until: datetime | None = None
    platform: str | None = None
    category: str | None = None
    permutations: int = DEFAULT_PERMUTATIONS
    seed: int | None = None
    # Square cells of this size (metres, the town's UTM zone) instead of the grids.
    cell_m: float | None = None
    # queen (default for grids) or distance (default for cells): a band of ``band_m`` metres
    # between centres (default 1.5 cells: the eight cells around a cell).
    weights: str | None = None
    band_m: float | None = None

    @property
    def cases(self) -> CaseFilter:
        """Its platform and category filter, as the command-room map has it."""
        return CaseFilter(self.platform, self.category)

    @property
    def unit(self) -> str:
        """``grid`` or ``cell``: what the statistics are computed on."""
        return "grid" if self.cell_m is None else "cell"

    @property
    def weighting(self) -> Weighting:
        """The spatial weights asked for (or the unit's default)."""
        if self.weights is None:
            return Weighting.QUEEN if self.cell_m is None else Weighting.DISTANCE
        try:
            return Weighting(self.weights)
        except ValueError:
            raise ValidationError(
                f"unknown weights {self.weights!r}: use queen or distance"
            ) from None


class Weighting(StrEnum):
    """Who is whose neighbour: sharing an edge or a corner, or centres within a band."""

    QUEEN = "queen"
    DISTANCE = "distance"


# Cells: sizes and how many a town may be cut into.
CELL_M = (50.0, 5_000.0)
MAX_CELLS = 50_000
BAND_CELLS = 1.5


@dataclass(frozen=True)
class GridCounts:
    """Current grids of a town with their case counts, in grid-code order."""

    codes: list[str]
    names: list[str]
    geoms: list[BaseGeometry]
    counts: npt.NDArray[np.int64]


@dataclass(frozen=True)
class GiStar:
    """Gi* of every unit: z-score, two-sided permutation p-value and signed confidence."""

    z: FloatArray
    p: FloatArray
    confidence: npt.NDArray[np.int64]
    # The Benjamini–Hochberg p cutoff at each confidence (0 when nothing passes).
    cutoffs: dict[int, float]


@dataclass(frozen=True)
class HotspotGrid(HotspotCell):
    """One grid of the answer: what the command-room map draws, with its confidence class."""

    confidence: int
    spot: SpotClass


@dataclass(frozen=True)
class HotspotResult:
    """Hotspots of a town in a period, with a summary of the classes."""

    town_code: str
    period: Period
    permutations: int
    seed: int | None
    cases: int
    grids: list[HotspotGrid]
    cutoffs: dict[int, float]
    summary: dict[str, int] = field(default_factory=dict)
    unit: str = "grid"
    cell_m: float | None = None
    weights: str = Weighting.QUEEN.value
    band_m: float | None = None


def check_query(session: Session, query: HotspotQuery) -> Period:
    """The period of ``query`` after checking every parameter (4xx errors with the reason)."""
    get_region(session, query.town_code, level=RegionLevel.TOWN)
    query.cases.check(session)
    if not 9 <= query.permutations <= MAX_PERMUTATIONS:
        raise ValidationError(f"permutations must be between 9 and {MAX_PERMUTATIONS}")
    if query.cell_m is not None and not CELL_M[0] <= query.cell_m <= CELL_M[1]:
        raise ValidationError(f"cell_m must be between {CELL_M[0]:g} and {CELL_M[1]:g} metres")
    if query.weighting is Weighting.DISTANCE and query.band_m is not None:
        if not 1 <= query.band_m <= 50_000:
            raise ValidationError("band_m must be between 1 and 50000 metres")
    elif query.band_m is not None:
        raise ValidationError("band_m goes with weights=distance")
    check_years(query.since, query.until)
    return resolve_period(query.since, query.until)


YEARS = (1970, 2100)


def check_years(*moments: datetime | None) -> None:
    """``ValidationError`` for a time outside 1970–2100 (where periods and slices are defined)."""
    for moment in moments:
        if moment is not None and not YEARS[0] <= moment.year < YEARS[1]:
            raise ValidationError(
                f"{moment.isoformat()} is out of range: use a time in {YEARS[0]}–{YEARS[1]}"
            )


_COUNTS_SQL = f"""
SELECT g.code, g.name, ST_AsBinary(g.geom) AS wkb, count(i.id) AS cases
FROM grids AS g
LEFT JOIN incidents AS i
       ON i.grid_code = g.code AND i.town_code = :town
      AND i.reported_at >= :since AND i.reported_at < :until
      AND {valid_case("i")}
      AND {CaseFilter.WHERE}
WHERE g.town_code = :town AND g.valid_to IS NULL
GROUP BY g.id
ORDER BY g.code
"""  # noqa: S608 -- module constants only


def case_filters(query: HotspotQuery, period: Period) -> dict[str, object]:
    """The bound parameters that select the query's cases (town, period, platform, category)."""
    return {
        "town": query.town_code,
        "since": period.since,
        "until": period.until,
        **query.cases.params(),
    }


def grid_counts(session: Session, query: HotspotQuery, period: Period) -> GridCounts:
    """Current grids of the query's town and the valid cases of each in ``period``."""
    rows = session.execute(
        sa.text(_COUNTS_SQL),
        case_filters(query, period),
    ).all()
    return GridCounts(
        codes=[row.code for row in rows],
        names=[row.name for row in rows],
        geoms=[shapely.wkb.loads(bytes(row.wkb)) for row in rows],
        counts=np.array([row.cases for row in rows], dtype=np.int64),
    )


_POINTS_SQL = f"""
SELECT ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
FROM incidents AS i
WHERE i.town_code = :town AND i.reported_at >= :since AND i.reported_at < :until
  AND {valid_case("i")}
  AND {CaseFilter.WHERE}
"""  # noqa: S608 -- module constants only


def cell_counts(session: Session, query: HotspotQuery, period: Period) -> GridCounts:
    """Square cells of ``query.cell_m`` metres (the town's UTM zone) that touch the town, with
    the valid cases of each in ``period``; codes ``C<column>_<row>`` from the south-west."""
    import shapely
    from pyproj import Transformer

    from gis.geo import utm_crs_for

    assert query.cell_m is not None
    size = float(query.cell_m)
    wkb, lon, lat = session.execute(
        sa.text(
            "SELECT ST_AsBinary(geom), ST_X(ST_PointOnSurface(geom)), "
            "ST_Y(ST_PointOnSurface(geom)) FROM regions WHERE code = :town"
        ),
        {"town": query.town_code},
    ).one()
    crs = utm_crs_for(float(lon), float(lat))
    forward = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    back = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def to_utm(xy: FloatArray) -> FloatArray:
        return np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))

    def to_lonlat(xy: FloatArray) -> FloatArray:
        return np.column_stack(back.transform(xy[:, 0], xy[:, 1]))

    town = shapely.transform(shapely.wkb.loads(bytes(wkb)), to_utm)
    minx, miny, maxx, maxy = town.bounds
    x0, y0 = np.floor(minx / size) * size, np.floor(miny / size) * size
    cols = int(np.ceil((maxx - x0) / size))
    rows = int(np.ceil((maxy - y0) / size))
    if cols * rows > MAX_CELLS:
        raise ValidationError(
            f"{cols * rows} cells of {size:g} m over the town: use a larger cell_m "
            f"(at most {MAX_CELLS} cells)"
        )
    grid_col, grid_row = np.meshgrid(np.arange(cols), np.arange(rows))
    col, row = grid_col.ravel(), grid_row.ravel()
    boxes = shapely.box(
        x0 + col * size, y0 + row * size, x0 + (col + 1) * size, y0 + (row + 1) * size
    )
    inside = shapely.intersects(boxes, town) & ~shapely.touches(boxes, town)
    col, row, boxes = col[inside], row[inside], boxes[inside]
    index = {(int(c), int(r)): k for k, (c, r) in enumerate(zip(col, row, strict=True))}
    points = session.execute(
        sa.text(_POINTS_SQL),
        case_filters(query, period),
    ).all()
    counts = np.zeros(len(boxes), dtype=np.int64)
    if points:
        px, py = forward.transform([p.lon for p in points], [p.lat for p in points])
        keys = zip(
            np.floor((np.asarray(px) - x0) / size).astype(int).tolist(),
            np.floor((np.asarray(py) - y0) / size).astype(int).tolist(),
            strict=True,
        )
        for key in keys:
            k = index.get(key)
            if k is not None:
                counts[k] += 1
    # Corners shared by neighbouring cells transform to the same lon/lat: queen contiguity holds.
    geoms: list[BaseGeometry] = [
        shapely.MultiPolygon([b]) for b in shapely.transform(boxes, to_lonlat)
    ]
    return GridCounts(
        codes=[f"C{int(c)}_{int(r)}" for c, r in zip(col, row, strict=True)],
        names=[f"{size:g} m 网格单元 cell" for _ in col],
        geoms=geoms,
        counts=counts,
    )


def distance_weights(geoms: Sequence[BaseGeometry], band_m: float) -> W:
    """Binary distance-band weights between the centres of polygons (metres, their UTM zone)."""
    from libpysal.weights import DistanceBand
    from pyproj import Transformer

    from gis.geo import utm_crs_for

    centres = np.array([(g.centroid.x, g.centroid.y) for g in geoms])
    middle = centres.mean(axis=0)
    forward = Transformer.from_crs(
        "EPSG:4326", utm_crs_for(float(middle[0]), float(middle[1])), always_xy=True
    )
    x, y = forward.transform(centres[:, 0], centres[:, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands are allowed: they are compared with themselves
        return DistanceBand(
            np.column_stack([x, y]), threshold=band_m, binary=True, silence_warnings=True
        )


def weights_for(query: HotspotQuery, geoms: Sequence[BaseGeometry]) -> W:
    """The spatial weights of the query's units: queen, or a distance band (1.5 cells, or the
    grids' median nearest-centre distance × 1.5, unless ``band_m`` says)."""
    if query.weighting is Weighting.QUEEN:
        return queen_weights(geoms)
    band = query.band_m
    if band is None:
        band = BAND_CELLS * (query.cell_m or _typical_spacing_m(geoms))
    return distance_weights(geoms, band)


def _typical_spacing_m(geoms: Sequence[BaseGeometry]) -> float:
    """The median distance from a polygon's centre to the nearest other centre (metres)."""
    from scipy.spatial import cKDTree

    centres = np.array([(g.centroid.x, g.centroid.y) for g in geoms])
    lat = float(np.radians(centres[:, 1].mean()))
    metres = centres * np.array([111_320.0 * np.cos(lat), 110_574.0])
    distances, _ = cKDTree(metres).query(metres, k=2)
    return float(np.median(distances[:, 1]))


def queen_weights(geoms: Sequence[BaseGeometry]) -> W:
    """Queen contiguity (shared edge or corner) between polygons, in their order."""
    import geopandas as gpd
    from libpysal.weights import Queen

    frame = gpd.GeoDataFrame(geometry=list(geoms), crs="EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands are allowed: they are compared with themselves
        return Queen.from_dataframe(frame, use_index=False, silence_warnings=True)


def gi_star(
    values: npt.ArrayLike,
    weights: W,
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int | None = None,
) -> GiStar:
    """Gi* z-scores with permutation p-values and FDR-corrected classes (esda does the maths)."""
    from esda import G_Local

    _cache_kernels()
    y = np.asarray(values, dtype=np.float64)
    if y.size != weights.n:
        raise ValidationError(f"{y.size} values for {weights.n} units")
    if np.all(y == y[0]):
        raise ValidationError("every unit has the same count: there is nothing to compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda warns about islands and the self-weight it adds
        local = G_Local(
            y,
            weights,
            transform="B",
            star=True,
            permutations=permutations,
            keep_simulations=False,
            n_jobs=1,  # processes would fight the request workers for the cores
            seed=seed,
        )
    z = np.asarray(local.Zs, dtype=np.float64)
    p = np.minimum(1.0, 2.0 * np.asarray(local.p_sim, dtype=np.float64))
    return _classify(z, p)


def _classify(z: FloatArray, p: FloatArray) -> GiStar:
    from esda import fdr

    confidence = np.zeros(z.size, dtype=np.int64)
    cutoffs: dict[int, float] = {}
    # From the loosest to the strictest level, so that each grid keeps its strictest class.
    for level in sorted(CONFIDENCES):
        cutoff = float(fdr(p, alpha=1 - level / 100))
        cutoffs[level] = cutoff
        passed = p <= cutoff
        confidence[passed] = level
    confidence = np.where(z < 0, -confidence, confidence)
    return GiStar(z=z, p=p, confidence=confidence, cutoffs=cutoffs)


def find_hotspots(session: Session, query: HotspotQuery) -> HotspotResult:
    """Gi* hot and cold spots among the current grids of a town over a period."""
    period = check_query(session, query)
    counts = unit_counts(session, query, period)
    _check_counts(counts, query.unit)
    result = gi_star(
        counts.counts,
        weights_for(query, counts.geoms),
        permutations=query.permutations,
        seed=query.seed,
    )
    grids = [
        HotspotGrid(
            code=code,
            name=name,
            geom=geom,
            count=int(n),
            z=round(float(z), 4),
            p=round(float(p), 4),
            confidence=int(conf),
            spot=spot_class(int(conf)),
            colour=COLOURS[int(conf)],
            label=LABELS[int(conf)],
        )
        for code, name, geom, n, z, p, conf in zip(
            counts.codes,
            counts.names,
            counts.geoms,
            counts.counts,
            result.z,
            result.p,
            result.confidence,
            strict=True,
        )
    ]
    summary = {spot.value: 0 for spot in SpotClass}
    for grid in grids:
        summary[grid.spot.value] += 1
    return HotspotResult(
        town_code=query.town_code,
        period=period,
        permutations=query.permutations,
        seed=query.seed,
        cases=int(counts.counts.sum()),
        grids=grids,
        cutoffs=result.cutoffs,
        summary=summary,
        unit=query.unit,
        cell_m=query.cell_m,
        weights=query.weighting.value,
        band_m=_band(query, counts.geoms),
    )


def _band(query: HotspotQuery, geoms: Sequence[BaseGeometry]) -> float | None:
    if query.weighting is not Weighting.DISTANCE:
        return None
    if query.band_m is not None:
        return query.band_m
    return round(BAND_CELLS * (query.cell_m or _typical_spacing_m(geoms)), 1)


def unit_counts(session: Session, query: HotspotQuery, period: Period) -> GridCounts:
    """The query's units (current grids, or square cells) with their case counts."""
    if query.cell_m is None:
        return grid_counts(session, query, period)
    return cell_counts(session, query, period)


def _check_counts(counts: GridCounts, unit: str = "grid") -> None:
    if len(counts.codes) < MIN_GRIDS:
        what = "current grid(s)" if unit == "grid" else "cell(s) of that size"
        raise ValidationError(
            f"the town has {len(counts.codes)} {what}; hotspots need at least "
            f"{MIN_GRIDS} to compare neighbourhoods"
        )
    total = int(counts.counts.sum())
    if total < MIN_CASES:
        raise ValidationError(
            f"only {total} case(s) match in the period; hotspots need at least {MIN_CASES} — "
            "widen the period or drop a filter"
        )


# --- Emerging hotspots -------------------------------------------------------------------------


class SliceStep(StrEnum):
    """The length of a time slice."""

    WEEK = "week"
    MONTH = "month"


class Emerging(StrEnum):
    """Categories of the space-time pattern of a location (docs/analytics.md has the rules)."""

    NEW_HOT = "new_hot"
    CONSECUTIVE_HOT = "consecutive_hot"
    INTENSIFYING_HOT = "intensifying_hot"
    PERSISTENT_HOT = "persistent_hot"
    DIMINISHING_HOT = "diminishing_hot"
    SPORADIC_HOT = "sporadic_hot"
    OSCILLATING_HOT = "oscillating_hot"
    HISTORICAL_HOT = "historical_hot"
    NEW_COLD = "new_cold"
    CONSECUTIVE_COLD = "consecutive_cold"
    INTENSIFYING_COLD = "intensifying_cold"
    PERSISTENT_COLD = "persistent_cold"
    DIMINISHING_COLD = "diminishing_cold"
    SPORADIC_COLD = "sporadic_cold"
    OSCILLATING_COLD = "oscillating_cold"
    HISTORICAL_COLD = "historical_cold"
    NO_PATTERN = "no_pattern"


MIN_SLICES = 4
MAX_SLICES = 120
# Share of slices that makes a location persistently (or historically) hot or cold.
MOST = 0.9
TREND_ALPHA = 0.05


@dataclass(frozen=True)
class EmergingGrid:
    """One grid's series and its category."""

    code: str
    name: str
    geom: BaseGeometry
    counts: list[int]
    z: list[float]
    confidence: list[int]
    trend_tau: float | None
    trend_p: float | None
    category: Emerging

    @property
    def colour(self) -> str:
        """The fill colour of the category (``EMERGING_COLOURS``)."""
        return EMERGING_COLOURS[self.category.value]


@dataclass(frozen=True)
class EmergingResult:
    """Emerging hotspots of a town: the slices, every grid's series and category, a summary."""

    town_code: str
    step: SliceStep
    slices: list[datetime]
    level: int
    grids: list[EmergingGrid]
    summary: dict[str, int]


_SLICE_COUNTS_SQL = f"""
SELECT i.grid_code, date_trunc(:step, i.reported_at AT TIME ZONE {LOCAL_TZ_SQL}) AS slice,
       count(*) AS cases
FROM incidents AS i
WHERE i.town_code = :town AND i.reported_at >= :since AND i.reported_at < :until
  AND {valid_case("i")}
  AND {CaseFilter.WHERE}
GROUP BY 1, 2
"""  # noqa: S608 -- a module constant only; values are bound parameters


def slice_starts(period: Period, step: SliceStep) -> list[datetime]:
    """Starts of the whole slices (China time) in ``period``: weeks from Monday, or months."""
    start = period.since.astimezone(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    if step is SliceStep.WEEK:
        start -= timedelta(days=start.weekday())
    else:
        start = start.replace(day=1)
    starts: list[datetime] = []
    while start < period.until and len(starts) <= MAX_SLICES:
        starts.append(start)
        if step is SliceStep.WEEK:
            start += timedelta(days=7)
        else:
            start = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return starts


def find_emerging(
    session: Session,
    query: HotspotQuery,
    *,
    step: SliceStep = SliceStep.WEEK,
    level: int = 90,
) -> EmergingResult:
    """Gi* per time slice and a Mann–Kendall trend per grid → the emerging-hotspot categories."""
    period = check_query(session, query)
    if query.cell_m is not None or query.weighting is not Weighting.QUEEN:
        raise ValidationError("emerging hotspots are computed per grid, with queen weights")
    if level not in CONFIDENCES:
        raise ValidationError(f"level must be one of {', '.join(map(str, CONFIDENCES))}")
    starts = slice_starts(period, step)
    if len(starts) < MIN_SLICES:
        raise ValidationError(
            f"the period holds {len(starts)} {step.value}(s); emerging hotspots need at least "
            f"{MIN_SLICES} slices for a trend"
        )
    if len(starts) > MAX_SLICES:
        raise ValidationError(f"at most {MAX_SLICES} slices; use a longer step or period")
    # Whole slices only: the period is widened to the first slice's start.
    period = Period(starts[0], period.until)
    grids = grid_counts(session, query, period)
    _check_counts(grids)
    index = {code: k for k, code in enumerate(grids.codes)}
    local_starts = [s.replace(tzinfo=None) for s in starts]
    column = {s: k for k, s in enumerate(local_starts)}
    cube = np.zeros((len(grids.codes), len(starts)), dtype=np.float64)
    rows = session.execute(
        sa.text(_SLICE_COUNTS_SQL),
        {"step": step.value, **case_filters(query, period)},
    )
    for code, start, cases in rows:
        if code in index and start in column:
            cube[index[code], column[start]] = cases
    weights = queen_weights(grids.geoms)
    z = np.zeros_like(cube)
    conf = np.zeros(cube.shape, dtype=np.int64)
    for t in range(len(starts)):
        if np.all(cube[:, t] == cube[0, t]):
            continue  # an empty (or uniform) slice: nothing is significant in it
        slice_result = gi_star(
            cube[:, t], weights, permutations=query.permutations, seed=query.seed
        )
        z[:, t] = np.nan_to_num(slice_result.z)
        conf[:, t] = slice_result.confidence
    out: list[EmergingGrid] = []
    for k, code in enumerate(grids.codes):
        hot = conf[k] >= level
        cold = conf[k] <= -level
        tau, trend_p = _trend(z[k])
        out.append(
            EmergingGrid(
                code=code,
                name=grids.names[k],
                geom=grids.geoms[k],
                counts=[int(v) for v in cube[k]],
                z=[round(float(v), 4) for v in z[k]],
                confidence=[int(v) for v in conf[k]],
                trend_tau=tau,
                trend_p=trend_p,
                category=classify_series(hot, cold, tau, trend_p),
            )
        )
    summary = {category.value: 0 for category in Emerging}
    for grid in out:
        summary[grid.category.value] += 1
    return EmergingResult(query.town_code, step, starts, level, out, summary)


def _trend(series: FloatArray) -> tuple[float | None, float | None]:
    """Mann–Kendall tau and p of a series (None when it is constant)."""
    import pymannkendall

    if np.all(series == series[0]):
        return None, None
    result = pymannkendall.original_test(series)
    return round(float(result.Tau), 4), round(float(result.p), 4)


def classify_series(
    hot: npt.NDArray[np.bool_],
    cold: npt.NDArray[np.bool_],
    tau: float | None,
    trend_p: float | None,
) -> Emerging:
    """The category of one location from its significant-hot/cold flags per slice (oldest
    first) and the Mann–Kendall trend of its Gi* z-scores; docs/analytics.md states the rules."""
    if hot[-1] or (not cold[-1] and hot.mean() >= MOST):
        return _side("hot", hot, cold, tau, trend_p)
    if cold[-1] or (not hot[-1] and cold.mean() >= MOST):
        # A cold spot's intensity grows as its z falls: the trend is read the other way round.
        flipped = None if tau is None else -tau
        return _side("cold", cold, hot, flipped, trend_p)
    return Emerging.NO_PATTERN


def _side(
    side: str,
    mine: npt.NDArray[np.bool_],
    other: npt.NDArray[np.bool_],
    tau: float | None,
    trend_p: float | None,
) -> Emerging:
    share = float(mine.mean())
    significant_trend = tau is not None and trend_p is not None and trend_p < TREND_ALPHA
    if not mine[-1]:
        return Emerging(f"historical_{side}")  # ≥ 90 % of the slices, but not the last
    if share >= MOST:
        if significant_trend and tau is not None and tau > 0:
            return Emerging(f"intensifying_{side}")
        if significant_trend and tau is not None and tau < 0:
            return Emerging(f"diminishing_{side}")
        return Emerging(f"persistent_{side}")
    before = mine[:-1]
    if not before.any():
        return Emerging(f"new_{side}")
    # The length of the run of significant slices that ends with the last one.
    run = len(mine) - int(np.flatnonzero(~mine)[-1]) - 1
    if run >= 2 and not mine[: len(mine) - run].any():
        return Emerging(f"consecutive_{side}")
    if other.any():
        return Emerging(f"oscillating_{side}")
    return Emerging(f"sporadic_{side}")


# --- Warm-up -------------------------------------------------------------------------------------

_cached = threading.Event()
# Kernels that take another kernel as an argument (``stat_func``): numba keys their cache by that
# kernel's type, which names the function object of one process, so every process added an
# entry to the index and, once it held one of a process gone, saving it failed ("underlying
# object has vanished") and took the Gi* computation down with it. They compile per process.
_NOT_CACHEABLE = frozenset({"compute_chunk"})
_cache_lock = threading.Lock()
_warm = threading.Event()
_warm_lock = threading.Lock()
_warm_thread: list[threading.Thread] = []


def _cache_kernels() -> None:
    """Have numba cache esda's Gi* permutation kernels on disk (once per process, before use).

    ``Dispatcher.enable_caching`` is what ``@njit(cache=True)`` does at decoration; it must run
    before a kernel's first compilation in the process. The cache is keyed by the kernel's source
    file and numba's version, so an upgrade of either compiles afresh.
    """
    if _cached.is_set():
        return
    # One thread at a time (the warm-up thread and a page build can both get here), and over a
    # copy of each module's names: importing esda's kernels adds names as it goes.
    with _cache_lock:
        if _cached.is_set():
            return
        import esda.crand
        import esda.getisord
        from numba.core.registry import CPUDispatcher

        for module in (esda.crand, esda.getisord):
            for name, kernel in list(vars(module).items()):
                if name in _NOT_CACHEABLE or not isinstance(kernel, CPUDispatcher):
                    continue
                if not kernel.overloads:
                    kernel.enable_caching()
        _cached.set()


def warm_up() -> None:
    """Compile esda's numba kernels once in this process (a 3 x 3 lattice, 9 permutations)."""
    with _warm_lock:
        if _warm.is_set():
            return
        from libpysal.weights import lat2W

        gi_star(np.arange(9, dtype=np.float64), lat2W(3, 3, rook=False), permutations=9, seed=0)
        _warm.set()


def is_warm() -> bool:
    """Whether esda's kernels are compiled in this process."""
    return _warm.is_set()


def warm_up_in_background() -> threading.Thread | None:
    """Start ``warm_up`` in a daemon thread, unless it has run in this process already."""
    with _warm_lock:
        if _warm.is_set() or _warm_thread:
            return None
        thread = threading.Thread(target=warm_up, name="gis-analytics-warm-up", daemon=True)
        _warm_thread.append(thread)
    thread.start()
    return thread
