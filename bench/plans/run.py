"""Benchmark of the planner tools: bulk re-assignment after a county reload, and a village redraw.

    python -m bench.plans --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_plans

1. **Bulk re-assignment** (``gis.services.reassign``): every open case re-assigned to the grids in
   force after a county-wide reload, write-back included (keyed UPDATE + one event per case whose
   grid code changes). Baseline, on the same data in the same run: pull the cases and grids
   into geopandas, ``sjoin`` (covered_by, lowest code on ties, nearest within the snap distance for
   the rest), COPY the result back and run the *same* write-back. Ratio = baseline / service
   (≥ 1.0: the set-based SQL is at least as fast). Every run is rolled back, so runs repeat.
2. **Village redraw**: ``create_plan`` (validation, balance, impact) and ``apply_plan`` of a
   4-way split of one 100-grid village, rolled back after each run.

The data are synthetic and regular, generated here by SQL (``--setup``) unless present: a
lattice of villages of 10×10 grids (0.003°, ≈ 300 m, segmentised to ≈ 40 vertices each) around
Quzhou and uniformly random open cases. The reload shifts every grid a quarter cell east, so ~25 %
of cases change grid code, every case changes grid version, and a thin western strip falls
outside (snapped or unassigned).
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis import provision
from gis.db import make_engine
from gis.layers.categories import load_catalog
from gis.migrations.api import upgrade
from gis.services.partitions import Month, ensure_partitions
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_plans"
CELL = 0.003  # degrees
X0, Y0 = 118.30, 28.60
COUNTY = "339900"
SNAP_M = 50.0


def _log(message: str) -> None:
    print(message, flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --- data ---------------------------------------------------------------------------------------


def _layout(grids: int) -> tuple[int, int]:
    """Villages across and down for ``grids`` grids (100 per village)."""
    villages = max(1, round(grids / 100))
    across = max(1, round(math.sqrt(villages * 1.6)))
    return across, math.ceil(villages / across)


def setup(engine: sa.Engine, grids: int, cases: int) -> None:
    """Generate the county, villages, grids (v1 then the shifted v2) and open cases."""
    across, down = _layout(grids)
    villages = across * down
    _log(f"setup: {villages} villages × 100 grids, {cases:,} open cases")
    with Session(engine) as session:
        load_catalog(session)
        for table in (
            "incident_events",
            "incidents",
            "incident_keys",
            "grid_changes",
            "plans",
            "grids",
        ):
            session.execute(sa.text(f"TRUNCATE {table} CASCADE"))
        session.execute(sa.text("DELETE FROM regions WHERE code LIKE :p"), {"p": f"{COUNTY}%"})
        params = {"x0": X0, "y0": Y0, "c": CELL, "across": across, "down": down, "county": COUNTY}
        session.execute(
            sa.text(
                """
                INSERT INTO regions (code, name, level, geom)
                VALUES (:county, 'Bench county', 'county', ST_Multi(ST_MakeEnvelope(
                        :x0, :y0, :x0 + :across * 10 * :c, :y0 + :down * 10 * :c, 4326)))
                """
            ),
            params,
        )
        # A town per column of villages.
        session.execute(
            sa.text(
                """
                INSERT INTO regions (code, name, level, parent_code, geom)
                SELECT :county || lpad(i::text, 3, '0') || '000', 'Town ' || i, 'town', :county,
                       ST_Multi(ST_MakeEnvelope(:x0 + i * 10 * :c, :y0,
                                                :x0 + (i + 1) * 10 * :c, :y0 + :down * 10 * :c, 4326))
                  FROM generate_series(0, :across - 1) i
                """  # noqa: E501
            ),
            params,
        )
        session.execute(
            sa.text(
                """
                INSERT INTO regions (code, name, level, parent_code, geom)
                SELECT :county || lpad(i::text, 3, '0') || lpad((j + 1)::text, 3, '0'),
                       'Village ' || i || '-' || j,
                       'village', :county || lpad(i::text, 3, '0') || '000',
                       ST_Multi(ST_MakeEnvelope(:x0 + i * 10 * :c, :y0 + j * 10 * :c,
                                                :x0 + (i + 1) * 10 * :c, :y0 + (j + 1) * 10 * :c, 4326))
                  FROM generate_series(0, :across - 1) i, generate_series(0, :down - 1) j
                """  # noqa: E501
            ),
            params,
        )
        for version, shift, valid in (
            (1, 0.0, "'2026-01-01', '2026-11-01'"),
            (2, CELL / 4, "'2026-11-01', NULL"),
        ):
            session.execute(
                sa.text(
                    f"""
                    INSERT INTO grids (code, version, name, village_code, town_code, households,
                                       population, geom, valid_from, valid_to, created_by, created_at)
                    SELECT v || '-' || lpad(a::text, 2, '0') || lpad(b::text, 2, '0'), {version},
                           'Grid ' || a || '-' || b, v, t, 120, 360,
                           ST_Multi(ST_Segmentize(ST_MakeEnvelope(
                               x + a * :c + :shift, y + b * :c,
                               x + (a + 1) * :c + :shift, y + (b + 1) * :c, 4326), :c / 10)),
                           {valid}, 'bench', now()
                      FROM (SELECT :county || lpad(i::text, 3, '0') || lpad((j + 1)::text, 3, '0') AS v,
                                   :county || lpad(i::text, 3, '0') || '000' AS t,
                                   :x0 + i * 10 * :c AS x, :y0 + j * 10 * :c AS y
                              FROM generate_series(0, :across - 1) i,
                                   generate_series(0, :down - 1) j) vil,
                           generate_series(0, 9) a, generate_series(0, 9) b
                    """  # noqa: E501
                ),
                {**params, "shift": shift},
            )
        session.execute(sa.text("SELECT setseed(0.42)"))
        # Bulk load without the secondary indexes, then rebuild them (this is our own database).
        indexes = session.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents' "
                "AND indexname <> 'pk_incidents' AND indexdef NOT LIKE 'CREATE UNIQUE%'"
            )
        ).all()
        for name, _ in indexes:
            session.execute(sa.text(f"DROP INDEX {name}"))
        # Each case starts assigned to the v1 grid under it, computed from the lattice (the
        # state before the reload), so the setup needs no spatial join.
        session.execute(
            sa.text(
                """
                INSERT INTO incidents (category_code, platform, status, description, reporter_kind,
                       photos, geom, source_crs, source_lon, source_lat, location_quality,
                       reported_at, updated_at, county_code, grid_id, grid_code, village_code,
                       town_code)
                SELECT 'public_security_hazard', 'governance', 'assigned', '', 'citizen', '[]',
                       ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), 'EPSG:4326', p.lon, p.lat,
                       'inside', now() - random() * interval '300 days', now(), :county,
                       g.id, g.code, g.village_code, g.town_code
                  FROM (SELECT lon, lat,
                               :county || lpad((floor((lon - :x0) / (10 * :c)))::int::text, 3, '0')
                               || lpad((floor((lat - :y0) / (10 * :c)) + 1)::int::text, 3, '0')
                               || '-' || lpad((floor((lon - :x0) / :c)::int % 10)::text, 2, '0')
                               || lpad((floor((lat - :y0) / :c)::int % 10)::text, 2, '0') AS code
                          FROM (SELECT :x0 + random() * :across * 10 * :c AS lon,
                                       :y0 + random() * :down * 10 * :c AS lat
                                  FROM generate_series(1, :n)) r) p
                  JOIN grids g ON g.code = p.code AND g.version = 1
                """
            ),
            {**params, "n": cases},
        )
        for _, definition in indexes:
            session.execute(sa.text(definition))
        # The cases' months get their partitions, as `gis partitions ensure --from` would on a
        # server: the rows leave the default partition for their months.
        first, last = session.execute(
            sa.text("SELECT min(reported_at), max(reported_at) FROM incidents")
        ).one()
        ensure_partitions(session, first=Month.of(first), last=Month.of(last))
        session.commit()
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM ANALYZE")
        )


def vacuum(engine: sa.Engine) -> None:
    """Reclaim the rolled-back row versions so every run starts from the same table."""
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(sa.text("VACUUM incidents"))
        autocommit.execute(sa.text("VACUUM incident_events"))


def counts(engine: sa.Engine) -> tuple[int, int]:
    """(current grids, open cases) in the database."""
    with engine.connect() as connection:
        grids = connection.execute(
            sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL")
        ).scalar_one()
        cases = connection.execute(
            sa.text(
                "SELECT count(*) FROM incidents "
                "WHERE status NOT IN ('closed', 'cancelled', 'duplicate')"
            )
        ).scalar_one()
    return int(grids), int(cases)


# --- bulk re-assignment -------------------------------------------------------------------------


def run_service(engine: sa.Engine) -> dict[str, Any]:
    """The set-based join + write-back; rolled back."""
    from gis.services import reassign

    with Session(engine) as session:
        t_join, rows = _timed(lambda: reassign.compute_assignments(session, snap_m=SNAP_M))
        t_write, result = _timed(
            lambda: reassign.write_back(session, actor="bench", reason="bench")
        )
        session.rollback()
    return {
        "join_s": t_join,
        "write_s": t_write,
        "total_s": t_join + t_write,
        "rows": rows,
        "result": result,
    }


def run_geopandas(engine: sa.Engine) -> dict[str, Any]:
    """Pull into geopandas, sjoin, COPY back, same write-back; rolled back."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    from gis.services import reassign

    with Session(engine) as session:
        started = time.perf_counter()
        connection = session.connection()
        cases = pd.read_sql_query(
            sa.text(
                "SELECT id, status, grid_id, grid_code, member_id, "
                "ST_X(geom) AS x, ST_Y(geom) AS y FROM incidents "
                "WHERE status NOT IN ('closed', 'cancelled', 'duplicate')"
            ),
            connection,
        )
        grid_rows = connection.execute(
            sa.text(
                "SELECT id, code, village_code, town_code, ST_AsBinary(geom) AS wkb "
                "FROM grids WHERE valid_to IS NULL"
            )
        ).all()
        grids = gpd.GeoDataFrame(
            {
                "to_grid_id": [r.id for r in grid_rows],
                "to_code": [r.code for r in grid_rows],
                "to_village": [r.village_code for r in grid_rows],
                "to_town": [r.town_code for r in grid_rows],
            },
            geometry=shapely.from_wkb([bytes(r.wkb) for r in grid_rows]),
            crs="EPSG:4326",
        )
        t_pull = time.perf_counter() - started
        points = gpd.GeoDataFrame(
            cases, geometry=gpd.points_from_xy(cases.x, cases.y), crs="EPSG:4326"
        )
        joined = gpd.sjoin(points, grids, how="inner", predicate="covered_by")
        joined = joined.sort_values(["id", "to_code"])
        ties = joined.groupby("id").size()
        joined = joined.drop_duplicates("id", keep="first").set_index("id")
        joined["quality"] = np.where(ties.reindex(joined.index).to_numpy() > 1, "on_edge", "inside")
        rest = points[~points["id"].isin(joined.index)]
        if len(rest):
            # Nearest within the snap distance, in metres (EPSG:4549 CGCS2000 / GK CM 120E).
            near = (
                gpd.sjoin_nearest(
                    rest.to_crs(4549), grids.to_crs(4549), how="left", max_distance=SNAP_M
                )
                .drop_duplicates("id")
                .set_index("id")
            )
            near["quality"] = np.where(near["to_grid_id"].isna(), "outside", "snapped")
            columns = [c for c in joined.columns if c != "geometry"]
            joined = pd.concat([pd.DataFrame(joined[columns]), pd.DataFrame(near[columns])])
        t_join = time.perf_counter() - started - t_pull
        out = pd.DataFrame(
            {
                "incident_id": joined.index.to_numpy(),
                "status": joined["status"].to_numpy(),
                "is_open": True,
                "from_grid_id": joined["grid_id"].astype("Int64").array,
                "from_code": joined["grid_code"].to_numpy(),
                "from_member": joined["member_id"].astype("Int64").array,
                "to_grid_id": joined["to_grid_id"].astype("Int64").array,
                "to_code": joined["to_code"].to_numpy(),
                "to_village": joined["to_village"].to_numpy(),
                "to_town": joined["to_town"].to_numpy(),
                "to_member": pd.array([None] * len(joined), dtype="Int64"),
                "quality": joined["quality"].to_numpy(),
            }
        )
        copy_started = time.perf_counter()
        connection.execute(sa.text("DROP TABLE IF EXISTS reassign_moves"))
        connection.execute(
            sa.text(
                """
                CREATE TEMP TABLE reassign_moves (
                    incident_id bigint, status varchar(20), is_open boolean, from_grid_id integer,
                    from_code varchar(20), from_member integer, to_grid_id integer,
                    to_code varchar(20), to_village varchar(12), to_town varchar(12),
                    to_member integer, quality varchar(10)) ON COMMIT DROP
                """
            )
        )
        buffer = io.StringIO()
        out.to_csv(buffer, index=False, header=False, na_rep="\\N")
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy("COPY reassign_moves FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy,
        ):
            copy.write(buffer.getvalue())
        connection.execute(sa.text("CREATE INDEX ON reassign_moves (incident_id)"))
        connection.execute(sa.text("ANALYZE reassign_moves"))
        t_copy = time.perf_counter() - copy_started
        t_write, result = _timed(
            lambda: reassign.write_back(session, actor="bench", reason="bench")
        )
        total = time.perf_counter() - started
        session.rollback()
    return {
        "pull_s": t_pull,
        "join_s": t_join,
        "copy_s": t_copy,
        "write_s": t_write,
        "total_s": total,
        "rows": len(out),
        "result": result,
    }


