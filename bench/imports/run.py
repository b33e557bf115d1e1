"""A camera ledger of 10,000 rows in one .xlsx: the checked import against a plain COPY.

    python -m bench.imports --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_onboard

On its own database (created and migrated if needed), with one 20 km × 18 km town, a village
and a road every kilometre both ways, in the same run and for each round:

- read: ``read_table`` of the .xlsx (openpyxl, read-only);
- dry run: read + ``plan_import`` (coordinates, towns, the GCJ-02 check, every row checked);
- commit: dry run + ``commit_import`` + COMMIT (views computed, the run recorded);
- re-run: the same file again, all unchanged;
- baseline: ``COPY`` of the same rows, views already computed, into ``cameras``.

The cameras are deleted between rounds. Prints medians and the ratios against the COPY.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from openpyxl import Workbook
from shapely.geometry import LineString, MultiPolygon, box
from sqlalchemy.orm import Session

from gis import provision
from gis.db import make_engine
from gis.layers.cameras import CameraKind
from gis.layers.categories import load_catalog
from gis.migrations.api import upgrade
from gis.services.cameras import view_polygon
from gis.services.ledger_tables import read_table
from gis.services.ledgers import LedgerKind, commit_import, plan_import
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_onboard"
TOWN, VILLAGE = "330899301000", "330899301001"
W, S = 121.0, 30.0
E, N = W + 0.2, S + 0.16
PREFIX = "BENCH-"
HEADER = ["编号", "名称", "类型", "朝向", "视角", "距离", "经度", "纬度"]


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _setup(engine: sa.Engine) -> None:
    with Session(engine) as session:
        load_catalog(session)
        session.execute(sa.text("DELETE FROM cameras WHERE code LIKE 'BENCH-%'"))
        if session.get_bind() is not None and not session.scalar(
            sa.text("SELECT EXISTS (SELECT 1 FROM regions WHERE code = :c)"), {"c": TOWN}
        ):
            from gis.layers.grids import Grid
            from gis.layers.regions import Region
            from gis.layers.roads import Road

            geom = from_shape(MultiPolygon([box(W, S, E, N)]), srid=4326)
            session.add(Region(code=TOWN, name="基准镇", level="town", geom=geom))
            session.flush()
            session.add(
                Region(code=VILLAGE, name="基准村", level="village", parent_code=TOWN, geom=geom)
            )
            session.flush()
            session.add(
                Grid(
                    code=f"{VILLAGE}-01",
                    name="一网格",
                    village_code=VILLAGE,
                    town_code=TOWN,
                    geom=geom,
                )
            )
            lines = [LineString([(W, lat), (E, lat)]) for lat in np.arange(S, N, 0.009)]
            lines += [LineString([(lon, S), (lon, N)]) for lon in np.arange(W, E, 0.0104)]
            for index, line in enumerate(lines):
                session.add(
                    Road(
                        id=9_300_000 + index,
                        speed_kmh=40.0,
                        length_m=line.length * 100_000,
                        geom=from_shape(line, srid=4326),
                    )
                )
        session.commit()


def _ledger(n: int, seed: int = 21) -> tuple[bytes, list[list[object]]]:
    """An .xlsx of ``n`` cameras on the roads, and its rows."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for i in range(n):
        if i % 2:
            lon, lat = (
                float(rng.uniform(W + 0.001, E - 0.001)),
                S + 0.009 * int(rng.integers(1, 17)),
            )
        else:
            lon, lat = (
                W + 0.0104 * int(rng.integers(1, 19)),
                float(rng.uniform(S + 0.001, N - 0.001)),
            )
        kind = "球机" if i % 5 == 0 else "枪机"
        rows.append([f"{PREFIX}{i:05d}", f"路口{i}", kind, (i * 7) % 360, None, None, lon, lat])
    book = Workbook(write_only=True)
    ws = book.create_sheet("天眼")
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), rows


def _copy(engine: sa.Engine, rows: list[list[object]]) -> float:
    """COPY the same cameras, views computed beforehand (not timed), into ``cameras``."""
    lines = []
    for code, name, kind_zh, heading, _, _, lon, lat in rows:
        kind = CameraKind.DOME if kind_zh == "球机" else CameraKind.FIXED
        fov, range_m = (360.0, 60.0) if kind is CameraKind.DOME else (60.0, 100.0)
        view = view_polygon(kind, float(lon), float(lat), float(heading), fov, range_m)  # type: ignore[arg-type]
        lines.append(
            f"{code}\t{name}\t{kind.value}\tonline\t{heading}\t{fov}\t{range_m}\t{TOWN}\t"
            f"SRID=4326;POINT({lon} {lat})\tSRID=4326;{view.wkt}\t2026-12-06T00:00:00Z\n"
        )
    data = "".join(lines)
    raw = engine.raw_connection()
    try:
        started = time.perf_counter()
        cursor = raw.cursor()
        with cursor.copy(  # type: ignore[attr-defined]
            "COPY cameras (code, name, kind, status, heading_deg, fov_deg, range_m, town_code, "
            "geom, view, updated_at) FROM STDIN"
        ) as copy:
            copy.write(data)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def _delete(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM cameras WHERE code LIKE 'BENCH-%'"))
        connection.execute(sa.text("DELETE FROM imports WHERE filename = 'bench.xlsx'"))


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    provision.up(args.database_url, log=lambda _: None)
    upgrade(args.database_url)
    settings = Settings(database_url=args.database_url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    _setup(engine)
    data, rows = _ledger(args.cameras)
    print(f"{args.cameras} cameras, .xlsx of {len(data) / 1e6:.2f} MB")
    times: dict[str, list[float]] = {k: [] for k in ("read", "dry run", "commit", "re-run", "COPY")}
    for _ in range(args.repeat):
        _delete(engine)
        times["read"].append(_timed(lambda: read_table(data, "bench.xlsx")))

        def dry() -> None:
            with Session(engine) as session:
                plan = plan_import(session, LedgerKind.CAMERAS, read_table(data, "bench.xlsx"))
                assert not plan.errors, plan.errors[:3]
                session.rollback()

        times["dry run"].append(_timed(dry))

        def commit() -> None:
            with Session(engine) as session:
                plan = plan_import(session, LedgerKind.CAMERAS, read_table(data, "bench.xlsx"))
                result = commit_import(
                    session, plan, actor="bench", filename="bench.xlsx", sha256="0" * 64
                )
                assert result.summary["added"] == len(rows), result.summary
                session.commit()

        times["commit"].append(_timed(commit))

        def rerun() -> None:
            with Session(engine) as session:
                plan = plan_import(session, LedgerKind.CAMERAS, read_table(data, "bench.xlsx"))
                assert len(plan.unchanged) == len(rows)
                session.rollback()

        times["re-run"].append(_timed(rerun))
        _delete(engine)
        times["COPY"].append(_copy(engine, rows))
        _delete(engine)
    engine.dispose()
    copy = statistics.median(times["COPY"])
    print(f"{'step':<8} {'median s':>9} {'runs':>24} {'× COPY':>8}")
    for step, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{step:<8} {median:>9.2f} {runs:>24} {median / copy:>8.1f}")
