"""Proposals: redistricting of a 40-grid village and MCLP camera siting at the issue's sizes.

``python -m bench.analytics.proposals [--database-url URL]``

- Redistricting (needs PostGIS: the bench database, ``gis_bench_<branch>``): the 5 x 8 lattice
  village of the tests with uneven households and 1,500 cases, inside a transaction rolled
  back at the end. Timed: the whole suggestion (blocks, measuring them with the plan's balance
  rule, regions, draft plan with validation, balance and impact) with the default method;
  and, on the same blocks in memory, the regionalisation alone by the default method and by
  spopt's AZP (the baseline) at the same and at a coarser block size.
- MCLP (in memory): ``--demand`` cases and ``--candidates`` sites uniform in a 6 km square,
  range 150 m, k = 10. Timed: coverage + reduction + HiGHS (the service's path) against HiGHS
  on the unreduced problem (the baseline) with the same time limit; gaps printed.

Wall seconds (the solver and spopt are single-threaded), medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _wall(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def redistricting(url: str, repeat: int) -> None:
    """The suggestion for a 40-grid village, and the regionalisation methods side by side."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from gis.db import make_engine
    from gis.layers.plans import PlanScope
    from gis.services import redistricting as r
    from gis.settings import Settings
    from tests.services.analytics_fixtures import VILLAGE
    from tests.services.proposal_fixtures import NOW, uneven_village

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        if session.execute(sa.text("SELECT count(*) FROM categories")).scalar_one() == 0:
            from gis.layers.categories import load_catalog

            load_catalog(session)
        uneven_village(session, 5, 8, cases=1500)
        query = r.RedistrictQuery(PlanScope.VILLAGE, VILLAGE)
        seconds, suggestion = _wall(
            lambda: r.suggest(session, query, actor="bench", settings=settings, now=NOW), repeat
        )
        v = suggestion.villages[0]
        print(
            f"redistricting 40-grid village ({v.blocks} blocks): {seconds:.1f} s wall; "
            f"cv {v.before['cv']} -> {v.after['cv']}, valid {suggestion.valid}"
        )
        scope, villages = r._villages(session, query)
        village = villages[0]
        for cells in (r.CELLS_PER_GRID, 5):
            r_cells, r.CELLS_PER_GRID = r.CELLS_PER_GRID, cells
            blocks = r.building_blocks(village.geom, 40)
            r.CELLS_PER_GRID = r_cells
            values = r._measure(session, scope, VILLAGE, blocks, settings=settings, now=NOW)
            loads = r.workload(values, r.DEFAULT_WEIGHTS)
            for method in (r.Method.BALANCE, r.Method.AZP):
                if method is r.Method.AZP:
                    r.STARTS, starts = 1, r.STARTS
                sec, labels = _wall(
                    lambda m=method, b=blocks, w=loads: r.regionalise(b, w, 40, method=m), 1
                )
                if method is r.Method.AZP:
                    r.STARTS = starts
                sums = np.bincount(labels, weights=loads)
                print(
                    f"  {len(blocks)} blocks, {method.value:8s}: {sec:6.1f} s, "
                    f"cv {r.imbalance(sums)['cv']}"
                )
        transaction.rollback()
    engine.dispose()


def mclp(n_demand: int, n_candidates: int, repeat: int, time_limit_s: float) -> None:
    """The reduced MCLP against the unreduced one, same instance, same limit."""
    from scipy import sparse

    from gis.services import siting

    rng = np.random.default_rng(19)
    # Cases cluster around 40 centres (as cases do), sites anywhere on the square.
    centres = rng.uniform(0, 6000, size=(40, 2))
    demand = centres[rng.integers(0, 40, n_demand)] + rng.normal(0, 250, size=(n_demand, 2))
    sites = rng.uniform(0, 6000, size=(n_candidates, 2))

    def reduced() -> Any:
        matrix = siting.coverage(demand, sites, 150.0)
        problem = siting.reduce_problem(matrix)
        return problem, siting.solve_mclp(problem, 10, time_limit_s=time_limit_s)

    def unreduced() -> Any:
        matrix = siting.coverage(demand, sites, 150.0)
        problem = siting.Reduced(
            np.arange(n_candidates), sparse.csr_matrix(matrix), np.ones(n_demand)
        )
        return siting.solve_mclp(problem, 10, time_limit_s=time_limit_s)

    ours, (problem, solution) = _wall(reduced, repeat)
    base, base_solution = _wall(unreduced, repeat)
    print(
        f"MCLP {n_demand} x {n_candidates}, k 10: reduced to {problem.matrix.shape[0]} x "
        f"{len(problem.kept)}: {ours:.1f} s, {solution.objective:.0f} cases, gap "
        f"{solution.gap:.2%} ({solution.status}); unreduced {base:.1f} s, "
        f"{base_solution.objective:.0f} cases, gap {base_solution.gap:.2%} "
        f"({base_solution.status}); ratio {ours / base:.2f}"
    )


def main() -> None:
    """Run both and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_proposals",
    )
    parser.add_argument("--demand", type=int, default=5_000)
    parser.add_argument("--candidates", type=int, default=1_000)
    parser.add_argument("--time-limit", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-db", action="store_true")
    args = parser.parse_args()
    mclp(args.demand, args.candidates, args.repeat, args.time_limit)
    if not args.skip_db:
        redistricting(args.database_url, args.repeat)


if __name__ == "__main__":
    main()
