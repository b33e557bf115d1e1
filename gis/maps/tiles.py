"""Basemaps that work where the town is. A township's government network (政务外网) usually cannot
reach public tile servers, so a town configures its own:

* ``intranet`` — a tile server on its network (``GIS_BASEMAP_URL``): an XYZ template
  (``…/{z}/{x}/{y}.png``) or WMTS in the Web-Mercator tiling, such as a provincial Tianditu node,
  written as a KVP GetTile URL or a RESTful template with ``{TileMatrix}/{TileRow}/{TileCol}``;
* ``local`` — a tile archive file (``GIS_BASEMAP_FILE``: MBTiles, which is SQLite, or PMTiles
  read with the ``pmtiles`` package) that this service serves itself at
  ``/maps/tiles/{z}/{x}/{y}``, for rooms with no network at all.

Each declares the coordinates its tiles are drawn in (``wgs84`` or ``gcj02``): overlays are
shifted into GCJ-02 exactly as for AMap's tiles.
"""

from __future__ import annotations

import mmap
import re
import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pmtiles.reader import Reader
from pmtiles.tile import (
    Compression,
    Entry,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)

from gis.errors import BasemapUnavailableError, NotFoundError, ValidationError
from gis.geo import Crs
from gis.maps.base import Basemap, TileSource, check_basemap
from gis.settings import Settings

# Raster formats a Leaflet tile layer can draw, by their names in MBTiles metadata.
MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
}
PMTILES_TYPES = {
    TileType.PNG: "png",
    TileType.JPEG: "jpg",
    TileType.WEBP: "webp",
    TileType.AVIF: "avif",
}
ARCHIVE_MEDIA_TYPES = {".pmtiles": "application/vnd.pmtiles", ".mbtiles": "application/vnd.sqlite3"}
MAX_ZOOM = 30
BASEMAP_CRS_NAMES = {"wgs84": Crs.WGS84, "gcj02": Crs.GCJ02}
# WMTS's names for a tile's address -> Leaflet's.
_WMTS_PLACEHOLDERS = {"tilematrix": "z", "tilerow": "y", "tilecol": "x"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ArchiveInfo:
    """What the page needs to know about an archive: its format, zooms, extent and credits."""

    format: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None
    attribution: str
    name: str

    @property
    def media_type(self) -> str:
        """The Content-Type of its tiles."""
        return MEDIA_TYPES[self.format]


class TileArchive:
    """A raster tile archive on disk, read by tile address (``z/x/y``, y counted from the top
    as in XYZ)."""

    path: Path
    info: ArchiveInfo
    # Set when the archive stores tiles compressed (PMTiles may): sent as Content-Encoding.
    content_encoding: str | None = None

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile's bytes, or None when the archive has no such tile."""
        raise NotImplementedError

    @property
    def media_type(self) -> str:
        """The Content-Type of the archive file itself (served with range requests)."""
        return ARCHIVE_MEDIA_TYPES[self.path.suffix.lower()]


def _raster_format(name: str, path: Path) -> str:
    fmt = name.lower()
    if fmt not in MEDIA_TYPES:
        raise BasemapUnavailableError(
            f"{path} holds {name or 'unknown'} tiles; the map pages draw raster tiles "
            f"({', '.join(sorted(MEDIA_TYPES))}) — convert the archive or choose another basemap"
        )
    return fmt


def _bounds(value: object) -> tuple[float, float, float, float] | None:
    try:
        west, south, east, north = (float(part) for part in str(value).split(","))
    except ValueError:
        return None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        return None
    return west, south, east, north


class MBTiles(TileArchive):
    """An MBTiles file (SQLite; rows counted from the bottom, TMS style)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Read-only and immutable: the service never writes the town's file.
        self._db = sqlite3.connect(
            f"{path.as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        # One connection shared by the worker's threads: sqlite3 objects are not thread-safe.
        self._lock = threading.Lock()
        try:
            meta = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = self._db.execute(
                "SELECT min(zoom_level), max(zoom_level) FROM tiles"
            ).fetchone()
        except sqlite3.DatabaseError as error:
            raise BasemapUnavailableError(f"{path} is not an MBTiles file: {error}") from None
        if zooms[0] is None:
            raise BasemapUnavailableError(f"{path} holds no tiles")
        self.info = ArchiveInfo(
            format=_raster_format(str(meta.get("format", "")), path),
            min_zoom=int(meta.get("minzoom", zooms[0])),
            max_zoom=int(meta.get("maxzoom", zooms[1])),
            bounds=_bounds(meta.get("bounds", "")),
            attribution=str(meta.get("attribution", "")),
            name=str(meta.get("name", path.stem)),
        )

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ ``z/x/y`` (flipped to the file's TMS row)."""
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? "
                "AND tile_row = ?",
                (z, x, (1 << z) - 1 - y),
            ).fetchone()
        return None if row is None else bytes(row[0])


