"""Bulk re-assignment, end to end (join + write-back), four ways on the same data, same run.

    python -m bench.plans.bulk --database-url …/gis_bench_bulk

- ``main``: the version before issue #20's write-back (``--baseline-ref``, default ``PRE_20``:
  commit 3ca47ff, the parent of the staged write-back 66ab779; ``main`` itself now holds this
  work), checked out into a temporary worktree and run in a subprocess: its
  ``compute_assignments`` + ``write_back`` (every open case's row rewritten, one live feed row
  per moved case).
- ``update_from``: a hand-written PostGIS ``UPDATE incidents … FROM grids`` join that gives
  the open cases whose grid code changes their new grid (no events, no snapping, no tie rule:
  the least any re-assignment must do).
- ``service``: this checkout, join in PostGIS, write-back through the staging table.
- ``dask``: this checkout, join on a Dask LocalCluster (2 workers), same write-back.

Each run is rolled back and followed by VACUUM, so every method starts from the same table.
While ``service`` writes back, a second connection inserts a case every 20 ms (rolled back),
and the longest insert is reported: what intake waits for during the write-back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.plans.run import DEFAULT_URL, SNAP_M, counts, vacuum
from bench.server import baseline_checkout
from gis.db import make_engine
from gis.migrations.api import upgrade
from gis.settings import Settings

_FINAL = "('closed', 'cancelled', 'duplicate')"
# The version before issue #20's write-back: the parent of 66ab779 (staged write-back).
PRE_20 = "3ca47ff01cace4d9b696545abb92fe75ffb11d3f"

# Run inside the baseline worktree: its own reassign service, timed, rolled back.
_BASELINE = """
import json, sys, time
from sqlalchemy.orm import Session
from gis.db import make_engine
from gis.migrations.api import upgrade
from gis.settings import Settings
from gis.services import reassign
engine = make_engine(Settings(database_url=sys.argv[1], db_statement_timeout_ms=7_200_000,
                              _env_file=None))
with Session(engine) as session:
    t0 = time.perf_counter()
    reassign.compute_assignments(session, snap_m=float(sys.argv[2]))
    t1 = time.perf_counter()
    result = reassign.write_back(session, actor="bench", reason="bench")
    t2 = time.perf_counter()
    session.rollback()
print(json.dumps({"join_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0,
                  "moved": result.moved}))
"""

UPDATE_FROM = f"""
UPDATE incidents AS i
   SET grid_id = g.id, grid_code = g.code, village_code = g.village_code,
       town_code = g.town_code, updated_at = now()
  FROM grids AS g
 WHERE g.valid_to IS NULL AND ST_Covers(g.geom, i.geom)
   AND i.status NOT IN {_FINAL} AND i.grid_code IS DISTINCT FROM g.code
"""


_LAST_LIVE = "SELECT coalesce(max(id), 0) FROM live_events"
_EVENTS = "SELECT count(*) FROM incident_events WHERE action = 'reassign_grid' AND actor = 'bench'"
_LIVE_AFTER = "SELECT type, count(*) FROM live_events WHERE id > :after GROUP BY type ORDER BY type"


# What the intake thread inserts (rolled back) while the write-back runs.
INTAKE = """
INSERT INTO incidents (category_code, platform, status, description, reporter_kind, photos,
       geom, source_crs, source_lon, source_lat, location_quality, reported_at, updated_at)
VALUES ('public_security_hazard', 'governance', 'reported', '', 'citizen', '[]',
        ST_SetSRID(ST_MakePoint(118.4, 28.7), 4326), 'EPSG:4326', 118.4, 28.7, 'inside',
        now(), now())
"""


def _log(message: str) -> None:
    print(message, flush=True)


def run_main(url: str, ref: str) -> dict[str, Any]:
    """The current version's re-assignment, from a temporary worktree of ``ref``."""
    with baseline_checkout(ref) as root:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", _BASELINE, url, str(SNAP_M)],
            cwd=root, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_update_from(engine: sa.Engine) -> dict[str, Any]:
    """The hand-written ``UPDATE … FROM`` join; rolled back."""
    with Session(engine) as session:
        session.execute(sa.text("SET LOCAL jit = off"))
        started = time.perf_counter()
        moved = session.execute(sa.text(UPDATE_FROM)).rowcount
        total = time.perf_counter() - started
        session.rollback()
    return {"total_s": total, "moved": moved}


