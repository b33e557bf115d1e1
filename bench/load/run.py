"""Bounded load run on loopback over a realistic mix of requests.

Serves the API with uvicorn (``--workers``) on the demo county of ``--database-url`` and sends,
from ``--concurrency`` asyncio clients for ``--seconds``, a mix of: report intake (POST
/incidents), locate, nearest responders, a town's statistics and a command-room map. Prints, per
endpoint and overall, requests, errors (anything that is not the expected status), throughput and
p50/p99 latency; exits non-zero if any request failed.

    python -m bench.load.run --database-url postgresql+psycopg://…/gis_load --seconds 60

The database must hold the demo county (``gis sample load``); an admin token is made for the run.
Each server first gets ``--warmup-seconds`` of the same mix, not counted (connection pools, JIT
compilation, page and statistics caches: a command room's service runs all day). With
``--baseline-ref`` the baseline is served from a temporary worktree on a database of its own
(``<database>_baseline``), migrated and filled by the baseline's own code, so each version runs
on the schema it was written for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.server import ROOT, admin_token, baseline_checkout, provision_demo, run_cli, serve

# (name, weight): what a command room's day looks like — mostly reports and lookups.
MIX = [
    ("intake", 35),
    ("locate", 25),
    ("nearest", 20),
    ("stats", 15),
    ("map", 5),
]


@dataclass
class Results:
    """Latencies and failures per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


# What marks the reports this bench sends (and removes before each run).
DESCRIPTION, REPORTER = "load test", "bench"


def forget_reports(url: str) -> int:
    """Delete the reports of earlier runs (their events go with them) and VACUUM ANALYZE what
    the run reads: tens of thousands of left-over reports "from now" would make every later
    run's duplicate check and lists slower than the first's."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        gone = conn.execute(
            sa.text("DELETE FROM incidents WHERE description = :d AND reporter_id = :r"),
            {"d": DESCRIPTION, "r": REPORTER},
        ).rowcount
    tables = ["incidents", "incident_events"]
    with engine.connect() as conn:
        if conn.scalar(sa.text("SELECT to_regclass('live_events') IS NOT NULL")):
            conn.execute(
                sa.text("DELETE FROM live_events WHERE data->>'incident_id' IS NOT NULL "
                        "AND NOT EXISTS (SELECT 1 FROM incidents AS i "
                        "WHERE i.id = (live_events.data->>'incident_id')::bigint)")
            )  # fmt: skip
            conn.commit()
            tables.append("live_events")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {', '.join(tables)}"))
    engine.dispose()
    return gone


def prepare(url: str) -> tuple[str, list[tuple[float, float]], list[str]]:
    """An admin token, points inside grids, and town codes from the database."""
    engine = sa.create_engine(url)
    with Session(engine) as session:
        token = admin_token(session, "bench-load")
        points = [
            (float(x), float(y))
            for x, y in session.execute(
                sa.text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                    "WHERE valid_to IS NULL ORDER BY md5(code) LIMIT 500) AS s"
                )
            )
        ]
        towns = list(
            session.scalars(
                sa.text("SELECT code FROM regions WHERE level = 'town' ORDER BY code LIMIT 5")
            )
        )
        session.commit()
    engine.dispose()
    if not points or not towns:
        raise SystemExit("the database holds no demo county: run `gis sample load` first")
    return token, points, towns


def request_for(
    kind: str, rng: random.Random, points: list[tuple[float, float]], towns: list[str]
) -> tuple[str, str, dict[str, object], int]:
    """(method, path, request keywords, expected status) for one request of ``kind``."""
    lon, lat = rng.choice(points)
    if kind == "intake":
        body = {
            "category": rng.choice(
                [
                    "cooking_fume",
                    "road_hazard",
                    "food_safety",
                    "neighbour_dispute",
                    "document_errand",
                ]
            ),
            "location": {"lon": lon, "lat": lat},
            "description": DESCRIPTION,
            "reporter": {"kind": "grid_member", "id": REPORTER},
        }
        return (
            "POST",
            "/incidents",
            {"json": body, "headers": {"Idempotency-Key": str(uuid.uuid4())}},
            201,
        )
    if kind == "locate":
        return "GET", "/locate", {"params": {"lon": lon, "lat": lat}}, 200
    if kind == "nearest":
        return (
            "GET",
            "/dispatch/nearest",
            {"params": {"lon": lon, "lat": lat, "k": 5, "platform": "governance"}},
            200,
        )
    if kind == "stats":
        return (
            "GET",
            "/stats/cases",
            {"params": {"group_by": "platform", "town": rng.choice(towns)}},
            200,
        )
    return "GET", "/maps/command-room", {"params": {"town": rng.choice(towns)}}, 200


async def client(
    worker: int,
    base: str,
    token: str,
    points: list[tuple[float, float]],
    towns: list[str],
    deadline: float,
    results: Results,
) -> None:
    """Send requests back to back on one keep-alive connection until the deadline.

    aiohttp, not httpx: the load generator shares the 2 cores with the servers it measures, and
    httpx cost ~1.6 ms of CPU per request here (a third of all the CPU a request of the mix took,
    server and PostgreSQL included); aiohttp's C parser a fraction of it."""
    rng = random.Random(worker)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    async with aiohttp.ClientSession(
        base,
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=60),
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            method, path, kwargs, expected = request_for(kind, rng, points, towns)
            started = time.perf_counter()
            try:
                async with http.request(method, path, **kwargs) as response:  # type: ignore[arg-type]
                    body = await response.read()
                status, text = response.status, body[:200].decode(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as error:
                status, text = -1, repr(error)
            results.latencies[kind].append(time.perf_counter() - started)
            if status != expected:
                results.failures[kind].append(f"{status}: {text}")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0–1) of values, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    """Run the load and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=20,
        help="the same mix, not counted, before each measured run",
    )
    parser.add_argument(
        "--baseline-ref",
        help="also run the same load, first, against this git ref (e.g. main) checked out into "
        "a temporary worktree, and print the ratios",
    )
    args = parser.parse_args()

    if args.baseline_ref:
        with baseline_checkout(args.baseline_ref) as root:
            url = baseline_database(args.database_url)
            print(f"== baseline: {args.baseline_ref} ({root}, {url.rsplit('/', 1)[-1]})")
            provision_demo(root, url)
            before = load(args, url, root)
            report(args, *before)
    print("== this checkout")
    after = load(args, args.database_url, ROOT)
    code = report(args, *after)
    if args.baseline_ref:
        (b_results, b_elapsed), (a_results, a_elapsed) = before, after
        b_all = [v for values in b_results.latencies.values() for v in values]
        a_all = [v for values in a_results.latencies.values() for v in values]
        print(
            f"ratio (this / {args.baseline_ref}): throughput "
            f"{len(a_all) / a_elapsed / (len(b_all) / b_elapsed):.2f}x, "
            f"p99 {pct(a_all, 0.99) / pct(b_all, 0.99):.2f}x"
        )
    return code


def baseline_database(url: str) -> str:
    """The baseline's own database beside ``url``: ``<name>_baseline``."""
    base, _, query = url.partition("?")
    return f"{base}_baseline" + (f"?{query}" if query else "")


