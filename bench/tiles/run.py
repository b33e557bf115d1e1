"""Reading tiles of a local basemap archive (GIS_BASEMAP_FILE): this service's readers against
the bare reads, measured in the same run.

    python -m bench.tiles --tiles 30000 --lookups 20000

It writes (in a temporary folder) one archive of ``--tiles`` tiles at zoom 10 with gaps between
them and payloads of 100–2,000 bytes — enough entries that the PMTiles root points to leaf
directories, as in a real town archive — as MBTiles and as PMTiles, then times ``--lookups``
random tile reads (80 % present, 20 % missing):

* MBTiles: ``gis.maps.tiles.archive_tile`` (one shared read-only connection behind a lock)
  against the bare ``SELECT`` on a sqlite3 connection;
* PMTiles: ``archive_tile`` (directories decoded once) against the ``pmtiles`` package's own
  ``Reader.get`` on the same memory map (which decodes the root directory on every read).

It prints microseconds per read (median of three passes; the slow package reader over a tenth of
the reads) and the ratio baseline / service (above 1: the service is faster).
"""

from __future__ import annotations

import argparse
import mmap
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pmtiles.reader import Reader
from pmtiles.tile import Compression, TileType, tileid_to_zxy, zxy_to_tileid
from pmtiles.writer import Writer

from gis.maps.tiles import archive_tile, open_archive


def write_archives(folder: Path, count: int, seed: int) -> tuple[Path, Path, list[int]]:
    """The same tiles as MBTiles and PMTiles; returns both paths and the tile ids written."""
    rnd = random.Random(seed)
    ids, tile_id = [], zxy_to_tileid(10, 0, 0)
    for _ in range(count):
        tile_id += rnd.randint(1, 5)
        ids.append(tile_id)
    payload = {i: rnd.randbytes(rnd.randint(100, 2000)) for i in ids}
    pmtiles = folder / "bench.pmtiles"
    with pmtiles.open("wb") as file:
        writer = Writer(file)
        for i in ids:
            writer.write_tile(i, payload[i])
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_zoom": 10,
                "max_zoom": 10,
                "min_lon_e7": -1_800_000_000,
                "min_lat_e7": -850_000_000,
                "max_lon_e7": 1_800_000_000,
                "max_lat_e7": 850_000_000,
                "center_zoom": 10,
                "center_lon_e7": 0,
                "center_lat_e7": 0,
            },
            {"name": "bench"},
        )
    mbtiles = folder / "bench.mbtiles"
    with sqlite3.connect(mbtiles) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, "
            "tile_data BLOB)"
        )
        db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("name", "bench")])
        rows = []
        for i in ids:
            z, x, y = tileid_to_zxy(i)
            rows.append((z, x, (1 << z) - 1 - y, payload[i]))
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
    db.close()
    return mbtiles, pmtiles, ids


def per_read_us(
    read: Callable[[int, int, int], object], probes: list[tuple[int, int, int]]
) -> float:
    """Microseconds per read over ``probes`` (median of three passes)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for z, x, y in probes:
            read(z, x, y)
        times.append((time.perf_counter() - start) / len(probes) * 1e6)
    return sorted(times)[1]


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=30_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="gis-bench-tiles-") as tmp:
        mbtiles, pmtiles, ids = write_archives(Path(tmp), args.tiles, args.seed)
        present = [tileid_to_zxy(rnd.choice(ids)) for _ in range(args.lookups * 4 // 5)]
        missing = [tileid_to_zxy(i + 1) for i in rnd.sample(ids, args.lookups // 5)]
        probes = present + missing
        rnd.shuffle(probes)

        mb = open_archive(str(mbtiles))
        bare = sqlite3.connect(f"{mbtiles.as_uri()}?mode=ro&immutable=1", uri=True)

        def bare_select(z: int, x: int, y: int) -> object:
            return bare.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? "
                "AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),
            ).fetchone()

        pm = open_archive(str(pmtiles))
        with pmtiles.open("rb") as file:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            package = Reader(lambda offset, length: mapped[offset : offset + length])
            rows = [
                ("MBTiles", lambda z, x, y: archive_tile(mb, z, x, y), bare_select, "bare SELECT"),
                (
                    "PMTiles",
                    lambda z, x, y: archive_tile(pm, z, x, y),
                    package.get,
                    "pmtiles Reader.get",
                ),
            ]
            print(f"{args.tiles:,} tiles, {len(probes):,} reads (80 % present)")
            print("| archive | service µs/read | baseline | baseline µs/read | ratio |")
            print("|---|---|---|---|---|")
            for name, service, baseline, baseline_name in rows:
                # The package reader takes milliseconds a read: a tenth of the reads is enough.
                sample = probes if name == "MBTiles" else probes[: len(probes) // 10]
                ours, theirs = per_read_us(service, probes), per_read_us(baseline, sample)
                ratio = theirs / ours
                print(f"| {name} | {ours:.1f} | {baseline_name} | {theirs:.1f} | {ratio:.2f} |")
