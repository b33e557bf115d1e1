"""The two newer bulk jobs on Dask against the same jobs in-process, same run, same data.

    python -m bench.plans.dask_jobs --features 100000 --rounds 3 \
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_dask_jobs

- **import**: ``read_boundaries`` (read, convert to WGS84, check and repair every geometry: the
  part of ``gis boundaries import`` that runs on Dask) of a generated GeoPackage of
  ``--features`` grid polygons of ~64 vertices each in CGCS2000 / 3-degree GK CM 120E
  (EPSG:4549), in-process and on the cluster; the two results must be equal.
- **hotspots**: ``gis analytics hotspots --all-towns`` of the demo county (provisioned by this
  checkout's own loader if the database is empty), as a user runs it, in-process and with
  ``--dask``: the command's whole wall time, the cluster's start included.

The cluster for **import** is a ``LocalCluster`` of ``--workers`` single-threaded processes,
started once (its start-up is printed apart: a deployment keeps its cluster running). Rounds are
interleaved; the medians and the median of the rounds' ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from bench.server import ROOT, provision_demo
from gis.ingest.boundaries import read_boundaries
from gis.services import bulk

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_dask_jobs"
# A grid of the demo county's size class: ~500 m squares in Zhejiang, 16 vertices a side.
CELL_DEG, VERTICES_PER_SIDE = 0.005, 16


def _log(message: str) -> None:
    print(message, flush=True)


def grid_file(path: Path, features: int) -> Path:
    """``features`` adjacent ~500 m squares with 64 vertices each, written as a GeoPackage in
    EPSG:4549 (so every feature is converted on reading)."""
    side = int(np.ceil(np.sqrt(features)))
    k = np.arange(features)
    x, y = 118.0 + (k % side) * CELL_DEG, 28.0 + (k // side) * CELL_DEG
    squares = shapely.box(x, y, x + CELL_DEG, y + CELL_DEG)
    geoms = shapely.segmentize(squares, CELL_DEG / VERTICES_PER_SIDE)
    frame = gpd.GeoDataFrame(
        {"code": [f"33089900100{n:07d}" for n in k], "name": [f"网格{n}" for n in k]},
        geometry=geoms,
        crs="EPSG:4326",
    ).to_crs("EPSG:4549")
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    return path


def _hotspots(url: str, *extra: str) -> float:
    """Wall time of ``gis analytics hotspots --all-towns`` (fixed seed) by this checkout."""
    env = {**os.environ, "GIS_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from gis.cli import app; app()", "analytics", "hotspots"]
    started = time.perf_counter()
    subprocess.run(
        [*command, "--all-towns", "--seed", "1", "--permutations", "199", "--format", "json",
         *extra],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def _report(name: str, here: list[float], there: list[float]) -> None:
    ratios = [a / b for a, b in zip(here, there, strict=True)]
    _log(
        f"{name}: in-process median {statistics.median(here):.2f} s, on Dask median "
        f"{statistics.median(there):.2f} s; throughput Dask / in-process = "
        f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


def main(argv: list[str] | None = None) -> None:
    """Time both jobs both ways in interleaved rounds and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-hotspots", action="store_true")
    args = parser.parse_args(argv)
    _log(f"{os.cpu_count()} CPUs; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="gis-bench-dask-") as folder:
        started = time.perf_counter()
        path = grid_file(Path(folder) / "grids.gpkg", args.features)
        _log(f"file: {args.features:,} polygons, {path.stat().st_size / 1e6:.0f} MB, written in "
             f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        started = time.perf_counter()
        with bulk.dask_client(None, workers=args.workers) as client:
            _log(f"LocalCluster of {args.workers} workers: {time.perf_counter() - started:.1f} s")
            here_s, there_s = [], []
            for number in range(1, args.rounds + 1):
                started = time.perf_counter()
                here = read_boundaries(path)
                here_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                there = read_boundaries(path, client=client)
                there_s.append(time.perf_counter() - started)
                assert there == here, "the import on Dask differs from the in-process one"
                _log(f"round {number} import: in-process {here_s[-1]:.2f} s, Dask "
                     f"{there_s[-1]:.2f} s ({len(here.features):,} features, equal)")  # fmt: skip
        _report("import", here_s, there_s)
    if args.skip_hotspots:
        return
    provision_demo(ROOT, args.database_url)
    here_s, there_s = [], []
    for number in range(1, args.rounds + 1):
        here_s.append(_hotspots(args.database_url))
        there_s.append(_hotspots(args.database_url, "--dask"))
        _log(f"round {number} hotspots --all-towns: in-process {here_s[-1]:.1f} s, "
             f"--dask {there_s[-1]:.1f} s; load {os.getloadavg()}")  # fmt: skip
    _report("hotspots --all-towns (whole command, cluster start included)", here_s, there_s)


if __name__ == "__main__":
    main()
