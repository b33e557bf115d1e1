"""Command-room map at 10k, 100k and 1M incidents: aggregated in PostGIS vs every point shipped.

    python -m bench.maps --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_maps

For each size N it makes (once, kept for later runs) a synthetic town of ~10 x 9 km with 40 grids
and N cases over one year, clustered around hot spots like real case maps, 99 % closed, inserted
in report-time order as a live system appends them, then times:

* service: ``command_room_data`` (binning, grid figures, capped markers in SQL) + the Folium
  build + ``render`` — the whole page as ``/maps/command-room`` serves it, for the full year
  (the worst case) and for the default 30 days;
* baseline: the naive page — every point of the period pulled out of PostGIS into
  ``folium.plugins.HeatMap`` and rendered.

It prints medians (and the worst of the repeats) of build time and HTML size, and the ratios
baseline / service measured in the same run. ``--markdown FILE`` writes the table for the docs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import folium
import sqlalchemy as sa
from folium import plugins
from sqlalchemy.orm import Session

from gis import provision
from gis.db import make_engine
from gis.layers.categories import load_catalog
from gis.maps import build_command_room_map, render
from gis.migrations.api import upgrade
from gis.services.mapdata import command_room_data
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_maps"
COUNTY = "970100"
# The town's box: ~9.7 km x 8.9 km at Quzhou's latitude, cut into 8 x 5 grids.
MINX, MINY, MAXX, MAXY = 118.80, 28.90, 118.90, 28.98
COLS, ROWS = 8, 5
END = datetime(2026, 11, 1, tzinfo=UTC)
# Towns report ~99 % of cases closed; the rest are open, most of them overdue here.
CLOSED_SHARE = 0.99
# Bumped when the generated data changes, so stale towns are reloaded.
DATA_VERSION = "Bench v2"
YEAR = timedelta(days=365)


def town_code(size: int) -> str:
    """One synthetic town per size, so sizes can be compared in one database."""
    return f"9701{len(str(size)):02d}000000"


@dataclass
class Measure:
    """Medians and worst case of repeated builds."""

    seconds: float
    worst: float
    size_bytes: int


def _repeat(fn: Callable[[], str], repeats: int) -> Measure:
    times: list[float] = []
    size = 0
    for _ in range(repeats):
        started = time.perf_counter()
        html = fn()
        times.append(time.perf_counter() - started)
        size = len(html.encode("utf-8"))
    return Measure(statistics.median(times), max(times), size)


def prepare(url: str, sizes: list[int]) -> bool:
    """Create and migrate the database; returns True when the towns must be (re)loaded.

    A stale database is dropped and made anew rather than cleaned: deleting cases is slow while
    ``incidents.duplicate_of_id`` (a self-reference) has no index.
    """
    provision.up(url, log=lambda _: None)
    if all(_town_is_current(url, size) for size in sizes):
        return False
    provision.drop_database(url, log=lambda _: None)
    provision.up(url, log=lambda _: None)
    upgrade(url)
    return True


def _town_is_current(url: str, size: int) -> bool:
    """True when the town of ``size`` holds exactly that many cases of this data version."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            town = town_code(size)
            version = connection.execute(
                sa.text("SELECT name_en FROM regions WHERE code = :t"), {"t": town}
            ).scalar_one_or_none()
            have = connection.execute(
                sa.text("SELECT count(*) FROM incidents WHERE town_code = :t"), {"t": town}
            ).scalar_one()
            return bool(version == DATA_VERSION and have == size)
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _load_town(session: Session, size: int) -> None:
    """Create the town with ``size`` cases (into a fresh database: inserts only)."""
    town = town_code(size)
    print(f"loading town {town} with {size:,} incidents…", file=sys.stderr, flush=True)
    params = {
        "town": town,
        "county": COUNTY,
        "minx": MINX,
        "miny": MINY,
        "maxx": MAXX,
        "maxy": MAXY,
        "cols": COLS,
        "rows": ROWS,
        "n": size,
        "end": END,
        "closed_share": CLOSED_SHARE,
        "name_en": DATA_VERSION,
    }
    statements = [
        """INSERT INTO regions (code, name, name_en, level, geom)
           VALUES (:county, '基准县', 'Bench county', 'county',
                   ST_Multi(ST_MakeEnvelope(118.0, 28.0, 120.0, 30.0, 4326)))
           ON CONFLICT (code) DO NOTHING""",
        """INSERT INTO regions (code, name, name_en, level, parent_code, geom)
           VALUES (:town, '基准镇', :name_en, 'town', :county,
                   ST_Multi(ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)))""",
        # Grids reference a village; the bench town is its own village's parent.
        """INSERT INTO regions (code, name, level, parent_code, geom)
           VALUES (left(:town, 9) || '001', '基准村', 'village', :town,
                   ST_Multi(ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)))
           ON CONFLICT (code) DO NOTHING""",
        """INSERT INTO grids (code, version, name, village_code, town_code, households,
                              population, geom, valid_from, created_by, created_at)
           SELECT right(:town, 8) || '-' || r || c, 1, 'grid ' || r || c,
                  left(:town, 9) || '001', :town, 300 + 37 * (r * :cols + c) % 500, 900,
                  ST_Multi(ST_MakeEnvelope(
                      :minx + c * (:maxx - :minx) / :cols, :miny + r * (:maxy - :miny) / :rows,
                      :minx + (c + 1) * (:maxx - :minx) / :cols,
                      :miny + (r + 1) * (:maxy - :miny) / :rows, 4326)),
                  '2020-01-01', 'bench', now()
           FROM generate_series(0, :rows - 1) r, generate_series(0, :cols - 1) c""",
        "SELECT setseed(0.42)",
        # 70 % of cases around 12 hot spots (sd ~300 m), 30 % anywhere in the town; one year.
        """INSERT INTO incidents (category_code, platform, status, reporter_kind, geom,
                                  source_lon, source_lat, location_quality, grid_code,
                                  town_code, reported_at, due_at, closed_at, description,
                                  photos, source_crs, updated_at)
           WITH cats AS (
             SELECT array_agg(code ORDER BY code) AS codes,
                    array_agg(platform ORDER BY code) AS platforms, count(*)::int AS n
             FROM categories
           )
           SELECT cats.codes[1 + p.i % cats.n], cats.platforms[1 + p.i % cats.n],
                  CASE WHEN p.closed THEN 'closed' ELSE 'assigned' END,
                  'grid_member', ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), p.lon, p.lat,
                  'inside',
                  right(:town, 8) || '-'
                    || least(:rows - 1, floor((p.lat - :miny) / (:maxy - :miny) * :rows))::int
                    || least(:cols - 1, floor((p.lon - :minx) / (:maxx - :minx) * :cols))::int,
                  :town, p.reported, p.reported + interval '72 hours',
                  CASE WHEN p.closed THEN p.reported + p.hours * interval '1 hour' END,
                  '', '[]'::jsonb, 'EPSG:4326', :end
           FROM (
             SELECT i,
                    least(:maxx - 1e-7, greatest(:minx, CASE WHEN h < 12
                      THEN :minx + (0.1 + 0.8 * ((h * 0.618) % 1)) * (:maxx - :minx)
                           + 0.0031 * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2)
                      ELSE :minx + u3 * (:maxx - :minx) END)) AS lon,
                    least(:maxy - 1e-7, greatest(:miny, CASE WHEN h < 12
                      THEN :miny + (0.1 + 0.8 * ((h * 0.377) % 1)) * (:maxy - :miny)
                           + 0.0027 * sqrt(-2 * ln(u1)) * sin(2 * pi() * u2)
                      ELSE :miny + u4 * (:maxy - :miny) END)) AS lat,
                    :end - u5 * interval '365 days' AS reported,
                    u6 < :closed_share AS closed,
                    1 + u7 * 110 AS hours
             FROM (
               SELECT i, floor(random() * 17.14)::int AS h, 1 - random() AS u1, random() AS u2,
                      random() AS u3, random() AS u4, random() AS u5, random() AS u6,
                      random() AS u7
               FROM generate_series(1, :n) AS i
             ) AS r
           ) AS p, cats
           ORDER BY p.reported""",
        "ANALYZE incidents",
    ]
    for statement in statements:
        session.execute(sa.text(statement), params)
    session.commit()


