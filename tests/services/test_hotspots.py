"""Gi* hotspots on a lattice town: a planted cluster is found, noise stays within the FDR level,
the z-scores are esda's and the textbook formula's, and bad input is refused with the reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest
from shapely.geometry import Point
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, UnknownCodeError, ValidationError
from gis.services import hotspots
from gis.services.hotspots import Emerging, HotspotQuery, SliceStep
from tests.services.analytics_fixtures import (
    CELL,
    ONE_GRID_TOWN,
    ORIGIN,
    TOWN,
    WEEK_0,
    add_case_points,
    add_cases,
    build_lattice,
    grid_code,
)

ROWS = COLS = 12
PERIOD = {"since": WEEK_0, "until": WEEK_0 + timedelta(weeks=1)}


@pytest.fixture
def lattice(session: Session, catalog: int) -> None:
    build_lattice(session, ROWS, COLS)


def _noise(seed: int, mean: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean, size=(ROWS, COLS))


def test_planted_cluster_is_hot_and_nothing_far_from_it_is(session: Session, lattice: None) -> None:
    counts = _noise(1)
    counts[4:7, 4:7] += 12  # a 3 x 3 block of grids with many more cases
    add_cases(session, counts)
    result = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=7))
    by_code = {grid.code: grid for grid in result.grids}
    # The block's centre and the middles of its sides: most of their neighbourhood is in it.
    plus = [by_code[grid_code(r, c)] for r, c in ((5, 5), (4, 5), (6, 5), (5, 4), (5, 6))]
    assert all(grid.confidence >= 95 for grid in plus)
    # 999 permutations cannot reach 99 % after FDR over 144 grids (the smallest two-sided p is
    # 0.002 > 9/144 x 0.01); 9,999 can.
    assert max(grid.confidence for grid in result.grids) == 95
    finer = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=7, permutations=9999))
    centre = next(grid for grid in finer.grids if grid.code == grid_code(5, 5))
    assert centre.spot is hotspots.SpotClass.HOT_99 and centre.confidence == 99
    assert centre.colour == hotspots.COLOURS[99]
    # Hot grids are in or touching the block; none far away.
    for grid in result.grids:
        r, c = int(grid.code[2:4]), int(grid.code[5:7])
        if grid.confidence > 0:
            assert 3 <= r <= 7 and 3 <= c <= 7, grid.code
    assert result.cases == int(counts.sum())
    assert sum(result.summary.values()) == ROWS * COLS
    assert result.summary["hot_95"] >= 5 and finer.summary["hot_99"] >= 1


def test_pure_noise_gives_no_more_false_hotspots_than_the_fdr_allows(
    session: Session, lattice: None
) -> None:
    add_cases(session, _noise(20261206))
    result = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=11))
    significant = [grid for grid in result.grids if grid.confidence != 0]
    # Benjamini–Hochberg at 10 %: among the grids called significant, at most 10 % false in
    # expectation; on noise every call is false, so with this seed there are none at all.
    assert len(significant) <= 0.10 * len(result.grids)
    assert significant == []


def test_gi_star_equals_esda_and_the_textbook_formula_on_the_same_weights(
    session: Session, lattice: None
) -> None:
    from esda import G_Local

    counts = _noise(3)
    counts[0:3, 9:12] += 6
    add_cases(session, counts)
    result = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=5))
    ours = np.array([grid.z for grid in result.grids])
    # The lattice's own queen weights in the service's order (grid codes sort row by row).
    from libpysal.weights import lat2W

    y = counts.astype(float).ravel()
    reference = G_Local(
        y, lat2W(ROWS, COLS, rook=False), transform="B", star=True, permutations=0
    ).Zs
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    # Ord & Getis (1995) Gi*: (Σ w x − x̄ Σ w) / (S √((n Σ w² − (Σ w)²) / (n − 1))), binary w with
    # the grid itself included.
    n = y.size
    w = lat2W(ROWS, COLS, rook=False).full()[0] + np.eye(n)
    mean, s = y.mean(), np.sqrt((y**2).mean() - y.mean() ** 2)
    sw = w.sum(axis=1)
    textbook = (w @ y - mean * sw) / (s * np.sqrt((n * sw - sw**2) / (n - 1)))
    np.testing.assert_allclose(ours, textbook, atol=1e-4)


def test_a_fixed_seed_gives_the_same_p_values(session: Session, lattice: None) -> None:
    add_cases(session, _noise(4))
    query = HotspotQuery(TOWN, **PERIOD, seed=42, permutations=199)
    first = [grid.p for grid in hotspots.find_hotspots(session, query).grids]
    again = [grid.p for grid in hotspots.find_hotspots(session, query).grids]
    assert first == again


def test_filters_count_only_their_cases(session: Session, lattice: None) -> None:
    add_cases(session, _noise(5))
    add_cases(session, _noise(8), category="food_safety", platform="market")
    everything = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=1))
    market = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, platform="market"))
    assert everything.cases == int(_noise(5).sum() + _noise(8).sum())
    assert market.cases == int(_noise(8).sum())


@pytest.mark.parametrize(
    ("query", "error", "reason"),
    [
        (HotspotQuery(TOWN, **PERIOD, platform="police"), UnknownCodeError, "unknown platform"),
        (HotspotQuery(TOWN, **PERIOD, category="nope"), UnknownCodeError, "unknown category"),
        (HotspotQuery("970100009000", **PERIOD), NotFoundError, "no town"),
        (HotspotQuery(ONE_GRID_TOWN, **PERIOD), ValidationError, "1 current grid"),
        (HotspotQuery(TOWN, since=WEEK_0, until=WEEK_0), ValidationError, "must be after"),
        (HotspotQuery(TOWN, **PERIOD, permutations=5), ValidationError, "permutations"),
        (
            HotspotQuery(TOWN, since=WEEK_0, until=WEEK_0.replace(year=9999)),
            ValidationError,
            "out of range",
        ),
        (
            HotspotQuery(TOWN, since=WEEK_0 - timedelta(weeks=3), until=WEEK_0),
            ValidationError,
            "only 0 case(s)",
        ),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    session: Session, lattice: None, query: HotspotQuery, error: type, reason: str
) -> None:
    add_cases(session, _noise(6))
    with pytest.raises(error, match=reason.replace("(", r"\(").replace(")", r"\)")):
        hotspots.find_hotspots(session, query)


def test_uniform_counts_are_refused(session: Session, lattice: None) -> None:
    add_cases(session, np.full((ROWS, COLS), 2))
    with pytest.raises(ValidationError, match="same count"):
        hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD))


# --- Emerging hotspots --------------------------------------------------------------------------


def test_emerging_hotspots_find_a_new_and_a_persistent_cluster(
    session: Session, lattice: None
) -> None:
    weeks = 8
    for week in range(weeks):
        counts = _noise(100 + week, mean=1.0)
        counts[1:4, 1:4] += 8  # hot every week: persistent (or intensifying/diminishing)
        if week == weeks - 1:
            counts[8:11, 8:11] += 10  # hot only in the last week: new
        add_cases(session, counts, week=week)
    query = HotspotQuery(
        TOWN, since=WEEK_0, until=WEEK_0 + timedelta(weeks=weeks), seed=3, permutations=999
    )
    result = hotspots.find_emerging(session, query, step=SliceStep.WEEK)
    assert len(result.slices) == weeks
    by_code = {grid.code: grid for grid in result.grids}
    assert by_code[grid_code(9, 9)].category is Emerging.NEW_HOT
    assert by_code[grid_code(2, 2)].category in {
        Emerging.PERSISTENT_HOT,
        Emerging.INTENSIFYING_HOT,
        Emerging.DIMINISHING_HOT,
    }
    assert by_code[grid_code(2, 2)].counts[0] >= 8
    assert sum(result.summary.values()) == ROWS * COLS


def test_emerging_needs_enough_slices(session: Session, lattice: None) -> None:
    add_cases(session, _noise(7))
    query = HotspotQuery(TOWN, since=WEEK_0, until=WEEK_0 + timedelta(weeks=2))
    with pytest.raises(ValidationError, match="at least 4 slices"):
        hotspots.find_emerging(session, query)


T, F = True, False


@pytest.mark.parametrize(
    ("hot", "cold", "tau", "p", "expected"),
    [
        ([F, F, F, F, F], [F, F, F, F, F], None, None, Emerging.NO_PATTERN),
        ([F, F, F, F, T], [F, F, F, F, F], 0.6, 0.2, Emerging.NEW_HOT),
        ([F, F, F, T, T], [F, F, F, F, F], 0.6, 0.2, Emerging.CONSECUTIVE_HOT),
        ([T] * 10, [F] * 10, 0.8, 0.001, Emerging.INTENSIFYING_HOT),
        ([T] * 10, [F] * 10, 0.1, 0.6, Emerging.PERSISTENT_HOT),
        ([T] * 10, [F] * 10, -0.8, 0.001, Emerging.DIMINISHING_HOT),
        ([T, F, T, F, T], [F, F, F, F, F], 0.0, 1.0, Emerging.SPORADIC_HOT),
        ([F, F, T, F, T], [T, F, F, F, F], 0.3, 0.3, Emerging.OSCILLATING_HOT),
        ([T] * 9 + [F], [F] * 10, -0.2, 0.4, Emerging.HISTORICAL_HOT),
        ([F, F, T, F, F], [F, F, F, F, F], 0.0, 1.0, Emerging.NO_PATTERN),
        ([F, F, F, F, F], [F, F, F, F, T], -0.6, 0.2, Emerging.NEW_COLD),
        ([F] * 10, [T] * 10, -0.8, 0.001, Emerging.INTENSIFYING_COLD),
        ([T, F, F, F, F], [F, F, T, F, T], 0.0, 1.0, Emerging.OSCILLATING_COLD),
    ],
)
def test_space_time_categories(
    hot: list[bool], cold: list[bool], tau: float | None, p: float | None, expected: Emerging
) -> None:
    assert hotspots.classify_series(np.array(hot), np.array(cold), tau, p) is expected


def test_the_warm_up_compiles_once_per_process() -> None:
    thread = hotspots.warm_up_in_background()
    if thread is not None:
        thread.join(timeout=600)
    assert hotspots.is_warm()
    assert hotspots.warm_up_in_background() is None


def test_the_gi_star_kernels_are_cached_on_disk_once_compiled() -> None:
    """esda's permutation kernels are compiled with numba's disk cache on, so a worker or a
    notebook's kernel loads them instead of compiling (a fresh process, as a worker starts)."""
    script = (
        "import esda.crand, esda.getisord\n"
        "from gis.services.hotspots import warm_up\n"
        "warm_up()\n"
        "kernel = esda.getisord._g_local_star_crand\n"
        "chunk = esda.crand.compute_chunk\n"
        "print(type(kernel._cache).__name__, len(kernel.overloads), type(chunk._cache).__name__)\n"
    )
    # Process after process, as workers and notebook kernels start: none may trip over what
    # the ones before left in the cache (a kernel keyed by another process's function did).
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        kind, compiled, chunk_kind = run.stdout.split()
        assert kind != "NullCache" and int(compiled) == 1
        assert chunk_kind == "NullCache"  # takes a kernel as argument: compiled per process


