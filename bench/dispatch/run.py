"""Nearest responders by distance and by drive time against the bare KNN SQL, in one run.

    python -m bench.dispatch --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench

On one connection, one query at a time, for a bounded time per case, from seeded random points
of the current grids (each grid's point on surface), k=5, any status:

- ``bare KNN SQL``: the baseline — one psycopg statement, ``ORDER BY geom::geography <-> point``
  with the geodesic distance, nothing else;
- ``nearest by distance``: ``gis.services.dispatch.nearest_responders`` (SQLAlchemy session,
  KNN candidates re-ranked by the spheroid distance, ORM objects);
- ``nearest by drive time``: the same with ``by=drive_time`` (30 candidates snapped to the
  road network and routed with pgRouting);
- ``drive time, routing only``: ``gis.services.routing.drive_times`` for the same 20 candidates
  (the share of the cost that is pgRouting).

Prints queries/s, median and p99 latency and each case's median as a ratio of the baseline's.
Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench"
K = 5

BARE_KNN = """
SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography)
FROM responder_units
ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
LIMIT %(k)s
"""


@dataclass
class Result:
    """One case's measurements."""

    case: str
    queries: int
    queries_per_s: float
    median_ms: float
    p99_ms: float
    ratio_to_baseline: float = 1.0


def measure(
    case: str, points: list[tuple[float, float]], run: Callable[..., object], seconds: float
) -> Result:
    """Call ``run(lon, lat)`` over the points (cycling) for about ``seconds``; time each call."""
    for lon, lat in points[:5]:  # warm caches and plans
        run(lon, lat)
    times: list[float] = []
    started = time.perf_counter()
    index = 0
    while time.perf_counter() - started < seconds:
        lon, lat = points[index % len(points)]
        index += 1
        t0 = time.perf_counter()
        run(lon, lat)
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return Result(
        case, len(times), len(times) / elapsed, statistics.median(times) * 1000, p99 * 1000
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table (and JSON with --json)."""
    from gis.db import make_engine
    from gis.layers.units import nearest_units
    from gis.services.dispatch import RankBy, nearest_responders
    from gis.services.routing import RouteOptions, drive_times
    from gis.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=5.0, help="Per case (default 5)")
    parser.add_argument("--points", type=int, default=500, help="Random query points")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="Also print the results as JSON")
    args = parser.parse_args(argv)

    settings = Settings(database_url=args.database_url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    options = RouteOptions.from_settings(settings)
    with engine.connect() as connection:
        sizes = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("grids", "responder_units", "roads")
        }
        grid_points = connection.execute(
            sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                "WHERE valid_to IS NULL) s"
            )
        ).all()
    if not grid_points or not sizes["responder_units"]:
        raise SystemExit(f"{args.database_url}: no grids or units; load the demo (gis sample load)")
    rng = random.Random(args.seed)
    points = [
        (float(x), float(y)) for x, y in rng.sample(grid_points, min(args.points, len(grid_points)))
    ]
    print(
        f"database: {sizes['grids']} grids, {sizes['responder_units']} units, "
        f"{sizes['roads']} road segments; {len(points)} query points, {args.seconds:g} s per case"
    )

    raw_url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    results: list[Result] = []
    with psycopg.connect(raw_url) as raw:

        def bare(lon: float, lat: float) -> object:
            return raw.execute(BARE_KNN, {"lon": lon, "lat": lat, "k": K}).fetchall()

        results.append(measure("bare KNN SQL (geography), psycopg", points, bare, args.seconds))

    with Session(engine) as session:

        def by_distance(lon: float, lat: float) -> object:
            return nearest_responders(session, lon=lon, lat=lat, k=K, available_only=False)

        def by_drive_time(lon: float, lat: float) -> object:
            return nearest_responders(
                session,
                lon=lon,
                lat=lat,
                k=K,
                available_only=False,
                by=RankBy.DRIVE_TIME,
                options=options,
            )

        candidates = {
            point: [
                unit.id for unit, _ in nearest_units(session, *point, k=20, available_only=False)
            ]
            for point in points
        }

        def routing_only(lon: float, lat: float) -> object:
            return drive_times(session, lon, lat, candidates[(lon, lat)], options=options)

        results.append(measure("nearest by distance (service)", points, by_distance, args.seconds))
        results.append(
            measure("nearest by drive time (service)", points, by_drive_time, args.seconds)
        )
        results.append(
            measure("drive time, routing only (20 units)", points, routing_only, args.seconds)
        )
        session.rollback()
    engine.dispose()

    baseline = results[0].median_ms
    for result in results:
        result.ratio_to_baseline = result.median_ms / baseline
    print(f"{'case':44} {'q/s':>8} {'median ms':>10} {'p99 ms':>8} {'× baseline':>11}")
    for r in results:
        print(
            f"{r.case:44} {r.queries_per_s:8.1f} {r.median_ms:10.2f} {r.p99_ms:8.2f} "
            f"{r.ratio_to_baseline:11.1f}"
        )
    if args.json:
        print(json.dumps({"sizes": sizes, "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    main()
