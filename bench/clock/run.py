"""What the event-log guard (migration 0009) costs, against the same work without it.

    python -m bench.clock --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench

On a migrated database with cases in it (``gis sample load``), in the same run:

- stored facts: ``REFRESH MATERIALIZED VIEW`` of the 0009 view (events cut at the refresh time)
  against the 0005b view it replaces, built side by side as scratch views (dropped afterwards);
  both must hold the same rows when no event is dated after the refresh;
- event inserts: one ``INSERT … SELECT`` of ``--events-per-case`` events for every case with the
  guard's trigger on, against the same with it disabled, each in a transaction rolled back;
- ``gis db check`` (``gis.services.eventlog.check``) over the whole log.

Prints medians and the ratios guarded / unguarded.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.services import eventlog

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench"
VERSIONS = Path(__file__).resolve().parents[2] / "gis" / "migrations" / "versions"
INSERT = """
INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, data)
SELECT i.id, now() - interval '1 day', 'bench', 'flag_overdue', i.status, i.status, '{}'
FROM incidents AS i, generate_series(1, :k)
"""


def _migration(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, VERSIONS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _refresh(engine: sa.Engine, view: str) -> Callable[[], None]:
    def run() -> None:
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL jit = off"))
            connection.execute(sa.text(f"REFRESH MATERIALIZED VIEW {view}"))

    return run


def _insert(
    engine: sa.Engine, k: int, *, guarded: bool, triggers: dict[str, list[float]]
) -> Callable[[], None]:
    def run() -> None:
        with engine.connect() as connection, connection.begin() as transaction:
            if not guarded:
                connection.execute(
                    sa.text(
                        "ALTER TABLE incident_events "
                        "DISABLE TRIGGER incident_events_not_in_future_insert"
                    )
                )
            plan = connection.scalar(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + INSERT), {"k": k})
            for trigger in plan[0].get("Triggers", []):
                triggers.setdefault(trigger["Trigger Name"], []).append(trigger["Time"] / 1000)
            transaction.rollback()

    return run


def _line(label: str, guarded: list[float], baseline: list[float]) -> None:
    new, old = statistics.median(guarded), statistics.median(baseline)
    print(f"{label}: {new:.3f} s against {old:.3f} s (medians) → ratio {new / old:.2f}")


def main(argv: list[str] | None = None) -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each measurement")
    parser.add_argument("--events-per-case", type=int, default=5)
    args = parser.parse_args(argv)
    engine = sa.create_engine(args.database_url)
    with engine.connect() as connection:
        cases = connection.scalar(sa.text("SELECT count(*) FROM incidents"))
        events = connection.scalar(sa.text("SELECT count(*) FROM incident_events"))
    print(f"{cases:,} cases, {events:,} events")

    guard = _migration("0009_clock_event_guard")
    old_sql = _migration("0005b_incident_facts").FACTS_SQL
    new_sql = guard.FACTS_SQL.format(cutoff=guard.CUTOFF)
    views = {"bench_facts_0008": new_sql, "bench_facts_0005b": old_sql}
    with engine.begin() as connection:
        for view, sql in views.items():
            connection.execute(sa.text(f"DROP MATERIALIZED VIEW IF EXISTS {view}"))
            connection.execute(sa.text(sql.replace("VIEW incident_facts", f"VIEW {view}")))
    try:
        timings: dict[str, list[float]] = {view: [] for view in views}
        for _ in range(args.repeat):
            for view in views:  # alternate, so load on the machine hits both alike
                timings[view].append(_timed(_refresh(engine, view)))
        with engine.connect() as connection:
            differing = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM (SELECT * FROM bench_facts_0008 "
                    "EXCEPT SELECT * FROM bench_facts_0005b) AS d"
                )
            )
        _line("stored facts refresh, 0008 vs 0005b", *timings.values())
        print(f"  rows that differ: {differing}")
    finally:
        with engine.begin() as connection:
            for view in views:
                connection.execute(sa.text(f"DROP MATERIALIZED VIEW IF EXISTS {view}"))

    inserts: dict[bool, list[float]] = {True: [], False: []}
    triggers: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for guarded in (True, False):
            run = _insert(engine, args.events_per_case, guarded=guarded, triggers=triggers)
            inserts[guarded].append(_timed(run))
    _line(
        f"INSERT … SELECT of {cases * args.events_per_case:,} events, guard on vs off",
        inserts[True],
        inserts[False],
    )
    for name, times in sorted(triggers.items()):  # as EXPLAIN ANALYZE reports them
        print(f"  trigger {name}: median {statistics.median(times):.3f} s")

    checks = []
    for _ in range(args.repeat):
        with Session(engine) as session:
            started = time.perf_counter()
            found = eventlog.check(session)
            checks.append(time.perf_counter() - started)
    print(f"gis db check: median {statistics.median(checks):.3f} s, {len(found)} finding(s)")
    engine.dispose()
