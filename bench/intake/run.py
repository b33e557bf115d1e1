"""Intake and locate through real HTTP (uvicorn + wrk) against a bare asyncpg baseline.

    python -m bench.intake --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench

Starts two uvicorn servers (``--workers`` each, default 1): the service
(``gis.api.app:create_app``) and the bare ASGI + asyncpg app of ``bench/intake/bare.py`` running
the same SQL. Then, for POST /incidents and GET /locate, drives each with ``wrk`` at concurrency
32 for a bounded time, in alternating rounds: flat out (throughput, and the ratio service /
baseline) and paced (the 32 clients together offer each ``--paced-rate`` in requests/s: latency
under a load the service carries). Prints throughput, p50/p99 and CPU per request. Incidents
written by the run are deleted at the end (reporter id ``bench-intake``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.server import Server, admin_token, baseline_checkout, serve

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench"
REPORTER_ID = "bench-intake"
# A loaded machine (load average 11 on 2 cores measured) needs ~30 s to import and start the app.
READY_S = 180.0


@dataclass
class Result:
    """One wrk run."""

    target: str
    endpoint: str
    mode: str  # "saturated" (closed loop, no pause) or "paced" (each client pauses)
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_ms_per_request: float


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its worker processes (Linux /proc)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:  # field 4: the parent's pid
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    total = 0
    for p in pids:
        try:
            fields = _stat(p)
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    base: str, script: str, *, seconds: int, connections: int, threads: int, pause_ms: float = 0
) -> dict[str, float]:
    """Run wrk with a Lua script; returns requests/s, p50, p99 (ms), requests and errors.
    With ``pause_ms`` each connection waits that long after an answer before its next request
    (the scripts' ``delay()``): clients reporting at a steady rate instead of flat out."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "--timeout", "5s", "-s", str(HERE / script), base,
    ]  # fmt: skip
    token = os.environ.get("BENCH_TOKEN")
    if token:  # the service checks it on every request, as in production; the bare app ignores it
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    env = {**os.environ, "BENCH_PAUSE_MS": str(pause_ms)} if pause_ms else None
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if not (p50 and p99 and rps and total):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "requests": int(total.group(1)),
        "errors": errors,
    }


def measure(
    server: Server,
    script: str,
    target: str,
    endpoint: str,
    args: argparse.Namespace,
    *,
    rate: float = 0,
) -> Result:
    """Warm up, then one measured wrk run with the server's CPU time per request. With a
    ``rate``, the clients together offer that many requests/s (paced); else flat out."""
    pause_ms = args.connections * 1000 / rate if rate else 0
    options = {"connections": args.connections, "threads": args.threads, "pause_ms": pause_ms}
    wrk(server.base, script, seconds=args.warmup, **options)
    cpu_before = cpu_seconds(server.pid)
    measured = wrk(server.base, script, seconds=args.seconds, **options)
    cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000
    return Result(
        target=target,
        endpoint=endpoint,
        mode=f"paced {rate:g}/s" if rate else "saturated",
        requests_per_s=measured["requests_per_s"],
        p50_ms=measured["p50_ms"],
        p99_ms=measured["p99_ms"],
        requests=int(measured["requests"]),
        errors=int(measured["errors"]),
        cpu_ms_per_request=cpu_ms / max(1, measured["requests"]),
    )


