"""Live feed under load: SSE subscribers on one worker while intake runs at a steady rate.

Serves the API with uvicorn (one worker) on the demo county of ``--database-url``; opens
``--subscribers`` streams (GET /events/stream, each for one town, round robin over the towns, as
command rooms do), then reports at ``--rate`` per second (Poisson arrivals) for ``--seconds``.
Half-way, every subscriber is cut and reconnects with Last-Event-ID (``--no-reconnect`` to skip).
Prints commit → delivery latency (the event's database timestamp to its arrival) p50/p99, and
compares the ids every subscriber received with the feed in the database: missed and duplicated
must both be 0.

    python -m bench.live.run --database-url postgresql+psycopg://…/gis_bench --seconds 30

With ``--restart-postgres`` the run uses the outage drill's own cluster (``bench.outage``: port
5433, created on first use, the demo county loaded into it), which it restarts three quarters of
the way through (stopped in fast mode for ``--down-seconds``): reports refused meanwhile (503)
are counted apart, and every event committed before and after must still reach every subscriber
exactly once. The clients are aiohttp: the load generator shares the cores with the service,
and httpx's line reader could not keep up with 200 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.server import ROOT, admin_token, provision_demo, serve


@dataclass
class Subscriber:
    """What one stream received: ids in order and delivery latencies (s)."""

    town: str
    ids: list[int] = field(default_factory=list)
    # (commit time, commit → delivery in s) of each event received.
    latencies: list[tuple[float, float]] = field(default_factory=list)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


def prepare(url: str) -> tuple[str, dict[str, list[tuple[float, float]]], int]:
    """A token, points inside grids per town, and the feed's newest id."""
    engine = sa.create_engine(url)
    with Session(engine) as session:
        token = admin_token(session, "bench-live")
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for town, x, y in session.execute(
            sa.text(
                "SELECT town_code, ST_X(p), ST_Y(p) FROM (SELECT town_code, "
                "ST_PointOnSurface(geom) AS p FROM grids WHERE valid_to IS NULL) AS s"
            )
        ):
            points[town].append((float(x), float(y)))
        start = int(session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events")))
        session.commit()
    engine.dispose()
    return token, dict(points), start


async def listen(
    http: aiohttp.ClientSession,
    sub: Subscriber,
    after: int,
    stop: asyncio.Event,
    cut: asyncio.Event,
) -> None:
    """Read the stream until ``stop``; when ``cut`` is set, drop it once and reconnect with
    Last-Event-ID (as a browser does after any break)."""
    last = after
    dropped = False
    while not stop.is_set():
        headers = {"Last-Event-ID": str(last)}
        try:
            async with http.get(
                "/events/stream", params={"town": sub.town}, headers=headers
            ) as response:
                kind = ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind.startswith(("case.", "unit.")):
                        event = json.loads(line[6:])
                        at = datetime.fromisoformat(event["at"]).timestamp()
                        sub.latencies.append((at, time.time() - at))
                        sub.ids.append(int(event["id"]))
                        last = int(event["id"])
                    elif line.startswith("data: ") and kind == "reload":
                        sub.errors.append("reload")
                    if stop.is_set() or (cut.is_set() and not dropped):
                        break
        except (aiohttp.ClientError, TimeoutError) as error:
            sub.errors.append(repr(error))
            await asyncio.sleep(0.5)
        if cut.is_set() and not dropped:
            dropped = True
            sub.reconnects += 1


@dataclass
class Sent:
    """What the reporter sent: how many, refused while the database was down, failed."""

    count: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    # When PostgreSQL was down (wall clock: from, until), if it was restarted.
    down: tuple[float, float] | None = None


async def report_loop(
    http: aiohttp.ClientSession,
    rate: float,
    points: dict[str, list[tuple[float, float]]],
    deadline: float,
    rng: random.Random,
    sent: Sent,
    down: list[float],
) -> None:
    """POST reports at Poisson arrivals averaging ``rate`` per second until ``deadline``, each
    sent without waiting for the ones before (an open loop: a slow reply does not slow the
    offered rate). A 503 while the database is down (``down``: [from, until], monotonic) is
    a refusal, not a failure."""
    towns = sorted(points)

    async def one(lon: float, lat: float) -> None:
        body = {
            "category": "road_hazard",
            "location": {"lon": lon, "lat": lat},
            "reporter": {"kind": "grid_member", "id": "bench-live"},
        }
        started = time.monotonic()
        try:
            async with http.post("/incidents", json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            status, text = -1, repr(error)
        if status == 201:
            return
        if status == 503 and down and down[0] - 1 <= started <= down[1] + 30:
            sent.refused += 1
        else:
            sent.failures.append(f"{status}: {text[:100]}")

    tasks = []
    # Arrivals on a schedule of their own: a busy loop that wakes late sends the reports it
    # owes at once instead of offering fewer.
    due = time.monotonic()
    while time.monotonic() < deadline:
        due += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(one(*rng.choice(points[rng.choice(towns)]))))
    await asyncio.gather(*tasks)
    sent.count = len(tasks)


def reports_process(
    base: str,
    token: str,
    rate: float,
    points: dict[str, list[tuple[float, float]]],
    seconds: float,
    restart: tuple[float, float] | None,
) -> Sent:
    """Send the reports (run in a process of its own); with ``restart`` = (after s, down s),
    stop the drill cluster that long after that long, and start it again."""
    sent = Sent()
    down: list[float] = []

    async def outage(after_s: float, down_s: float) -> None:
        from bench.outage.run import cluster_start, cluster_stop

        await asyncio.sleep(after_s)
        down.extend([time.monotonic(), time.monotonic() + down_s])
        stopped = time.time()
        await asyncio.to_thread(cluster_stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(cluster_start)
        down[1] = time.monotonic()
        sent.down = (stopped, time.time())

    async def run() -> None:
        async with aiohttp.ClientSession(
            base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=256),
        ) as http:
            deadline = time.monotonic() + seconds
            jobs = [report_loop(http, rate, points, deadline, random.Random(13), sent, down)]
            if restart is not None:
                jobs.append(outage(*restart))
            await asyncio.gather(*jobs)

    asyncio.run(run())
    return sent


def newest_per_town(url: str, start: int) -> dict[str, int]:
    """The newest case event of each town after ``start``."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT town_code, max(id) FROM live_events WHERE id > :start "
                "AND type LIKE 'case.%' GROUP BY town_code"
            ),
            {"start": start},
        ).all()
    engine.dispose()
    return {town: int(newest) for town, newest in rows}


def pct(values: list[float], q: float) -> float:
    """The q-quantile of ``values`` in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> int:
    """Run and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: the drill cluster with --restart-postgres")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="reports per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-reconnect", action="store_true")
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="restart the outage drill's own cluster (port --drill-port) 3/4 of the way through",
    )
    parser.add_argument("--drill-port", type=int, default=5433)
    parser.add_argument("--down-seconds", type=float, default=2.0)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=20.0,
        help="wait this long after the server starts (its analytics warm-up compiles numba "
        "kernels in a thread for its first ~15 s; a command room's service runs all day)",
    )
    args = parser.parse_args()

    url = args.database_url
    if args.restart_postgres:
        from bench.outage.run import ensure_cluster

        ensure_cluster(args.drill_port)
        url = url or (
            f"postgresql+psycopg://postgres:postgres@127.0.0.1:{args.drill_port}/gis_bench_live"
        )
        if f":{args.drill_port}/" not in url:
            parser.error("--restart-postgres restarts the drill cluster: its database only")
        provision_demo(ROOT, url)
    if url is None:
        parser.error("--database-url is required without --restart-postgres")

    token, points, start = prepare(url)
    towns = sorted(points)
    env = {"GIS_DATABASE_URL": url, "GIS_DB_POOL_SIZE": "20"}
    subs = [Subscriber(towns[i % len(towns)]) for i in range(args.subscribers)]
    restart = (args.seconds * 3 / 4, args.down_seconds) if args.restart_postgres else None
    with serve(env, workers=1) as server:
        time.sleep(args.warmup_seconds)

        async def run() -> Sent:
            async with aiohttp.ClientSession(
                server.base,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                connector=aiohttp.TCPConnector(limit=args.subscribers + 64),
            ) as streams:
                stop, cut = asyncio.Event(), asyncio.Event()
                listeners = [
                    asyncio.create_task(listen(streams, s, start, stop, cut)) for s in subs
                ]
                await asyncio.sleep(2)  # every stream open
                if not args.no_reconnect:
                    loop = asyncio.get_running_loop()
                    loop.call_later(args.seconds / 2, cut.set)
                # The reports come from a process of their own: parsing 200 streams here
                # must not slow the offered rate.
                with ProcessPoolExecutor(1) as pool:
                    sent = await asyncio.get_running_loop().run_in_executor(
                        pool, reports_process, server.base, token, args.rate, points,
                        args.seconds, restart,
                    )  # fmt: skip
                # Wait (up to a minute) for every subscriber to reach the feed's last event of
                # its town: "missed" below counts losses, not latency.
                newest = await asyncio.to_thread(newest_per_town, url, start)
                for _ in range(600):
                    if all(s.ids and s.ids[-1] >= newest.get(s.town, 0) for s in subs):
                        break
                    await asyncio.sleep(0.1)
                stop.set()
                for task in listeners:
                    task.cancel()
                await asyncio.gather(*listeners, return_exceptions=True)
                return sent

        sent = asyncio.run(run())

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        expected: dict[str, list[int]] = defaultdict(list)
        for town, ident in conn.execute(
            sa.text(
                "SELECT town_code, id FROM live_events WHERE id > :start "
                "AND type LIKE 'case.%' ORDER BY id"
            ),
            {"start": start},
        ):
            expected[town].append(int(ident))
    engine.dispose()
    missed = duplicated = received = 0
    latencies: list[float] = []
    steady: list[float] = []  # of events committed 2 s or more from the outage
    for sub in subs:
        got = sub.ids
        received += len(got)
        duplicated += len(got) - len(set(got))
        missed += len(set(expected[sub.town]) - set(got))
        for at, latency in sub.latencies:
            latencies.append(latency)
            if sent.down is None or not sent.down[0] - 2 <= at <= sent.down[1] + 2:
                steady.append(latency)
    reloads = sum(s.errors.count("reload") for s in subs)
    print(
        f"{args.subscribers} subscribers on 1 worker, {sent.count} reports in "
        f"{args.seconds:.0f} s ({sent.count / args.seconds:.1f}/s), {os.cpu_count()} cores, "
        f"reconnect of every subscriber half-way: {not args.no_reconnect}, "
        f"PostgreSQL restarted: {args.restart_postgres}"
    )
    print(f"events in the feed: {sum(len(v) for v in expected.values())}; received {received}")
    print(
        f"commit -> delivery: p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms"
    )
    if sent.down is not None:
        print(
            f"  of events committed 2 s or more from the outage ({sent.down[1] - sent.down[0]:.1f}"
            f" s down): p50 {pct(steady, 0.5):.0f} ms, p99 {pct(steady, 0.99):.0f} ms"
        )
    print(
        f"missed {missed}, duplicated {duplicated}, reloads {reloads}, "
        f"reports refused while PostgreSQL was down {sent.refused}, "
        f"intake errors {len(sent.failures)}"
    )
    for failure in sent.failures[:3]:
        print("FAIL", failure)
    return 1 if missed or duplicated or sent.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