def service_page(session: Session, town: str, since: datetime, until: datetime) -> str:
    """What /maps/command-room serves: SQL aggregates, then the Folium build and render."""
    data = command_room_data(session, town_code=town, since=since, until=until, now=until)
    return render(build_command_room_map(data))


def naive_page(session: Session, town: str, since: datetime, until: datetime) -> str:
    """The baseline: every point of the period into HeatMap."""
    rows = session.execute(
        sa.text(
            "SELECT ST_Y(geom), ST_X(geom) FROM incidents "
            "WHERE town_code = :t AND reported_at >= :s AND reported_at < :u"
        ),
        {"t": town, "s": since, "u": until},
    ).all()
    minx, miny, maxx, maxy = session.execute(
        sa.text(
            "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
            "FROM regions WHERE code = :t"
        ),
        {"t": town},
    ).one()
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13)
    plugins.HeatMap([[lat, lon] for lat, lon in rows], name="heat").add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return str(m.get_root().render())


def _existing_towns(session: Session, codes: list[str]) -> list[tuple[str, int, datetime]]:
    """(town, cases, end of its history) for towns of an existing database, e.g. the x100 demo."""
    found = []
    for code in codes:
        n, last = session.execute(
            sa.text("SELECT count(*), max(reported_at) FROM incidents WHERE town_code = :t"),
            {"t": code},
        ).one()
        if not n:
            raise SystemExit(f"town {code} has no cases in this database")
        found.append((code, int(n), last + timedelta(seconds=1)))
    return found