def explain_join(engine: sa.Engine) -> str:
    """The plan of the service's join: which side drives it."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                """
                EXPLAIN SELECT DISTINCT ON (i.id) i.id, g.code
                  FROM grids g JOIN incidents i ON ST_Covers(g.geom, i.geom)
                 WHERE g.valid_to IS NULL AND i.status <> ALL(ARRAY['closed','cancelled','duplicate'])
                 ORDER BY i.id, g.code
                """  # noqa: E501
            )
        ).scalars()
        return "\n".join(rows)


# --- village redraw -----------------------------------------------------------------------------


def run_redraw(engine: sa.Engine, settings: Settings) -> dict[str, float]:
    """create_plan + apply_plan of a 4-way split of one village; rolled back."""
    from geoalchemy2.shape import to_shape
    from shapely.geometry import box, mapping

    from gis.layers.plans import PlanScope
    from gis.layers.regions import Region
    from gis.services import planning

    code = f"{COUNTY}001001"
    with Session(engine) as session:
        village = session.get(Region, code)
        assert village is not None, "run --setup first"
        minx, miny, maxx, maxy = to_shape(village.geom).bounds
        midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
        quarters = [
            box(minx, miny, midx, midy),
            box(midx, miny, maxx, midy),
            box(minx, midy, midx, maxy),
            box(midx, midy, maxx, maxy),
        ]
        proposed = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": dict(mapping(q)),
                    "properties": {"code": f"{code}-Q{n}"},
                }
                for n, q in enumerate(quarters)
            ],
        }
        token, _ = planning.scope_version(session, PlanScope.VILLAGE, code)
        t_create, plan = _timed(
            lambda: planning.create_plan(
                session,
                scope_level=PlanScope.VILLAGE,
                scope_code=code,
                proposed=proposed,
                based_on_version=token,
                actor="bench",
                settings=settings,
            )
        )
        assert plan.validation["valid"], plan.validation["issues"][:3]
        t_apply, applied = _timed(
            lambda: planning.apply_plan(session, plan.id, actor="bench", settings=settings)
        )
        moved = applied.result["cases"]["moved"]
        session.rollback()
    return {"create_s": t_create, "apply_s": t_apply, "moved": moved}


# --- main ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--setup", action="store_true", help="(Re)generate the data first")
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings(
        database_url=args.database_url, db_statement_timeout_ms=3_600_000, _env_file=None
    )  # type: ignore[call-arg]
    provision.up(args.database_url, log=_log)
    upgrade(args.database_url)
    engine = make_engine(settings)
    grids, cases = counts(engine)
    if args.setup or grids < args.grids * 0.95 or cases < args.cases:
        elapsed, _ = _timed(lambda: setup(engine, args.grids, args.cases))
        _log(f"setup took {elapsed:.0f} s")
        grids, cases = counts(engine)
    _log(f"data: {grids:,} current grids, {cases:,} open cases")

    redraws = [run_redraw(engine, settings) for _ in range(args.repeat)]
    _log(
        f"village redraw (100 → 4 grids, {redraws[0]['moved']:.0f} open cases move): "
        f"create_plan median {_median([r['create_s'] for r in redraws]) * 1000:.0f} ms, "
        f"apply_plan median {_median([r['apply_s'] for r in redraws]) * 1000:.0f} ms"
    )
    if args.skip_bulk:
        return
    _log("plan of the service join:\n" + explain_join(engine))
    service, baseline = [], []
    for n in range(args.repeat):
        s = run_service(engine)
        vacuum(engine)
        b = run_geopandas(engine)
        vacuum(engine)
        service.append(s)
        baseline.append(b)
        _log(
            f"run {n + 1}: service {s['total_s']:.1f} s (join {s['join_s']:.1f} + write "
            f"{s['write_s']:.1f}); geopandas {b['total_s']:.1f} s (pull {b['pull_s']:.1f} + "
            f"sjoin {b['join_s']:.1f} + copy {b['copy_s']:.1f} + write {b['write_s']:.1f})"
        )
    r = service[0]["result"]
    rb = baseline[0]["result"]
    assert (r.moved, r.snapped, r.unassigned) == (rb.moved, rb.snapped, rb.unassigned), (r, rb)
    s_med = _median([s["total_s"] for s in service])
    b_med = _median([b["total_s"] for b in baseline])
    _log(
        f"re-assign {cases:,} open cases to {grids:,} grids: {r.moved:,} change grid, "
        f"{r.version_only:,} version only, {r.snapped:,} snapped, {r.unassigned:,} outside"
    )
    _log(
        f"service median {s_med:.1f} s ({cases / s_med:,.0f} cases/s, join alone "
        f"{cases / _median([s['join_s'] for s in service]):,.0f}/s); geopandas median "
        f"{b_med:.1f} s ({cases / b_med:,.0f}/s); ratio geopandas/service = {b_med / s_med:.2f}"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
