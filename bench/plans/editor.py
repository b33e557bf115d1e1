"""Benchmark of the planner's editor: one gesture's round trip on a 40-grid village.

    python -m bench.plans.editor --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_editor

The database is loaded with the ×1 demo county if it has no grids; point it at a copy of a
loaded ×100 county (``createdb -T gis_bench gis_bench_editor``: the scaling below applies a
plan, so never at a shared one) to measure the ×100 county's busiest village.

The village is the county's busiest (most cases in 12 months), scaled to 40 grids: its
grids are split by the editor's own split gesture (the largest through its centroid, angles
alternating) and the result applied once, committed (reused by later runs). Then, per round,
a fresh draft takes the gestures a planner makes — split, move a shared vertex, merge, new grid,
rename, undo — each as ``POST /plans/{id}/edits`` through the API (in-process ASGI client:
routing, the service, validation + balance + impact, the JSON reply), and each timed.

Baseline, in the same run: ``POST /plans`` with the same 40 grids — the existing whole-plan
path (validation + balance + impact, no topology work, no history). Ratio = baseline / gesture
(≈ 1: a gesture costs what a plan check costs). The drafts made here are deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis import provision
from gis.api import create_app
from gis.db import make_engine
from gis.layers.grids import Grid
from gis.layers.plans import Plan
from gis.migrations.api import upgrade
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_editor"
TARGET_GRIDS = 40


def _log(message: str) -> None:
    print(message, flush=True)


def prepare(engine: sa.Engine, url: str) -> None:
    """Migrate and load the ×1 demo county if the database has no grids yet."""
    with Session(engine) as session:
        if session.scalar(sa.select(sa.func.count()).select_from(Grid)):
            return
        from datetime import UTC, datetime

        from gis.layers.categories import load_catalog
        from gis.sample import load_sample

        load_catalog(session)
        _log("loading the ×1 demo county …")
        load_sample(
            session, seed=20261127, scale=1, end=datetime(2026, 11, 1, tzinfo=UTC), progress=False
        )
        session.commit()


def busiest_village(engine: sa.Engine) -> str:
    """The village with the most cases in the last 12 months of the data."""
    with Session(engine) as session:
        return str(
            session.execute(
                sa.text(
                    "SELECT village_code FROM incidents WHERE village_code IS NOT NULL AND "
                    "reported_at >= (SELECT max(reported_at) FROM incidents) - interval '1 year' "
                    "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
                )
            ).scalar_one()
        )


CPU: dict[str, float] = {}  # process CPU seconds of the last call (client and server: one process)


def _call(client: TestClient, method: str, path: str, body: Any = None) -> tuple[float, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    response = client.request(method, path, json=body)
    elapsed = time.perf_counter() - started
    CPU["last"] = time.process_time() - cpu
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def _largest(plan: dict[str, Any]) -> dict[str, Any]:
    return max(plan["balance"]["grids"], key=lambda g: g["area_m2"])


def _cut_through_centroid(plan: dict[str, Any], code: str, angle: int) -> list[list[float]]:
    from shapely.geometry import shape

    feature = next(f for f in plan["proposed"]["features"] if f["properties"]["code"] == code)
    geom = shape(feature["geometry"])
    c = geom.centroid
    reach = 0.05
    dx, dy = (reach, 0.0) if angle % 2 == 0 else (0.0, reach)
    return [[c.x - dx, c.y - dy], [c.x + dx, c.y + dy]]


def scale_village(client: TestClient, engine: sa.Engine, village: str) -> None:
    """Split the village's grids until it has 40, and apply that (committed, once)."""
    with Session(engine) as session:
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(Grid)
            .where(Grid.village_code == village, Grid.valid_to.is_(None))
        )
    if count is not None and count >= TARGET_GRIDS:
        return
    _, plan = _call(
        client, "POST", "/plans/editor/drafts", {"village": village, "title": "bench scale"}
    )
    angle = 0
    while len(plan["balance"]["grids"]) < TARGET_GRIDS:
        code = _largest(plan)["code"]
        line = _cut_through_centroid(plan, code, angle)
        _, plan = _call(
            client,
            "POST",
            f"/plans/{plan['id']}/edits",
            {"gesture": {"op": "split", "grid": code, "line": line}},
        )
        angle += 1
    assert plan["valid"], [i["message"] for i in plan["validation"]["issues"]][:3]
    _call(client, "POST", f"/plans/{plan['id']}/apply")
    _log(f"village {village} scaled to {len(plan['balance']['grids'])} grids")


def shared_vertices(plan: dict[str, Any]) -> list[tuple[list[float], list[float]]]:
    """Vertices inside the village shared by ≥ 3 grids (northernmost first), each with a spot
    ~5 m away to move it to. Some moves make a narrow neighbour invalid (the editor refuses
    them): the bench moves the first one the editor takes."""
    from collections import Counter

    from shapely.geometry import shape

    seen: Counter[tuple[float, float]] = Counter()
    for feature in plan["proposed"]["features"]:
        for xy in set(map(tuple, _coords(shape(feature["geometry"])))):
            seen[xy] += 1
    shared = sorted((p for p, n in seen.items() if n >= 3), key=lambda p: (-p[1], -p[0]))
    return [
        ([x, y], [x + dx, y + dy])
        for x, y in shared
        for dx, dy in ((0.00005, 0.00003), (-0.00005, -0.00003), (0.00003, -0.00005))
    ]