def main() -> None:
    """Run the benchmark and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("GIS_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--town",
        action="append",
        help="Measure this town of an existing database (e.g. gis_bench, the x100 demo) "
        "instead of synthetic towns; repeatable",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="Write the results table here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    reload = False if args.town else prepare(args.database_url, sizes)
    engine = make_engine(
        Settings(  # type: ignore[call-arg]
            database_url=args.database_url, db_statement_timeout_ms=600_000, _env_file=None
        )
    )
    lines = [
        "| town | incidents | period | service median s (worst) | service HTML "
        "| baseline median s | baseline HTML | time ratio | size ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    with Session(engine) as session:
        if args.town:
            towns = _existing_towns(session, args.town)
        else:
            load_catalog(session)
            session.commit()
            if reload:
                for size in sizes:
                    _load_town(session, size)
            towns = [(town_code(size), size, END) for size in sizes]
        # Warm up imports, template compilation and the connection: not part of any figure.
        service_page(session, towns[0][0], towns[0][2] - timedelta(days=30), towns[0][2])
        for town, size, end in towns:
            for label, since in (("365 days", end - YEAR), ("30 days", end - timedelta(days=30))):
                service = _repeat(
                    lambda t=town, s=since, u=end: service_page(session, t, s, u), args.repeats
                )
                baseline = _repeat(
                    lambda t=town, s=since, u=end: naive_page(session, t, s, u),
                    args.baseline_repeats,
                )
                line = (
                    f"| {town} | {size:,} | {label} "
                    f"| {service.seconds:.2f} ({service.worst:.2f}) "
                    f"| {service.size_bytes / 1e6:.2f} MB | {baseline.seconds:.2f} "
                    f"| {baseline.size_bytes / 1e6:.1f} MB "
                    f"| {baseline.seconds / service.seconds:.1f}x "
                    f"| {baseline.size_bytes / service.size_bytes:.0f}x |"
                )
                lines.append(line)
                print(line, flush=True)
    engine.dispose()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}")
    if args.markdown:
        args.markdown.write_text("\n".join([*lines, "", f"Machine: {machine}", ""]), "utf-8")


if __name__ == "__main__":
    main()
