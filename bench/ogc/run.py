"""Our OGC API (/ogc) against tipg, the reference OGC Features + Tiles server for PostGIS, on the
same database, in one run: grid vector tiles at z10, z12 and z14 over the busiest town, and
``items?limit=100&bbox=…`` on grids and incidents. Both run under the same uvicorn with the same
worker count; wrk drives each at ``--connections`` for ``--seconds`` and the throughput ratio
(ours / tipg) and both p99 latencies are printed as a Markdown table.

    python -m bench.ogc.run --database-url postgresql+psycopg://…/gis_bench_ogc \\
        --seconds 10 --connections 32

tipg comes with the ``bench`` extra (``pip install -e .[bench]``) and runs under this python
unless ``--tipg-python`` names another; without it only our numbers are printed. The database
must hold the demo county (``gis sample load --scale 100`` for the issue's numbers).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import morecantile
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.server import admin_token, serve
from gis.db import make_engine
from gis.layers.incidents import Incident
from gis.layers.regions import Region
from gis.settings import Settings

TMS = morecantile.tms.get("WebMercatorQuad")
GRID_PROPERTIES = "code,name,village_code,town_code"


@dataclass(frozen=True)
class Row:
    """One benchmark row: what is asked of each server."""

    name: str
    ours: str
    tipg: str
    auth: bool = False


@dataclass(frozen=True)
class Result:
    """What wrk measured."""

    rps: float
    p99_ms: float
    errors: int


def prepare(url: str) -> tuple[list[Row], str]:
    """The rows over the busiest town, and an admin token (incidents need one here)."""
    engine = make_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    with Session(engine) as session:
        town = session.scalar(
            sa.select(Incident.town_code)
            .group_by(Incident.town_code)
            .order_by(sa.func.count().desc())
            .limit(1)
        )
        lon, lat = session.execute(
            sa.select(
                sa.func.ST_X(sa.func.ST_PointOnSurface(Region.geom)),
                sa.func.ST_Y(sa.func.ST_PointOnSurface(Region.geom)),
            ).where(Region.code == town)
        ).one()
        token = admin_token(session, "bench-ogc")
        session.commit()
    engine.dispose()
    # A 0.02° box (about 2 km) in the middle of the town.
    bbox = f"{lon - 0.01:.5f},{lat - 0.01:.5f},{lon + 0.01:.5f},{lat + 0.01:.5f}"
    rows = []
    for z in (10, 12, 14):
        t = TMS.tile(lon, lat, z)
        path = f"tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
        rows.append(
            Row(
                f"grid tile z{z}",
                f"/ogc/collections/grids/{path}",
                f"/collections/public.grids/{path}?properties={GRID_PROPERTIES}",
            )
        )
    for layer in ("grids", "incidents"):
        query = f"items?limit=100&bbox={bbox}"
        rows.append(
            Row(
                f"{layer} items limit=100 bbox",
                f"/ogc/collections/{layer}/{query}",
                f"/collections/public.{layer}/{query}",
                auth=layer == "incidents",
            )
        )
    return rows, token


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> Result:
    """Throughput and p99 of ``url`` under wrk."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Result(rps, float(p99.group(1)) * scale, failed)


def median(runs: list[Result]) -> Result:
    """The median throughput and p99 of several runs, and all their errors."""
    return Result(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
    )


def check(base: str, row_path: str, headers: dict[str, str]) -> int:
    """The size of one answer, after checking it is a 200 (or 204 for an empty tile)."""
    response = httpx.get(base + row_path, headers=headers, timeout=60)
    if response.status_code not in (200, 204):
        raise RuntimeError(f"{base}{row_path}: {response.status_code} {response.text[:200]}")
    return len(response.content)


def main() -> None:
    """Run every row against both servers and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--tipg-python",
        default=sys.executable if importlib.util.find_spec("tipg") else None,
        help="the python that runs tipg (default: this one, with the bench extra)",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each row this many times on both servers, alternating, and report the "
        "medians (the machine's load moves single runs by 2x)",
    )
    parser.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for our server (repeatable)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    rows, token = prepare(args.database_url)
    results: dict[str, dict[str, list[Result]]] = {
        row.name: {"ours": [], "tipg": []} for row in rows
    }
    sizes: dict[str, dict[str, int]] = {row.name: {} for row in rows}
    bearer = {"Authorization": f"Bearer {token}"}
    # No numba warm-up: it compiles the hotspot kernels for ~15 s of CPU per worker right after
    # start, i.e. during the first rows (z10 was measured against it); tipg has nothing like it.
    env = {"GIS_DATABASE_URL": args.database_url, "GIS_ANALYTICS_WARMUP": "false"}
    env.update(item.split("=", 1) for item in args.ours_env)
    load_before = os.getloadavg()[0]
    with ExitStack() as servers:
        ours = servers.enter_context(serve(env, workers=args.workers, ready_s=180))
        tipg = None
        if args.tipg_python:
            plain = args.database_url.replace("postgresql+psycopg://", "postgresql://")
            tipg = servers.enter_context(
                serve(
                    {"DATABASE_URL": plain, "TIPG_DB_SCHEMAS": '["public"]'},
                    app="tipg.main:app",
                    factory=False,
                    python=args.tipg_python,
                    workers=args.workers,
                    ready_s=180,
                )
            )
        # Both servers up, each row measured on one then the other back to back (the idle one
        # costs nothing): on a machine whose load moves by 2x within minutes, a row's ratio then
        # compares like with like.
        for row in rows:
            headers = bearer if row.auth else {}
            sizes[row.name]["ours"] = check(ours.base, row.ours, headers)
            if tipg is not None:
                sizes[row.name]["tipg"] = check(tipg.base, row.tipg, {})
            for _ in range(args.repeat):
                results[row.name]["ours"].append(
                    wrk(ours.base + row.ours, args.seconds, args.connections, headers)
                )
                if tipg is not None:
                    results[row.name]["tipg"].append(
                        wrk(tipg.base + row.tipg, args.seconds, args.connections, {})
                    )
    print(
        f"\nc={args.connections}, {args.seconds} s per row, {args.workers} worker(s) each, "
        f"median of {args.repeat} run(s) per row and server, load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after\n\n"
        "| row | ours req/s | tipg req/s | ours / tipg | ours p99 ms | tipg p99 ms "
        "| bytes ours / tipg | errors ours / tipg |\n|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        mine = median(results[row.name]["ours"])
        theirs = median(results[row.name]["tipg"]) if results[row.name]["tipg"] else None
        ratio = f"{mine.rps / theirs.rps:.2f}×" if theirs and theirs.rps else "–"
        print(
            f"| {row.name} | {mine.rps:.0f} | {theirs.rps:.0f} | {ratio} | {mine.p99_ms:.1f} "
            f"| {theirs.p99_ms:.1f} | {sizes[row.name]['ours']} / {sizes[row.name]['tipg']} "
            f"| {mine.errors} / {theirs.errors} |"
            if theirs
            else f"| {row.name} | {mine.rps:.0f} | – | – | {mine.p99_ms:.1f} | – "
            f"| {sizes[row.name]['ours']} | {mine.errors} |"
        )


if __name__ == "__main__":
    main()