def load(args: argparse.Namespace, url: str, root: Path) -> tuple[Results, float]:
    """Serve ``root``'s code on ``url`` and run the mix against it (after the warm-up); the
    results and the seconds taken."""
    print(f"removed {forget_reports(url)} reports of earlier runs")
    # As cron does in production: statistics and the map's figures read the stored facts while
    # they are fresh (GIS_STATS_STALE_AFTER_S), and exact figures from the event log otherwise.
    run_cli(root, url, "stats", "refresh")
    token, points, towns = prepare(url)
    env = {"GIS_DATABASE_URL": url, "GIS_DB_POOL_SIZE": "20"}
    with serve(env, workers=args.workers, root=root) as server:

        def run(seconds: float, results: Results) -> float:
            started = time.monotonic()
            deadline = started + seconds

            async def run_all() -> None:
                await asyncio.gather(
                    *(
                        client(i, server.base, token, points, towns, deadline, results)
                        for i in range(args.concurrency)
                    )
                )

            asyncio.run(run_all())
            return time.monotonic() - started

        if args.warmup_seconds > 0:
            warm = Results()
            run(args.warmup_seconds, warm)
            done = sum(len(v) for v in warm.latencies.values())
            failed = sum(len(v) for v in warm.failures.values())
            print(f"warm-up: {done} requests in {args.warmup_seconds:.0f} s, {failed} failed")
        results = Results()
        return results, run(args.seconds, results)


def report(args: argparse.Namespace, results: Results, elapsed: float) -> int:
    """Print the table of one run; 1 if any request failed."""
    print(
        f"concurrency {args.concurrency}, {args.seconds:.0f} s, {args.workers} workers, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'endpoint':<10}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    everything: list[float] = []
    errors = 0
    for kind, _ in MIX:
        values = results.latencies[kind]
        everything += values
        errors += len(results.failures[kind])
        if values:
            print(
                f"{kind:<10}{len(values):>10}{len(results.failures[kind]):>8}"
                f"{len(values) / elapsed:>9.1f}{pct(values, 0.5):>9.1f}{pct(values, 0.99):>9.1f}"
            )
    print(
        f"{'all':<10}{len(everything):>10}{errors:>8}{len(everything) / elapsed:>9.1f}"
        f"{pct(everything, 0.5):>9.1f}{pct(everything, 0.99):>9.1f}"
    )
    print(f"median of all: {statistics.median(everything) * 1000:.1f} ms")
    for kind, failures in results.failures.items():
        for failure in failures[:3]:
            print(f"FAIL {kind}: {failure}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