class PMTiles(TileArchive):
    """A PMTiles v3 file, memory-mapped and read with the ``pmtiles`` package."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header = self._header = deserialize_header(self._map[0:127])
            metadata = Reader(lambda offset, length: self._map[offset : offset + length]).metadata()
        except Exception as error:  # the package raises bare exceptions for a foreign file
            raise BasemapUnavailableError(f"{path} is not a PMTiles v3 file ({error!r})") from None
        tile_type = header["tile_type"]
        fmt = _raster_format(PMTILES_TYPES.get(tile_type, tile_type.name), path)
        if header["tile_compression"] == Compression.GZIP:
            self.content_encoding = "gzip"
        elif header["tile_compression"] not in (Compression.NONE, Compression.UNKNOWN):
            raise BasemapUnavailableError(
                f"{path} stores tiles as {header['tile_compression'].name}; use none or gzip"
            )
        west, south = header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7
        east, north = header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7
        self.info = ArchiveInfo(
            format=fmt,
            min_zoom=header["min_zoom"],
            max_zoom=header["max_zoom"],
            bounds=_bounds(f"{west},{south},{east},{north}"),
            attribution=str(metadata.get("attribution", "")),
            name=str(metadata.get("name", path.stem)),
        )

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at ``z/x/y``: found through the root and leaf directories, as the package's
        ``Reader.get`` does, but with each directory decoded once (that reader decodes the root
        again for every tile: ~1 ms a tile instead of tens of µs)."""
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = self._header["root_offset"], self._header["root_length"]
        for _ in range(4):  # the spec's deepest nesting
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = self._header["tile_data_offset"] + entry.offset
                return bytes(self._map[start : start + entry.length])
            offset = self._header["leaf_directory_offset"] + entry.offset
            length = entry.length
        return None

    @lru_cache(maxsize=256)  # noqa: B019 — one archive per file, kept for the process anyway
    def _directory(self, offset: int, length: int) -> list[Entry]:
        return deserialize_directory(self._map[offset : offset + length])


ARCHIVES: dict[str, type[TileArchive]] = {".mbtiles": MBTiles, ".pmtiles": PMTiles}


@lru_cache(maxsize=4)
def _open(path: Path, _mtime_ns: int, _size: int) -> TileArchive:
    return ARCHIVES[path.suffix.lower()](path)  # type: ignore[call-arg]


def open_archive(configured: str) -> TileArchive:
    """The archive at ``configured`` (GIS_BASEMAP_FILE), opened once per process and again
    when the file is replaced."""
    path = Path(configured).expanduser()
    if path.suffix.lower() not in ARCHIVES:
        raise BasemapUnavailableError(
            f"GIS_BASEMAP_FILE must be an .mbtiles or .pmtiles archive, not {path.name!r}"
        )
    try:
        stat = path.stat()
    except OSError as error:
        raise BasemapUnavailableError(f"the basemap file {path} cannot be read: {error}") from None
    return _open(path.resolve(), stat.st_mtime_ns, stat.st_size)


