"""Reads over the cases on the partitioned table against a plain one, and as the months pile up.

    python -m bench.partition.reads \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_rd \\
        --baseline-ref a1f2f9f \\
        --baseline-database-url postgresql+psycopg://…/gis_rd_old \\
        --rounds 5 --requests 100 --add-months 60,120

Both databases hold the same demo county (``gis sample load`` with the same seed and scale); the
first is migrated to this checkout's head (cases partitioned by month, migration 0023), the
second by ``--baseline-ref`` (a version before 0023: one plain ``incidents`` table), whose code
serves it from a temporary worktree. The reads that name no month of ``reported_at`` — a case by
id, its events, the case list, OGC items in a bbox and one by id — are where partitioning could
cost: each starts (or plans) one scan per month. One client sends ``--requests`` of each kind
per round, one at a time (latency, not throughput: the per-month cost is paid per request),
alternating the servers' order every round; medians per kind and the median of the rounds'
ratios (baseline / this: above 1, the partitioned version is faster) are printed.

``--add-months N,M`` then repeats the rounds with N and then M more (empty) months attached
before the oldest, as years of kept history would (``gis partitions ensure``), against the same
baseline; the months it added are dropped again at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.server import ROOT, Server, admin_token, baseline_checkout, serve
from gis.layers.incidents import CASE_MONTHS, MONTHLY_TABLES
from gis.services.partitions import ensure_partitions, list_partitions

BENCH_USER = "bench-partition-reads"


@dataclass(frozen=True)
class Target:
    """A server under test and the bearer token of its database."""

    name: str
    server: Server
    token: str


@dataclass(frozen=True)
class Requests:
    """What every round asks both servers, read from the (identical) data once."""

    case_ids: list[int]
    town: str
    bbox: str

    def paths(self, kind: str, i: int) -> str:
        case = self.case_ids[i % len(self.case_ids)]
        return {
            "case by id": f"/incidents/{case}",
            "case events": f"/incidents/{case}/events",
            "case list, newest 50": "/incidents?limit=50",
            "town's open cases": f"/incidents?town={self.town}&status=assigned&limit=50",
            "OGC items in a bbox": f"/ogc/collections/incidents/items?limit=100&bbox={self.bbox}",
            "OGC item by id": f"/ogc/collections/incidents/items/{case}",
        }[kind]


KINDS = (
    "case by id",
    "case events",
    "case list, newest 50",
    "town's open cases",
    "OGC items in a bbox",
    "OGC item by id",
)


def _requests(url: str, n: int) -> Requests:
    """Case ids spread over every month of the data, the busiest town and a bbox in it."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = list(
            conn.scalars(
                sa.text("SELECT id FROM incidents ORDER BY md5(id::text) LIMIT :n"), {"n": n}
            )
        )
        town = conn.scalar(
            sa.text("SELECT town_code FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        )
        x0, y0, x1, y1 = conn.execute(
            sa.text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Expand(ST_Centroid(ST_Extent(geom)), 0.01) AS e FROM incidents "
                "WHERE town_code = :t) AS s"
            ),
            {"t": town},
        ).one()
    engine.dispose()
    return Requests(ids, str(town), f"{x0:.5f},{y0:.5f},{x1:.5f},{y1:.5f}")


def _token(url: str) -> str:
    engine = sa.create_engine(url)
    with Session(engine) as session:
        token = admin_token(session, BENCH_USER)
        session.commit()
    engine.dispose()
    return token


def _vacuum(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def _time(client: httpx.Client, target: Target, kind: str, asks: Requests, n: int) -> float:
    """The median latency of ``n`` requests of ``kind``, one at a time, in seconds."""
    headers = {"Authorization": f"Bearer {target.token}"}
    times = []
    for i in range(n):
        started = time.perf_counter()
        response = client.get(target.server.base + asks.paths(kind, i), headers=headers)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{target.name}: {kind} answered {response.status_code}")
    return statistics.median(times)


def _rounds(
    targets: list[Target], asks: Requests, rounds: int, n: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Per kind and target, each round's median latency; the targets' order alternates."""
    medians: dict[str, dict[str, list[float]]] = {k: {t.name: [] for t in targets} for k in KINDS}
    with httpx.Client(timeout=60) as client:
        # Warm up to the steady state of a service that runs all day: a connection plans a
        # statement for its values until it has run it about ten times (psycopg prepares it
        # after five, PostgreSQL then tries five plans for the values before its cached one),
        # and with many months each of those plans costs more.
        for target in targets:
            for kind in KINDS:
                _time(client, target, kind, asks, warmup)
        for number in range(rounds):
            order = targets if number % 2 == 0 else targets[::-1]
            for target in order:
                for kind in KINDS:
                    medians[kind][target.name].append(_time(client, target, kind, asks, n))
    return medians


def _report(title: str, medians: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{title}\n")
    print("| read | this (ms) | baseline (ms) | baseline / this, median of rounds |")
    print("|---|---:|---:|---:|")
    for kind, by in medians.items():
        this, base = by["this"], by["baseline"]
        ratios = [b / t for b, t in zip(base, this, strict=True)]
        print(
            f"| {kind} | {statistics.median(this) * 1000:.2f} | "
            f"{statistics.median(base) * 1000:.2f} | {statistics.median(ratios):.2f} "
            f"({', '.join(f'{r:.2f}' for r in ratios)}) |",
            flush=True,
        )


@contextmanager
def _more_months(url: str, extra: int) -> Iterator[int]:
    """``extra`` empty months attached before the oldest one, dropped again afterwards; yields
    how many months of the cases are attached then."""
    engine = sa.create_engine(url)
    with Session(engine) as session:
        oldest = min(
            p.month
            for p in list_partitions(session)
            if p.table == CASE_MONTHS.name and p.month is not None and p.schema == "public"
        )
        added = ensure_partitions(session, first=oldest.plus(-extra), last=oldest.plus(-1))
        session.commit()
        attached = _attached(session)
    _vacuum(url)
    try:
        yield attached
    finally:
        with Session(engine) as session:
            for month in added:
                for table in MONTHLY_TABLES:
                    name = month.partition(table)
                    rows = session.scalar(sa.text(f"SELECT count(*) FROM {name}"))
                    if rows == 0:  # detached first: keys to the table would refuse a drop
                        session.execute(
                            sa.text(f"ALTER TABLE {table.name} DETACH PARTITION {name}")
                        )
                        session.execute(sa.text(f"DROP TABLE {name}"))
            session.commit()
        engine.dispose()


def _attached(session: Session) -> int:
    """How many partitions of the cases are attached (the default one included)."""
    return sum(
        1 for p in list_partitions(session) if p.table == CASE_MONTHS.name and p.schema == "public"
    )


def _months(url: str) -> int:
    engine = sa.create_engine(url)
    with Session(engine) as session:
        count = _attached(session)
    engine.dispose()
    return count


def main(argv: list[str] | None = None) -> None:
    """Serve both versions, measure the reads in alternating rounds, then with more months."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--baseline-ref", required=True, help="a version before migration 0023")
    parser.add_argument("--baseline-database-url", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100, help="of each kind, per round")
    parser.add_argument(
        "--warmup", type=int, default=60, help="requests of each kind before the rounds"
    )
    parser.add_argument("--add-months", default="", help="empty months to add, e.g. 24,48")
    args = parser.parse_args(argv)
    extras = [int(n) for n in args.add_months.split(",") if n]
    asks = _requests(args.database_url, args.requests)
    for url in (args.database_url, args.baseline_database_url):
        _vacuum(url)
    with ExitStack() as stack:
        base_root = stack.enter_context(baseline_checkout(args.baseline_ref))
        targets = [
            Target(
                "this",
                stack.enter_context(serve({"GIS_DATABASE_URL": args.database_url}, root=ROOT)),
                _token(args.database_url),
            ),
            Target(
                "baseline",
                stack.enter_context(
                    serve({"GIS_DATABASE_URL": args.baseline_database_url}, root=base_root)
                ),
                _token(args.baseline_database_url),
            ),
        ]
        months = _months(args.database_url)
        _report(
            f"{months} monthly partitions of the cases (with the default) against one plain "
            f"table ({args.baseline_ref}), {args.rounds} rounds of {args.requests} requests each",
            _rounds(targets, asks, args.rounds, args.requests, args.warmup),
        )
        for extra in extras:
            with _more_months(args.database_url, extra) as attached:
                _report(
                    f"{attached} monthly partitions ({extra} empty months added) against the "
                    f"same plain table",
                    _rounds(targets, asks, args.rounds, args.requests, args.warmup),
                )


if __name__ == "__main__":
    main()
