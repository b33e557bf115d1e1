"""Station siting (p-median by drive time) on a loaded county, against the exact MILP.

``python -m bench.analytics.stations --database-url URL [--town CODE …] [--platform P …] [--k K]``

For each town (default: every town with cases) and platform: the whole service
(``stations.site_stations``: cases, candidate nodes, the pgRouting matrix, aggregation, HiGHS,
before/after) timed in parts, read-only (nothing is written). Baseline in the same run, on the
same matrix: the textbook p-median MILP with HiGHS — one demand point per case, every case
allowed every candidate — with the same time limit (``--baseline-limit``); its objective and gap
against the service's. Wall seconds (pgRouting and HiGHS are single-threaded), medians of
``--repeat``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np


def main() -> None:
    """Run and print one line per town and platform."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_siting",
    )
    parser.add_argument("--town", action="append", default=[])
    parser.add_argument("--platform", action="append", default=[])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--until", default="2026-11-01T00:00:00+00:00")
    parser.add_argument("--time-limit", type=float, default=50.0)
    parser.add_argument("--baseline-limit", type=float, default=120.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from datetime import datetime

    from sqlalchemy.orm import Session

    from gis.db import make_engine
    from gis.services import routing, stations
    from gis.services.dispatch import town_jurisdiction
    from gis.services.mapdata import towns_with_cases
    from gis.settings import Settings

    settings = Settings(database_url=args.database_url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    until = datetime.fromisoformat(args.until)
    options = routing.RouteOptions.from_settings(settings)
    with Session(engine) as session:
        towns = args.town or towns_with_cases(session)
        for town in towns:
            for platform in args.platform or ["market", "governance"]:
                query = stations.StationSitingQuery(
                    town, platform, args.k, until=until, time_limit_s=args.time_limit
                )
                walls: list[float] = []
                parts: dict[str, list[float]] = {"inputs": [], "matrix": [], "solve": []}
                result: Any = None
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    result = stations.site_stations(session, query, settings=settings)
                    walls.append(time.perf_counter() - start)
                    # The parts, timed again one by one.
                    t0 = time.perf_counter()
                    plat, cases, _, nodes = stations._inputs(session, query)
                    units = session.execute(
                        stations._UNITS_SQL,
                        {"platform": plat.value, "jurisdiction": town_jurisdiction(session, town)},
                    ).all()
                    t1 = time.perf_counter()
                    matrix = stations.drive_matrix(session, cases, nodes, units, options)
                    t2 = time.perf_counter()
                    reduced = stations.reduce_problem(matrix.snaps, matrix.times)
                    solution = stations.solve_pmedian(reduced, args.k, time_limit_s=args.time_limit)
                    t3 = time.perf_counter()
                    parts["inputs"].append(t1 - t0)
                    parts["matrix"].append(t2 - t1)
                    parts["solve"].append(t3 - t2)
                s = result.result()["summary"]
                line = (
                    f"{town} {platform:10s} k={args.k}: {statistics.median(walls):5.1f} s "
                    f"(inputs {statistics.median(parts['inputs']):.1f}, pgRouting matrix "
                    f"{statistics.median(parts['matrix']):.1f}, aggregation + HiGHS "
                    f"{statistics.median(parts['solve']):.1f}); {s['cases']} cases -> "
                    f"{s['demand_points_after_aggregation']} points x "
                    f"{s['candidates_after_pruning']} nodes; mean {s['before']['mean_s']} -> "
                    f"{s['after']['mean_s']} s, p90 {s['before']['p90_s']} -> "
                    f"{s['after']['p90_s']} s; gap {s['optimality_gap']:.2%} "
                    f"({s['solver_status']})"
                )
                if not args.skip_baseline:
                    line += "; " + _baseline(matrix, solution, reduced, args)
                print(line, flush=True)
    engine.dispose()


def _baseline(matrix: Any, solution: Any, reduced: Any, args: Any) -> str:
    """The textbook MILP: one demand point per case, every candidate allowed (same limit)."""
    from gis.services import stations

    finite = matrix.times[np.isfinite(matrix.times)]
    priced = np.where(np.isfinite(matrix.times), matrix.times, 2.0 * finite.max())
    per_case = stations.Reduced(np.arange(len(priced)), priced, np.ones(len(priced)))
    start = time.perf_counter()
    base = stations.solve_pmedian(
        per_case, args.k, time_limit_s=args.baseline_limit, nearest=priced.shape[1]
    )
    seconds = time.perf_counter() - start
    ours = stations.assigned_cost(per_case, solution.chosen)
    return (
        f"baseline exact MILP {priced.shape[0]} x {priced.shape[1]}: {seconds:.1f} s, "
        f"{base.status}, gap {base.gap:.2%}, objective ours/baseline "
        f"{ours / base.objective:.4f}"
    )


if __name__ == "__main__":
    main()