def _coords(geom: Any) -> list[tuple[float, float]]:
    import shapely

    return [tuple(c) for c in shapely.get_coordinates(geom).tolist()]


def one_round(client: TestClient, village: str) -> dict[str, float]:
    """A fresh draft and the gestures of a planner; seconds per gesture."""
    times: dict[str, float] = {}
    _, plan = _call(client, "POST", "/plans/editor/drafts", {"village": village, "title": "bench"})
    pid = plan["id"]

    def gesture(name: str, body: dict[str, Any]) -> dict[str, Any]:
        elapsed, answer = _call(client, "POST", f"/plans/{pid}/edits", {"gesture": body})
        times[name] = elapsed
        times[f"{name}_cpu"] = CPU["last"]
        return dict(answer)

    code = _largest(plan)["code"]
    plan = gesture(
        "split", {"op": "split", "grid": code, "line": _cut_through_centroid(plan, code, 1)}
    )
    for old, new in shared_vertices(plan):
        try:
            plan = gesture("move_vertex", {"op": "move_vertex", "from": old, "to": new})
        except RuntimeError as refused:  # the move would make a grid invalid: try another
            if "invalid_gesture" not in str(refused):
                raise
            continue
        break
    added = plan["impact"]["grids"]["added"][0]
    plan = gesture("merge", {"op": "merge", "grids": [code, added]})
    feature = next(f for f in plan["proposed"]["features"] if f["properties"]["code"] == code)
    from shapely.geometry import shape

    c = shape(feature["geometry"]).representative_point()
    d = 0.0003
    ring = [[c.x - d, c.y - d], [c.x + d, c.y - d], [c.x + d, c.y + d], [c.x - d, c.y + d]]
    plan = gesture("add", {"op": "add", "polygon": [[*ring, ring[0]]]})
    plan = gesture("rename", {"op": "rename", "grid": code, "name": "bench"})
    elapsed, plan = _call(client, "POST", f"/plans/{pid}/undo")
    times["undo"] = elapsed
    times["undo_cpu"] = CPU["last"]
    assert plan["coverage"]["valid"], plan["coverage"]
    # Baseline: the same draft's grids as a new plan, the existing whole-plan path.
    _, base = _call(client, "GET", f"/plans/base/{village}")
    proposed = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": f["geometry"],
                "properties": {k: v for k, v in f["properties"].items() if k in ("code", "name")},
            }
            for f in plan["proposed"]["features"]
        ],
    }
    elapsed, _ = _call(
        client,
        "POST",
        "/plans",
        {"village": village, "based_on_version": base["based_on_version"], "proposed": proposed},
    )
    times["baseline_post_plan"] = elapsed
    times["baseline_post_plan_cpu"] = CPU["last"]
    return times


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    provision.up(args.database_url, log=_log)
    upgrade(args.database_url)
    # No analytics warm-up thread: it imports libpysal and compiles numba kernels for ~10 s at
    # start-up, in this process, and its CPU (and the GIL) would be counted against the gestures.
    settings = Settings(  # type: ignore[call-arg]
        database_url=args.database_url,
        auth_required=False,
        analytics_warmup=False,
        _env_file=None,
    )
    engine = make_engine(settings)
    prepare(engine, args.database_url)
    village = busiest_village(engine)
    with Session(engine) as session:
        first_plan = session.scalar(sa.select(sa.func.coalesce(sa.func.max(Plan.id), 0)))
    app = create_app(settings)
    with TestClient(app) as client:
        scale_village(client, engine, village)
        with Session(engine) as session:
            before = session.scalar(sa.select(sa.func.coalesce(sa.func.max(Plan.id), 0)))
        rounds = [one_round(client, village) for _ in range(args.rounds)]
    with Session(engine) as session:  # the drafts of the rounds go; the scaling plan stays
        session.execute(sa.delete(Plan).where(Plan.id > before))
        session.commit()
    _log(f"village {village}, {TARGET_GRIDS} grids, {args.rounds} rounds (plans > {first_plan})")
    baseline = statistics.median(r["baseline_post_plan"] for r in rounds)
    baseline_cpu = statistics.median(r["baseline_post_plan_cpu"] for r in rounds)
    _log(
        f"{'gesture':<14}{'median ms':>10}{'max ms':>9}{'baseline/gesture':>18}"
        f"{'Python CPU ms':>15}"
    )
    all_gestures, all_cpu = [], []
    for name in ("split", "move_vertex", "merge", "add", "rename", "undo"):
        values = [r[name] for r in rounds]
        cpu = [r[f"{name}_cpu"] for r in rounds]
        all_gestures.extend(values)
        all_cpu.extend(cpu)
        median = statistics.median(values)
        _log(
            f"{name:<14}{median * 1000:>10.0f}{max(values) * 1000:>9.0f}{baseline / median:>18.2f}"
            f"{statistics.median(cpu) * 1000:>15.0f}"
        )
    _log(
        f"{'every gesture':<14}{statistics.median(all_gestures) * 1000:>10.0f}{'':>27}"
        f"{statistics.median(all_cpu) * 1000:>15.0f}"
    )
    _log(
        f"{'POST /plans':<14}{baseline * 1000:>10.0f}{'':>27}{baseline_cpu * 1000:>15.0f}"
        "  (baseline: the whole-plan check)"
    )


if __name__ == "__main__":
    main()
