"""Gi* with permutations over many grids: the service's path against esda alone, same run.

The grids are a synthetic square lattice built in memory (``--grids`` rounded to a square), so
no database is needed: the ×100 county's 95,907 grids are a lattice of the same size. Timed:

- esda alone: ``esda.G_Local(y, w, transform="B", star=True, permutations=999, n_jobs=1)`` on
  libpysal's lattice weights (the baseline);
- the service's statistics: ``gis.services.hotspots.gi_star`` on the same weights (esda plus
  the two-sided p and the FDR classes);
- the service's weights: ``queen_weights`` from the lattice's polygons (a request builds them
  from the grids' geometries);
- emerging hotspots for one town: ``gi_star`` on each of ``--slices`` weekly slices of a
  ``--town-grids`` lattice, and the Mann–Kendall category of every grid.

Times are CPU seconds of the process (medians of ``--repeat``). numba compiles esda's
kernels on the first call; that is timed apart ("compile") and excluded,
as the service does it at startup (GIS_ANALYTICS_WARMUP).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np


def _median_time(work: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of this process: on a shared, loaded machine wall time measures the
    neighbours (the work is single-threaded: n_jobs=1, numba without parallel)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[10_000, 95_907])
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--town-grids", type=int, default=225)
    parser.add_argument("--slices", type=int, default=52)
    args = parser.parse_args()

    from esda import G_Local
    from libpysal.weights import lat2W
    from shapely.geometry import box

    from gis.services import hotspots

    start, wall = time.process_time(), time.perf_counter()
    hotspots.warm_up()
    print(
        f"compile (numba, once per process): {time.process_time() - start:.1f} s CPU, "
        f"{time.perf_counter() - wall:.1f} s wall"
    )

    rng = np.random.default_rng(20261206)
    for n in args.grids:
        side = round(n**0.5)
        size = side * side
        y = rng.poisson(2.0, size).astype(float)
        w = lat2W(side, side, rook=False)

        def esda_alone(y: np.ndarray = y, w: object = w) -> object:
            return G_Local(
                y, w, transform="B", star=True, permutations=args.permutations,
                keep_simulations=False, n_jobs=1, seed=1,
            )  # fmt: skip

        def service(y: np.ndarray = y, w: object = w) -> object:
            return hotspots.gi_star(y, w, permutations=args.permutations, seed=1)  # type: ignore[arg-type]

        # One untimed call each first: the weights cache their sparse matrix on first use.
        esda_alone()
        service()
        base = _median_time(esda_alone, args.repeat)
        ours = _median_time(service, args.repeat)
        cells = [box(c, r, c + 1, r + 1) for r in range(side) for c in range(side)]
        start = time.process_time()
        hotspots.queen_weights(cells)
        weights_s = time.process_time() - start
        print(
            f"{size:,} grids, {args.permutations} permutations: esda alone {base:.2f} s, "
            f"service gi_star {ours:.2f} s (ratio {ours / base:.2f}); "
            f"queen weights from polygons {weights_s:.2f} s; "
            f"service total {ours + weights_s:.2f} s"
        )

    side = round(args.town_grids**0.5)
    w = lat2W(side, side, rook=False)
    cube = rng.poisson(1.5, (side * side, args.slices)).astype(float)

    def emerging() -> None:
        z = np.zeros_like(cube)
        conf = np.zeros(cube.shape, dtype=np.int64)
        for t in range(args.slices):
            result = hotspots.gi_star(cube[:, t], w, permutations=args.permutations, seed=t)
            z[:, t], conf[:, t] = result.z, result.confidence
        import pymannkendall

        for k in range(cube.shape[0]):
            trend = pymannkendall.original_test(z[k])
            hotspots.classify_series(conf[k] >= 90, conf[k] <= -90, trend.Tau, trend.p)

    def esda_slices() -> None:
        for t in range(args.slices):
            G_Local(cube[:, t], w, transform="B", star=True, permutations=args.permutations,
                    keep_simulations=False, n_jobs=1, seed=t)  # fmt: skip

    esda_slices()
    base = _median_time(esda_slices, args.repeat)
    ours = _median_time(emerging, args.repeat)
    print(
        f"emerging, {side * side} grids x {args.slices} weekly slices: {ours:.2f} s "
        f"(esda alone on the slices {base:.2f} s, ratio {ours / base:.2f})"
    )