def sample_points(engine: sa.Engine, n: int, path: Path) -> int:
    """Write ``n`` random points inside current grids (seeded) to ``path``; returns grid count."""
    with engine.connect() as conn:
        grids = conn.scalar(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL"))
        rows = conn.execute(
            sa.text(
                """
                SELECT ST_X(p), ST_Y(p) FROM (
                  SELECT (ST_Dump(ST_GeneratePoints(geom, 1, 7))).geom AS p
                  FROM (SELECT geom FROM grids WHERE valid_to IS NULL
                        ORDER BY md5(code) LIMIT :n) AS g) AS s
                """
            ),
            {"n": n},
        ).all()
    path.write_text("".join(f"{lon:.7f} {lat:.7f}\n" for lon, lat in rows))
    return int(grids or 0)


def bench_token(engine: sa.Engine) -> str:
    """A fresh admin token for the run (the user is replaced each time)."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        token = admin_token(session, "bench-intake")
        session.commit()
    return token


def vacuum(engine: sa.Engine) -> None:
    """VACUUM ANALYZE the tables a run writes. Each run inserts and deletes tens of thousands of
    reports; their dead index entries, all in the last 24 hours, slowed the next run's
    duplicate search from ~1 to ~4 ms (measured), so every run starts from a vacuumed table."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("incidents", "incident_events"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def delete_bench_incidents(engine: sa.Engine) -> int:
    """Delete the incidents (and events) this benchmark wrote; returns how many."""
    with engine.begin() as conn:
        # incidents.duplicate_of_id has no index, so the FK check would scan the whole table
        # once per deleted row; no incident refers to these new ones, so skip the triggers and
        # delete the events explicitly (their ON DELETE CASCADE is a trigger too).
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        ids = "SELECT id FROM incidents WHERE reporter_id = :r"
        conn.execute(
            sa.text(f"DELETE FROM incident_events WHERE incident_id IN ({ids})"),
            {"r": REPORTER_ID},
        )
        deleted = conn.execute(
            sa.text("DELETE FROM incidents WHERE reporter_id = :r"), {"r": REPORTER_ID}
        ).rowcount
    return int(deleted)


ALEMBIC_SQL = sa.text("SELECT version_num FROM alembic_version")


def migrate(root: Path, url: str) -> None:
    """Bring the database at ``url`` to the head of the checkout at ``root``, with its code."""
    subprocess.run(
        [sys.executable, "-m", "gis.cli", "db", "migrate"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root), "GIS_DATABASE_URL": url},
        check=True, capture_output=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("GIS_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes, the same for both apps"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        nargs="*",
        default=[100.0, 200.0],
        help="requests/s the clients offer together in paced runs (latency under load); "
        "one paced run per rate",
    )
    parser.add_argument(
        "--bare-database-url",
        help="the database the bare app writes to (default: --database-url); give it a copy "
        "of the same county so that its reports do not grow the service's database and slow "
        "the service's duplicate search",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--baseline-ref",
        help="also serve this git ref (e.g. main) from a temporary worktree, in the same rounds, "
        "and print this checkout's ratio to it; needs --baseline-database-url",
    )
    parser.add_argument(
        "--baseline-database-url",
        help="the database the baseline serves: the same demo county, migrated by the "
        "baseline's own code (it is brought to the baseline's head first)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    if bool(args.baseline_ref) != bool(args.baseline_database_url):
        sys.exit("--baseline-ref and --baseline-database-url go together")

    engine = sa.create_engine(args.database_url)
    engines = [engine]
    if args.baseline_database_url:
        engines.append(sa.create_engine(args.baseline_database_url))
    if args.bare_database_url:
        engines.append(sa.create_engine(args.bare_database_url))
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        points = tmp / "points.txt"
        baseline_root = None
        if args.baseline_ref:
            baseline_root = stack.enter_context(baseline_checkout(args.baseline_ref))
            migrate(baseline_root, args.baseline_database_url)
        for each in engines:
            print(f"cleaned up {delete_bench_incidents(each):,} incidents of an earlier run")
            vacuum(each)
            with each.connect() as conn:
                print(
                    f"  {each.url.database}: schema {conn.scalar(ALEMBIC_SQL)}, "
                    f"{conn.scalar(sa.text('SELECT count(*) FROM incident_events')):,} events"
                )
        grids = sample_points(engine, args.points, points)
        with engine.connect() as conn:
            units = conn.scalar(sa.text("SELECT count(*) FROM responder_units"))
            incidents = conn.scalar(sa.text("SELECT count(*) FROM incidents"))
            categories = conn.scalars(sa.text("SELECT code FROM categories ORDER BY code")).all()
        if grids == 0 or not categories:
            sys.exit("the database has no grids or no categories: load the demo county first")
        print(
            f"database: {grids:,} grids, {units:,} units, {incidents:,} incidents; "
            f"{args.points} points; wrk -c{args.connections} -t{args.threads} "
            f"{args.seconds}s (+{args.warmup}s warm-up); {args.workers} uvicorn worker(s) per "
            f"app; {os.cpu_count()} cores"
        )
        os.environ["BENCH_POINTS"] = str(points)
        tokens = {"bare asyncpg": bench_token(engine)}
        tokens["service"] = tokens["bare asyncpg"]
        os.environ["BENCH_CATEGORIES"] = ",".join(categories)
        service = stack.enter_context(
            serve({"GIS_DATABASE_URL": args.database_url}, workers=args.workers, ready_s=READY_S)
        )
        bare = stack.enter_context(
            serve(
                {"BENCH_DATABASE_URL": args.bare_database_url or args.database_url},
                app="bench.intake.bare:create_app",
                workers=args.workers,
                ready_s=READY_S,
            )
        )
        targets: list[tuple[str, Server]] = [("bare asyncpg", bare), ("service", service)]
        if baseline_root is not None:
            tokens[args.baseline_ref] = bench_token(engines[1])
            baseline = stack.enter_context(
                serve(
                    {"GIS_DATABASE_URL": args.baseline_database_url},
                    workers=args.workers,
                    root=baseline_root,
                    ready_s=READY_S,
                )
            )
            targets.append((args.baseline_ref, baseline))
        results: list[Result] = []
        try:
            runs = (("POST /incidents", "intake.lua"), ("GET /locate", "locate.lua"))
            # Rounds alternate baseline and service so that load from elsewhere on the machine
            # hits both alike, in the opposite order every other round (the first of a round
            # met a database the previous run had just grown); the CPU time each server process
            # spends per request is the figure least disturbed by such load.
            # Saturated runs measure throughput; at c=32 flat out, latency is queueing (Little's
            # law: mean latency = 32 / throughput). Paced runs measure latency under a steady
            # load the service carries, as a command room would see it.
            for round_ in range(1, args.rounds + 1):
                for endpoint, script in runs:
                    for rate in (0, *args.paced_rate):
                        for target, server in targets if round_ % 2 else targets[::-1]:
                            os.environ["BENCH_TOKEN"] = tokens[target]
                            r = measure(server, script, target, endpoint, args, rate=rate)
                            results.append(r)
                            print(
                                f"  round {round_} {endpoint:16} {r.mode:14} {target:13} "
                                f"{r.requests_per_s:7.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
                                f"p99 {r.p99_ms:7.2f} ms  CPU {r.cpu_ms_per_request:5.2f} "
                                f"ms/req  errors {r.errors}",
                                flush=True,
                            )
        finally:
            for each in engines:
                print(f"cleaned up {delete_bench_incidents(each):,} benchmark incidents")
                vacuum(each)
    for each in engines:
        each.dispose()
    print()
    targets = {"POST /incidents": 0.5, "GET /locate": 0.7}
    for endpoint, target in targets.items():

        def median(
            name: str, field: str, endpoint: str = endpoint, mode: str = "saturated"
        ) -> float:
            values = [
                getattr(r, field)
                for r in results
                if (r.endpoint, r.target, r.mode) == (endpoint, name, mode)
            ]
            return statistics.median(values) if values else math.nan

        rps = median("service", "requests_per_s")
        base_rps = median("bare asyncpg", "requests_per_s")
        cpu_ratio = median("bare asyncpg", "cpu_ms_per_request") / median(
            "service", "cpu_ms_per_request"
        )
        ratio = rps / base_rps
        verdict = "meets" if ratio >= target else "MISSES"
        print(
            f"{endpoint}: median service {rps:.0f} req/s vs baseline {base_rps:.0f} -> ratio "
            f"{ratio:.2f} ({verdict} >= {target}); CPU-per-request ratio {cpu_ratio:.2f}\n"
            f"  saturated (c={args.connections} flat out): service p50 "
            f"{median('service', 'p50_ms'):.1f} ms, p99 {median('service', 'p99_ms'):.1f} ms; "
            f"baseline p99 {median('bare asyncpg', 'p99_ms'):.1f} ms"
        )
        for rate in args.paced_rate:
            mode = f"paced {rate:g}/s"
            p99 = median("service", "p99_ms", mode=mode)
            print(
                f"  {mode} offered: service {median('service', 'requests_per_s', mode=mode):.0f} "
                f"req/s, p50 {median('service', 'p50_ms', mode=mode):.1f} ms, p99 {p99:.1f} ms "
                f"({'meets' if p99 < 50 else 'MISSES'} < 50 ms); baseline p50 "
                f"{median('bare asyncpg', 'p50_ms', mode=mode):.1f} ms, p99 "
                f"{median('bare asyncpg', 'p99_ms', mode=mode):.1f} ms"
            )
        if args.baseline_ref:
            ref_rps = median(args.baseline_ref, "requests_per_s")
            ref_cpu = median(args.baseline_ref, "cpu_ms_per_request")
            print(
                f"  vs {args.baseline_ref} (same rounds): {ref_rps:.0f} req/s -> ratio this / "
                f"{args.baseline_ref} {rps / ref_rps:.2f}; CPU per request "
                f"{median('service', 'cpu_ms_per_request'):.2f} vs {ref_cpu:.2f} ms; p99 "
                f"{median('service', 'p99_ms'):.1f} vs {median(args.baseline_ref, 'p99_ms'):.1f} ms"
            )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
