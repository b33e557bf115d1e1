"""Intake's one statement on the partitioned event log against a plain one, same run.

    python -m bench.partition \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_partition \\
        --baseline-database-url postgresql+psycopg://…/gis_bench_partition_main

Both databases hold the same demo county (``gis sample load`` with the same seed and scale);
the first is migrated to this checkout's head (``incident_events`` partitioned by month,
migration 0012), the second by ``main`` (0011, a plain table). Intake's code is the same in
both (``gis.services.intake`` did not change), so this checkout's ``report_incident`` runs
against each: ``--reports`` reports per round, each in its own committed transaction on one
connection, rounds alternating between the databases. Without HTTP, the database's share of a
report is what is measured, where partitioning could cost (tuple routing, one more index per
month). Prints medians of the per-report time and the ratio plain / partitioned (above 1: the
partitioned log is faster). The reports are deleted afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.intake.run import REPORTER_ID, delete_bench_incidents, vacuum
from gis.services.intake import IncidentReport, report_incident
from gis.settings import Settings


def _points(engine: sa.Engine, n: int) -> list[tuple[float, float]]:
    with engine.connect() as conn:
        return [
            (float(x), float(y))
            for x, y in conn.execute(
                sa.text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1, 7)))"
                    ".geom AS p FROM (SELECT geom FROM grids WHERE valid_to IS NULL "
                    "ORDER BY md5(code) LIMIT :n) AS g) AS s"
                ),
                {"n": n},
            )
        ]


def _round(
    engine: sa.Engine, url: str, points: list[tuple[float, float]], cats: list[str]
) -> list[float]:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    times = []
    rng = random.Random(7)
    with Session(engine) as session:
        for lon, lat in points:
            report = IncidentReport.model_validate(
                {
                    "category": rng.choice(cats),
                    "location": {"lon": lon, "lat": lat},
                    "reporter": {"kind": "citizen", "id": REPORTER_ID},
                }
            )
            started = time.perf_counter()
            report_incident(session, report, settings=settings)
            session.commit()
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> None:
    """Alternate rounds on the two databases and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--baseline-database-url", required=True)
    parser.add_argument("--reports", type=int, default=300, help="reports per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    engines = {
        "partitioned": (sa.create_engine(args.database_url), args.database_url),
        "plain": (sa.create_engine(args.baseline_database_url), args.baseline_database_url),
    }
    points = _points(engines["partitioned"][0], args.reports)
    with engines["partitioned"][0].connect() as conn:
        cats = list(conn.scalars(sa.text("SELECT code FROM categories ORDER BY code")))
    results: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for engine, _ in engines.values():
            delete_bench_incidents(engine)
            vacuum(engine)
        for number in range(1, args.rounds + 1):
            for name, (engine, url) in engines.items():
                times = _round(engine, url, points, cats)
                results[name] += times
                print(
                    f"round {number} {name:12} median {statistics.median(times) * 1000:6.2f} ms "
                    f"p90 {sorted(times)[int(0.9 * len(times))] * 1000:6.2f} ms",
                    flush=True,
                )
    finally:
        for engine, _ in engines.values():
            print(f"cleaned up {delete_bench_incidents(engine):,} reports")
            vacuum(engine)
            engine.dispose()
    part, plain = (statistics.median(results[name]) for name in ("partitioned", "plain"))
    print(
        f"intake statement, {len(results['plain']):,} reports each: partitioned "
        f"{part * 1000:.2f} ms, plain {plain * 1000:.2f} ms -> plain / partitioned "
        f"{plain / part:.2f}"
    )