# --- Square cells -------------------------------------------------------------------------------


def _scatter(seed: int, noise: int, cluster: int = 0) -> list[tuple[float, float]]:
    """``noise`` cases uniform over the lattice town, ``cluster`` more around CLUSTER."""
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    points = [
        (x0 + x * COLS * CELL, y0 + y * ROWS * CELL)
        for x, y in rng.uniform(0.005, 0.995, size=(noise, 2)).tolist()
    ]
    # ~200 m (0.002°) around the centre.
    points += [
        (CLUSTER[0] + dx, CLUSTER[1] + dy)
        for dx, dy in rng.normal(0, 0.002, size=(cluster, 2)).tolist()
    ]
    return points


CLUSTER = (ORIGIN[0] + 0.3 * COLS * CELL, ORIGIN[1] + 0.3 * ROWS * CELL)
CELLS = {"cell_m": 400.0}


def _add_points(session: Session, points: list[tuple[float, float]]) -> None:
    add_case_points(session, points, reported=[WEEK_0 + timedelta(days=1)] * len(points))


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot((a[0] - b[0]) * 98_300, (a[1] - b[1]) * 110_850))


def test_planted_cluster_is_hot_in_square_cells(session: Session, lattice: None) -> None:
    _add_points(session, _scatter(3, noise=600, cluster=120))
    result = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=2, **CELLS))
    assert result.unit == "cell" and result.weights == "distance" and result.band_m == 600
    assert result.cases == 720 and 200 <= len(result.grids) <= 300
    centre = next(g for g in result.grids if g.geom.covers(Point(*CLUSTER)))
    assert centre.confidence >= 90 and centre.count >= 20
    hot = [g for g in result.grids if g.confidence > 0]
    assert len(hot) >= 3
    for cell in hot:  # every hot cell is at the cluster, none elsewhere
        c = cell.geom.centroid
        assert _metres((c.x, c.y), CLUSTER) < 1_200, cell.code


