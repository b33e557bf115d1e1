"""Database outage drill: stop PostgreSQL under load, start it again, and count what survived.

A dedicated PostgreSQL cluster (port 5433 by default, created on first use with Debian's
``pg_createcluster``) is used so the drill never disturbs other databases. The drill:

1. provisions the cluster and a database with the demo county (a small sample);
2. serves the API with uvicorn and sends reports (POST /incidents, each with its own
   Idempotency-Key) from several client threads;
3. stops the cluster for a few seconds, then starts it again, while the clients keep going;
4. checks that while it was down every request failed fast with 503 (no hang, no 500), that the
   service recovered by itself, and that every report that got a 201 is in the database.

    python -m bench.outage.run [--port 5433] [--down-seconds 5] [--clients 8]

It prints the counts and exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from bench.server import admin_token, serve
from gis import provision
from gis.migrations.api import upgrade

PG_VERSION = os.environ.get("GIS_DRILL_PG_VERSION", "15")
CLUSTER = "gisdrill"


def _run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def ensure_cluster(port: int) -> None:
    """Create and start the drill's own cluster (trust auth on loopback)."""
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    if not any(line.split()[:2] == [PG_VERSION, CLUSTER] for line in listing.stdout.splitlines()):
        _run(
            "pg_createcluster",
            PG_VERSION,
            CLUSTER,
            "--port",
            str(port),
            "--",
            "--auth-host=trust",
            "--auth-local=trust",
        )
    cluster_start()


def cluster_start() -> None:
    """Start the drill cluster (no-op if running)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, CLUSTER, "start"],
        check=False,
        capture_output=True,
    )


def cluster_stop() -> None:
    """Stop the drill cluster immediately (fast mode: connections are cut)."""
    _run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, CLUSTER, "stop", "-m", "fast")


@dataclass
class Tally:
    """What the clients saw."""

    created: set[int] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_down: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(
    base: str,
    headers: dict[str, str],
    points: list[tuple[float, float]],
    stop: threading.Event,
    down: threading.Event,
    tally: Tally,
    seed: int,
) -> None:
    """Send reports until told to stop, recording statuses, ids and latencies while down."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        while not stop.is_set():
            lon, lat = rng.choice(points)
            body = {
                "category": "road_hazard",
                "location": {"lon": lon, "lat": lat},
                "description": "outage drill",
                "reporter": {"kind": "system", "id": "drill"},
            }
            started = time.perf_counter()
            was_down = down.is_set()
            try:
                response = client.post(
                    "/incidents", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
                )
            except httpx.HTTPError as error:
                with tally.lock:
                    tally.errors.append(repr(error))
                continue
            elapsed = time.perf_counter() - started
            with tally.lock:
                tally.statuses[response.status_code] = (
                    tally.statuses.get(response.status_code, 0) + 1
                )
                if response.status_code == 201:
                    tally.created.add(int(response.json()["id"]))
                if was_down and down.is_set():
                    tally.latencies_down.append(elapsed)
            if response.status_code == 503:
                time.sleep(0.05)


def main() -> int:
    """Run the drill and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5433)
    parser.add_argument("--down-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup-seconds", type=float, default=4.0)
    args = parser.parse_args()

    url = f"postgresql+psycopg://postgres:postgres@127.0.0.1:{args.port}/gis_drill"
    ensure_cluster(args.port)
    # A fresh database each run: one left migrated by another checkout (a newer revision this
    # code does not know) must not fail the drill.
    provision.drop_database(url, log=lambda m: print(m, file=sys.stderr))
    provision.up(url, log=lambda m: print(m, file=sys.stderr))
    upgrade(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    from sqlalchemy.orm import Session

    from gis.layers.categories import load_catalog
    from gis.sample import load_sample

    with Session(engine) as session:
        load_catalog(session)
        if session.scalar(sa.text("SELECT count(*) FROM regions")) == 0:
            load_sample(session, seed=1, scale=1, incidents_per_town=50, progress=False)
        token = admin_token(session, "drill")
        points = [
            (float(x), float(y))
            for x, y in session.execute(
                sa.text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                    "WHERE valid_to IS NULL ORDER BY code LIMIT 50) s"
                )
            )
        ]
        before = int(session.scalar(sa.text("SELECT count(*) FROM incidents")) or 0)
        session.commit()

    env = {
        "GIS_DATABASE_URL": url,
        "GIS_DB_CONNECT_TIMEOUT_S": "2",
        "GIS_DB_POOL_TIMEOUT_S": "2",
    }
    with serve(env) as server:
        base = server.base
        tally, stop, down = Tally(), threading.Event(), threading.Event()
        headers = {"Authorization": f"Bearer {token}"}
        threads = [
            threading.Thread(
                target=client_loop, args=(base, headers, points, stop, down, tally, i), daemon=True
            )
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup_seconds)
        print(f"{datetime.now(UTC):%H:%M:%S} stopping PostgreSQL", file=sys.stderr)
        cluster_stop()
        down.set()
        time.sleep(args.down_seconds)
        down.clear()
        print(f"{datetime.now(UTC):%H:%M:%S} starting PostgreSQL", file=sys.stderr)
        cluster_start()
        recovered_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with tally.lock:
                created = len(tally.created)
            time.sleep(0.5)
            with tally.lock:
                if len(tally.created) > created:
                    recovered_at = time.monotonic()
                    break
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=40)

    with engine.connect() as connection:
        stored = set(
            connection.execute(
                sa.text("SELECT id FROM incidents WHERE id = ANY(:ids)"),
                {"ids": sorted(tally.created)},
            ).scalars()
        )
        after = int(connection.scalar(sa.text("SELECT count(*) FROM incidents")) or 0)
    engine.dispose()

    lost = tally.created - stored
    p_down = statistics.median(tally.latencies_down) if tally.latencies_down else 0.0
    worst_down = max(tally.latencies_down, default=0.0)
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    print(
        f"201 answers: {len(tally.created)}; found in the database: {len(stored)}; "
        f"lost: {len(lost)}; rows added: {after - before}"
    )
    print(
        f"while down: {len(tally.latencies_down)} requests, median {p_down * 1000:.0f} ms, "
        f"worst {worst_down * 1000:.0f} ms"
    )
    print(
        f"recovered by itself: {'yes' if recovered_at else 'NO'}; transport errors: "
        f"{len(tally.errors)}"
    )
    failures = []
    if lost:
        failures.append(f"{len(lost)} acknowledged reports are missing")
    if tally.statuses.get(500):
        failures.append(f"{tally.statuses[500]} answers were 500")
    if not tally.statuses.get(503):
        failures.append("no 503 seen while the database was down")
    if worst_down > 10:
        failures.append(f"a request took {worst_down:.1f} s while the database was down")
    if recovered_at is None:
        failures.append("the service did not recover")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
