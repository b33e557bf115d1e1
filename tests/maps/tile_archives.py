"""Small raster tile archives made by the tests themselves: our own PNGs (a pale ground, a grid
line at the tile's edge and its z/x/y written on it), packed as MBTiles (SQLite) and PMTiles
(with the ``pmtiles`` package's writer). No copied map data."""

from __future__ import annotations

import io
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

# Alternating grounds, so neighbouring tiles read apart on a screenshot.
GROUNDS = ("#eef3e2", "#e4ecd6")


def tile_range(bounds: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int, int]]:
    """The XYZ tiles at zoom ``z`` covering ``bounds`` (west, south, east, north)."""
    west, south, east, north = bounds

    def column(lon: float) -> int:
        return int((lon + 180) / 360 * 2**z)

    def row(lat: float) -> int:
        rad = math.radians(lat)
        return int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * 2**z)

    for x in range(column(west), column(east) + 1):
        for y in range(row(north), row(south) + 1):
            yield z, x, y


def tile_png(z: int, x: int, y: int) -> bytes:
    """One 256-px tile: a pale ground, its edge, and its address."""
    image = Image.new("RGB", (256, 256), GROUNDS[(x + y) % 2])
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 255, 255), outline="#b8c4a6")
    draw.text((8, 8), f"{z}/{x}/{y}", fill="#7d8a6a")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tiles(
    bounds: tuple[float, float, float, float], zooms: range
) -> dict[tuple[int, int, int], bytes]:
    """Every tile of ``bounds`` at ``zooms``, by XYZ address."""
    return {address: tile_png(*address) for z in zooms for address in tile_range(bounds, z)}


def write_mbtiles(
    path: Path, content: dict[tuple[int, int, int], bytes], bounds: tuple[float, ...]
) -> Path:
    """An MBTiles file (rows counted from the bottom, as the spec says)."""
    zooms = [z for z, _, _ in content]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, "
            "tile_data BLOB)"
        )
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [
                ("name", "test ground"),
                ("format", "png"),
                ("minzoom", str(min(zooms))),
                ("maxzoom", str(max(zooms))),
                ("bounds", ",".join(str(b) for b in bounds)),
                ("attribution", "测试底图 test tiles"),
            ],
        )
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in content.items()],
        )
    db.close()
    return path


def write_pmtiles(
    path: Path, content: dict[tuple[int, int, int], bytes], bounds: tuple[float, ...]
) -> Path:
    """A PMTiles v3 file written with the ``pmtiles`` package."""
    west, south, east, north = bounds
    zooms = [z for z, _, _ in content]
    with path.open("wb") as file:
        writer = Writer(file)
        for tile_id, data in sorted((zxy_to_tileid(*a), d) for a, d in content.items()):
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_zoom": min(zooms),
                "max_zoom": max(zooms),
                "min_lon_e7": int(west * 1e7),
                "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(east * 1e7),
                "max_lat_e7": int(north * 1e7),
                "center_zoom": min(zooms),
                "center_lon_e7": int((west + east) / 2 * 1e7),
                "center_lat_e7": int((south + north) / 2 * 1e7),
            },
            {"name": "test ground", "attribution": "测试底图 test tiles"},
        )
    return path