def test_noise_in_cells_gives_no_more_false_hotspots_than_the_fdr_allows(
    session: Session, lattice: None
) -> None:
    _add_points(session, _scatter(20261207, noise=700))
    result = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=11, **CELLS))
    significant = [cell for cell in result.grids if cell.confidence != 0]
    assert len(significant) <= 0.10 * len(result.grids)
    assert significant == []


def test_a_band_of_one_and_a_half_cells_is_queen_contiguity(
    session: Session, lattice: None
) -> None:
    _add_points(session, _scatter(5, noise=500, cluster=60))
    band = hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, seed=1, **CELLS))
    queen = hotspots.find_hotspots(
        session, HotspotQuery(TOWN, **PERIOD, seed=1, weights="queen", **CELLS)
    )
    assert [c.code for c in band.grids] == [c.code for c in queen.grids]
    np.testing.assert_allclose([c.z for c in band.grids], [c.z for c in queen.grids], atol=1e-4)
    assert queen.weights == "queen" and queen.band_m is None


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (HotspotQuery(TOWN, **PERIOD, cell_m=10), "cell_m must be between"),
        (HotspotQuery(TOWN, **PERIOD, cell_m=5000), "cell(s) of that size"),
        (HotspotQuery(TOWN, **PERIOD, cell_m=400, weights="rook"), "unknown weights"),
        (HotspotQuery(TOWN, **PERIOD, band_m=500), "band_m goes with weights=distance"),
    ],
)
def test_bad_cell_input_is_refused_with_the_reason(
    session: Session, lattice: None, query: HotspotQuery, reason: str
) -> None:
    _add_points(session, _scatter(6, noise=100))
    with pytest.raises(ValidationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        hotspots.find_hotspots(session, query)


def test_grids_take_a_distance_band_too(session: Session, lattice: None) -> None:
    counts = _noise(1)
    counts[4:7, 4:7] += 12
    add_cases(session, counts)
    result = hotspots.find_hotspots(
        session, HotspotQuery(TOWN, **PERIOD, seed=7, weights="distance")
    )
    # 1.5 x the median distance between neighbouring grid centres (~490 m east-west).
    assert result.unit == "grid" and result.weights == "distance" and 700 < result.band_m < 760
    centre = next(g for g in result.grids if g.code == grid_code(5, 5))
    assert centre.confidence >= 90


def test_too_many_cells_are_refused(
    session: Session, lattice: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hotspots, "MAX_CELLS", 1_000)
    _add_points(session, _scatter(6, noise=100))
    with pytest.raises(ValidationError, match="cells of 100 m over the town: use a larger"):
        hotspots.find_hotspots(session, HotspotQuery(TOWN, **PERIOD, cell_m=100))


def test_emerging_refuses_cells(session: Session, lattice: None) -> None:
    with pytest.raises(ValidationError, match="per grid"):
        hotspots.find_emerging(session, HotspotQuery(TOWN, **PERIOD, cell_m=400))