def archive_tile(archive: TileArchive, z: int, x: int, y: int) -> bytes | None:
    """A tile by address: None for one the archive lacks, NotFoundError for one that cannot
    exist (outside the world at that zoom)."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
        raise NotFoundError(f"no tile {z}/{x}/{y}: x and y run from 0 to 2^z − 1")
    return archive.tile(z, x, y)


def tile_url_template(url: str) -> str:
    """``url`` as a Leaflet template: WMTS placeholders become ``{z}/{x}/{y}``; anything Leaflet
    could not fill is refused (BasemapUnavailableError: a setting of the service is wrong)."""

    def leaflet_name(match: re.Match[str]) -> str:
        name = match.group(1)
        return "{" + _WMTS_PLACEHOLDERS.get(name.lower(), name) + "}"

    template = _PLACEHOLDER.sub(leaflet_name, url.strip())
    names = set(_PLACEHOLDER.findall(template))
    unknown = names - {"z", "x", "y", "-y", "s", "r"}
    if unknown:
        raise BasemapUnavailableError(
            f"GIS_BASEMAP_URL has placeholders a tile layer cannot fill: "
            f"{', '.join(sorted('{' + n + '}' for n in unknown))}; write their values into the "
            "URL (e.g. the tile matrix set's name) and keep {z}/{x}/{y} or "
            "{TileMatrix}/{TileCol}/{TileRow}"
        )
    if not {"z", "x"} <= names or not names & {"y", "-y"}:
        raise BasemapUnavailableError(
            "GIS_BASEMAP_URL must address tiles with {z}, {x} and {y} "
            "(or WMTS's {TileMatrix}, {TileCol} and {TileRow})"
        )
    if not template.startswith(("http://", "https://", "/")):
        raise BasemapUnavailableError("GIS_BASEMAP_URL must start with http://, https:// or /")
    return template


def resolve_basemap(
    basemap: Basemap, settings: Settings, *, tiles_url: str
) -> Basemap | TileSource:
    """The tiles a page draws for ``basemap``: a built-in one as it is, a configured one as its
    tile source (``tiles_url``: where this service serves the local archive's tiles)."""
    if basemap is Basemap.INTRANET:
        if not settings.basemap_url:
            raise ValidationError(
                "basemap=intranet needs GIS_BASEMAP_URL (the town's own tile server); "
                "choose another basemap"
            )
        subdomains = settings.basemap_subdomains
        template = tile_url_template(settings.basemap_url)
        labels = settings.basemap_labels_url
        if "{s}" in template + (labels or "") and not subdomains:
            raise BasemapUnavailableError("GIS_BASEMAP_URL uses {s}: set GIS_BASEMAP_SUBDOMAINS")
        return TileSource(
            url=template,
            labels_url=tile_url_template(labels) if labels else None,
            crs=BASEMAP_CRS_NAMES[settings.basemap_crs],
            attribution=settings.basemap_attribution,
            name="内网底图 intranet basemap",
            subdomains=subdomains or "abc",
            max_zoom=settings.basemap_max_zoom,
        )
    if basemap is Basemap.LOCAL:
        if not settings.basemap_file:
            raise ValidationError(
                "basemap=local needs GIS_BASEMAP_FILE (an .mbtiles or .pmtiles archive); "
                "choose another basemap"
            )
        info = open_archive(settings.basemap_file).info
        return TileSource(
            url=f"{tiles_url.rstrip('/')}/{{z}}/{{x}}/{{y}}",
            crs=BASEMAP_CRS_NAMES[settings.basemap_file_crs],
            attribution=info.attribution or "本地底图 local basemap",
            name=info.name,
            min_zoom=info.min_zoom,
            max_zoom=info.max_zoom,
            bounds=info.bounds,
        )
    return basemap


def page_basemap(
    basemap: Basemap | None, settings: Settings, *, tiles_url: str
) -> Basemap | TileSource:
    """The basemap a page draws: the one asked for (else GIS_BASEMAP), resolved to its tiles
    and checked usable (Tianditu's key, the configured URL or archive)."""
    chosen = resolve_basemap(basemap or Basemap(settings.basemap), settings, tiles_url=tiles_url)
    check_basemap(chosen, settings.tianditu_key)
    return chosen