class _Intake(threading.Thread):
    """Inserts a case every 20 ms on its own connection (rolled back); keeps the latencies."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(daemon=True)
        self.engine, self.stop, self.latencies = engine, threading.Event(), list[float]()

    def run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stop.is_set():
                started = time.perf_counter()
                with connection.begin() as transaction:
                    connection.execute(sa.text(INTAKE))
                    transaction.rollback()
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.02)


def run_service(engine: sa.Engine, *, dask: bool) -> dict[str, Any]:
    """This checkout's re-assignment (join in PostGIS or on Dask); rolled back."""
    from gis.services import bulk, reassign

    with Session(engine) as session:
        started = time.perf_counter()
        if dask:
            with bulk.dask_client(None, workers=2) as client:
                t_cluster = time.perf_counter() - started
                bulk.stage_on_dask(session, client, snap_m=SNAP_M, progress=False)
            table = reassign.STAGE_PREFIX
        else:
            t_cluster = 0.0
            reassign.compute_assignments(session, snap_m=SNAP_M)
            table = "reassign_moves"
        t_join = time.perf_counter() - started
        last_live = session.execute(sa.text(_LAST_LIVE)).scalar_one()
        intake = _Intake(engine)
        intake.start()
        result = reassign.write_back(session, actor="bench", reason="bench", table=table)
        t_write = time.perf_counter() - started - t_join
        intake.stop.set()
        intake.join()
        # What the write-back left in the log and the feed (not timed): one event per moved case.
        events = session.execute(sa.text(_EVENTS)).scalar_one()
        live = session.execute(sa.text(_LIVE_AFTER), {"after": last_live}).all()
        session.rollback()
    return {
        "cluster_s": t_cluster,
        "join_s": t_join,
        "write_s": t_write,
        "total_s": t_join + t_write,
        "moved": result.moved,
        "version_only": result.version_only,
        "events": events,
        "live_events": {kind: count for kind, count in live},
        "intake_max_s": max(intake.latencies, default=0.0),
        "intake_inserts": len(intake.latencies),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the chosen methods in interleaved rounds on the same data and print the medians and
    the median of each round's ratios (one machine, noisy: a single pair of runs can be 2× off)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--baseline-ref", default=PRE_20)
    parser.add_argument("--methods", default="service,dask,update_from,main")
    parser.add_argument("--rounds", type=int, default=1, help="Each method once per round")
    args = parser.parse_args(argv)
    settings = Settings(
        database_url=args.database_url, db_statement_timeout_ms=7_200_000, _env_file=None
    )  # type: ignore[call-arg]
    upgrade(args.database_url)  # the data are bench.plans.run's (--setup); the schema is ours
    engine = make_engine(settings)
    grids, cases = counts(engine)
    _log(f"data: {grids:,} current grids, {cases:,} open cases; load {os.getloadavg()}")
    methods = args.methods.split(",")
    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(1, args.rounds + 1):
        results: dict[str, dict[str, Any]] = {}
        for method in methods:
            if method == "main":
                results[method] = run_main(args.database_url, args.baseline_ref)
            elif method == "update_from":
                results[method] = run_update_from(engine)
            else:
                results[method] = run_service(engine, dask=method == "dask")
            vacuum(engine)
            _log(f"round {number} {method}: {json.dumps(results[method])}; load {os.getloadavg()}")
        rounds.append(results)
    for method in methods:
        total = statistics.median(r[method]["total_s"] for r in rounds)
        _log(f"{method:12s} {total:8.1f} s  {cases / total:10,.0f} cases/s (median)")
    for ours in ("service", "dask"):
        for theirs in ("main", "update_from"):
            if ours in methods and theirs in methods:
                ratios = [r[theirs]["total_s"] / r[ours]["total_s"] for r in rounds]
                spread = ", ".join(f"{ratio:.2f}" for ratio in ratios)
                _log(
                    f"throughput {ours} / {theirs} = {statistics.median(ratios):.2f}x "
                    f"(median of rounds: {spread})"
                )
    engine.dispose()


if __name__ == "__main__":
    main()
