"""Importing a road network from a file (GeoJSON, GeoPackage, Shapefile; an OSM extract works).

Each line needs a road class or a speed: OSM-like ``highway`` and ``maxspeed`` fields are
understood, as are ``road_class``/``class``/``fclass`` and ``speed_kmh``/``speed``. A class with
no usable speed gets the class's default speed (``gis.layers.roads.DEFAULT_SPEEDS_KMH``); ways
that cars cannot use (footways, steps, cycleways…) are left out. ``oneway=yes`` keeps the
drawing direction, ``oneway=-1`` reverses it.

Coordinates are converted to WGS84 from the file's CRS with pyproj, or from the CRS given on the
command line (including GCJ-02/BD-09, which no ``.prj`` can name). Lines are then noded (split at
shared vertices and T-junctions) and the topology is rebuilt (``gis.services.routing``).

The caller owns the transaction: the CLI commits only with ``--commit`` and otherwise rolls the
whole import back after reporting what it would have written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from pyproj import CRS, Geod
from pyproj.exceptions import CRSError
from shapely.geometry import LineString
from sqlalchemy.orm import Session

from gis.errors import UnknownCrsError, ValidationError
from gis.geo import Crs, parse_crs, to_wgs84_fn, transform_geometry
from gis.layers.roads import DEFAULT_SPEEDS_KMH, Road
from gis.services.routing import build_topology, metric_transformers, node_lines

CLASS_FIELDS = ("road_class", "highway", "class", "fclass", "type", "kind")
SPEED_FIELDS = ("speed_kmh", "maxspeed", "max_speed", "speed")
NAME_FIELDS = ("name", "name_zh", "name:zh", "name_en")
ONEWAY_FIELDS = ("oneway",)
# OSM ways that are not for cars.
NOT_DRIVABLE = frozenset(
    {
        "footway",
        "path",
        "cycleway",
        "steps",
        "pedestrian",
        "bridleway",
        "corridor",
        "platform",
        "proposed",
        "construction",
        "elevator",
        "abandoned",
        "disused",
        "raceway",
        "bus_stop",
        "via_ferrata",
    }
)
# OSM classes folded into the classes that have default speeds.
CLASS_ALIASES = {"living_street": "residential", "road": "unclassified", "busway": "service"}
FALLBACK_CLASS = "unclassified"
MAX_SPEED_KMH = 150.0
MPH = 1.609344
INSERT_BATCH = 5_000
_GEOD = Geod(ellps="WGS84")


@dataclass
class RoadImport:
    """What an import read, skipped and wrote (or would write, in a dry run)."""

    path: str
    features: int = 0
    lines: int = 0
    segments: int = 0
    nodes: int = 0
    replaced: int = 0
    length_km: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)
    speed_source: Counter[str] = field(default_factory=Counter)
    source_crs: str = ""


class RoadReading(TypedDict, total=False):
    """How to read a road file (every key optional): its ``layer``, its real ``crs`` when it
    lies, the fields of road class and speed, and the speed of lines with neither."""

    layer: str | None
    crs: str | None
    class_field: str | None
    speed_field: str | None
    default_speed_kmh: float | None


@dataclass(frozen=True)
class _Line:
    """One usable line with its attributes, in WGS84."""

    geom: LineString
    road_class: str
    speed_kmh: float
    oneway: bool
    name: str | None


def _column(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    """The column to read: the one asked for (must exist), else the first known name present."""
    lower = {c.lower(): c for c in columns}
    if wanted is not None:
        if wanted.lower() not in lower:
            raise ValidationError(
                f"the file has no field {wanted!r}; its fields are: {', '.join(columns)}"
            )
        return lower[wanted.lower()]
    return next((lower[c] for c in candidates if c in lower), None)


_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)


def parse_speed(value: Any) -> float | None:
    """A speed in km/h from a number or an OSM ``maxspeed`` ("50", "30 mph", "40;60")."""
    if value is None:
        return None
    if isinstance(value, int | float):
        speed = float(value)
    else:
        text = str(value).split(";")[0]
        match = _NUMBER.match(text)
        if match is None:
            return None  # "none", "signals", "walk", "CN:urban"…: no number to use
        speed = float(match.group(1)) * (MPH if (match.group(2) or "").lower() == "mph" else 1.0)
    if not math.isfinite(speed) or not 0 < speed <= MAX_SPEED_KMH:
        return None
    return speed


def parse_class(value: Any) -> str | None:
    """A road class, folded to the known ones ("primary_link" → "primary")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    if text.endswith("_link"):
        text = text[: -len("_link")]
    return CLASS_ALIASES.get(text, text)


def parse_oneway(value: Any) -> tuple[bool, bool]:
    """(one-way?, drawn against the direction of travel?) from an OSM-like ``oneway`` value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False, False
    text = str(value).strip().lower()
    if text in {"-1", "reverse"}:
        return True, True
    return text in {"yes", "true", "1", "t", "y"}, False


def _converter(file_crs: CRS | None, crs_option: str | None) -> tuple[Callable[..., Any], str]:
    """A function taking a geometry in the file's coordinates to WGS84, and the CRS's name."""
    if crs_option is not None:
        try:
            named = parse_crs(crs_option)
        except UnknownCrsError:
            named = None
        if named in (Crs.GCJ02, Crs.BD09):
            fn = to_wgs84_fn(named)
            return (lambda geom: transform_geometry(geom, fn)), named.value
        try:
            file_crs = CRS.from_user_input(crs_option)
        except CRSError as error:
            raise UnknownCrsError(
                f"unknown --crs {crs_option!r}: give an EPSG code (EPSG:32650), GCJ-02 or BD-09"
            ) from error
    if file_crs is None:
        raise ValidationError(
            "the file does not say its coordinate reference system: pass --crs (e.g. EPSG:4326)"
        )
    wgs84 = CRS.from_epsg(4326)
    if file_crs.equals(wgs84, ignore_axis_order=True) or file_crs.to_epsg() == 4490:
        return (lambda geom: geom), file_crs.to_string()
    from pyproj import Transformer

    transformer = Transformer.from_crs(file_crs, wgs84, always_xy=True)
    return (
        # The shapely stubs only model the interleaved (one-array) form of the transformation.
        lambda geom: shapely.transform(geom, transformer.transform, interleaved=False),  # type: ignore[arg-type]
        file_crs.to_string(),
    )


def _lines(geom: Any) -> Iterator[LineString]:
    """The 2D lines of a (Multi)LineString; nothing for other geometry types."""
    if geom is None or geom.is_empty:
        return
    geom = shapely.force_2d(geom)
    if geom.geom_type == "LineString":
        yield geom
    elif geom.geom_type == "MultiLineString":
        yield from geom.geoms


def read_roads(
    path: Path,
    *,
    report: RoadImport | None = None,
    **reading: Unpack[RoadReading],
) -> tuple[list[_Line], RoadImport]:
    """The usable lines of a road file in WGS84, and what was skipped and why."""
    import geopandas as gpd
    from pyogrio.errors import DataSourceError

    layer, crs = reading.get("layer"), reading.get("crs")
    class_field, speed_field = reading.get("class_field"), reading.get("speed_field")
    default_speed_kmh = reading.get("default_speed_kmh")
    report = report or RoadImport(path=str(path))
    if not path.exists():
        raise ValidationError(f"no such file: {path}")
    try:
        frame = gpd.read_file(path, layer=layer)
    except (DataSourceError, ValueError, OSError) as error:
        raise ValidationError(f"cannot read {path.name} as GeoJSON/GPKG/SHP: {error}") from error
    if len(frame) == 0:
        raise ValidationError(f"{path.name} has no usable road lines: it has no features")
    columns = [c for c in frame.columns if c != frame.geometry.name]
    class_col = _column(columns, class_field, CLASS_FIELDS)
    speed_col = _column(columns, speed_field, SPEED_FIELDS)
    name_col = _column(columns, None, NAME_FIELDS)
    oneway_col = _column(columns, None, ONEWAY_FIELDS)
    if class_col is None and speed_col is None and default_speed_kmh is None:
        raise ValidationError(
            "the lines have no road class or speed field (looked for "
            f"{', '.join(CLASS_FIELDS + SPEED_FIELDS)}): name one with --class-field or "
            "--speed-field, or give --default-speed"
        )
    convert, report.source_crs = _converter(frame.crs, crs)
    report.features = len(frame)
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    lines: list[_Line] = []
    for geom, record in zip(frame.geometry, records, strict=True):
        parts = list(_lines(geom))
        if not parts:
            report.skipped["not a line"] += 1
            continue
        road_class = parse_class(record.get(class_col)) if class_col else None
        if road_class in NOT_DRIVABLE:
            report.skipped[f"not drivable ({road_class})"] += 1
            continue
        speed = parse_speed(record.get(speed_col)) if speed_col else None
        if speed is not None:
            source = "attribute"
        elif road_class in DEFAULT_SPEEDS_KMH:
            speed, source = DEFAULT_SPEEDS_KMH[road_class], "class default"
        elif default_speed_kmh is not None:
            speed, source = default_speed_kmh, "--default-speed"
        else:
            speed, source = DEFAULT_SPEEDS_KMH[FALLBACK_CLASS], f"{FALLBACK_CLASS} default"
        oneway, reverse = parse_oneway(record.get(oneway_col)) if oneway_col else (False, False)
        raw_name = record.get(name_col) if name_col else None
        name = None if raw_name is None or raw_name != raw_name else str(raw_name)[:100]
        for part in parts:
            line = convert(part)
            coords = np.asarray(line.coords)
            if len(coords) < 2 or not np.isfinite(coords).all() or line.length == 0:
                report.skipped["degenerate line"] += 1
                continue
            lon, lat = coords[:, 0], coords[:, 1]
            if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
                raise ValidationError(
                    f"coordinates such as ({lon[0]:.1f}, {lat[0]:.1f}) are not lon/lat after "
                    f"conversion from {report.source_crs}: the file's CRS is probably wrong; "
                    "pass --crs"
                )
            if reverse:
                line = LineString(coords[::-1])
            lines.append(_Line(line, road_class or FALLBACK_CLASS, speed, oneway, name))
            report.speed_source[source] += 1
    report.lines = len(lines)
    if not lines:
        raise ValidationError(
            f"{path.name} has no usable road lines ({report.features} features; skipped: "
            f"{dict(report.skipped) or 'none'})"
        )
    return lines, report


def import_roads(
    session: Session,
    path: Path,
    *,
    replace: bool = True,
    tolerance_m: float = 0.5,
    progress: bool = False,
    **reading: Unpack[RoadReading],
) -> RoadImport:
    """Load a road file into ``roads`` (replacing the network unless ``replace`` is False),
    node it and rebuild the topology. Does not commit."""
    from tqdm import tqdm

    if not 0 < tolerance_m <= 50:
        raise ValidationError(f"--tolerance-m must be in (0, 50] metres, got {tolerance_m}")
    default_speed_kmh = reading.get("default_speed_kmh")
    if default_speed_kmh is not None and not 0 < default_speed_kmh <= MAX_SPEED_KMH:
        raise ValidationError(f"--default-speed must be in (0, {MAX_SPEED_KMH:g}] km/h")
    lines, report = read_roads(path, **reading)
    # Noding needs metres: work in the UTM zone of the data's centre, then come back.
    bounds = shapely.total_bounds([line.geom for line in lines])
    to_metric, to_wgs = metric_transformers(
        (bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0
    )
    metric = [
        shapely.transform(line.geom, to_metric.transform, interleaved=False)  # type: ignore[arg-type]
        for line in lines
    ]
    pieces = node_lines(metric, tolerance=tolerance_m)

    if replace:
        report.replaced = int(session.execute(sa.text("SELECT count(*) FROM roads")).scalar_one())
        session.execute(sa.delete(Road))
    rows: list[dict[str, Any]] = []
    total_m = 0.0
    for index, piece in tqdm(pieces, desc="roads", unit="segment", disable=not progress):
        source = lines[index]
        geom = shapely.transform(piece, to_wgs.transform, interleaved=False)  # type: ignore[arg-type]
        length_m = float(_GEOD.geometry_length(geom))
        total_m += length_m
        report.by_class[source.road_class] += 1
        rows.append(
            {
                "name": source.name,
                "road_class": source.road_class[:30],
                "speed_kmh": source.speed_kmh,
                "oneway": source.oneway,
                "length_m": length_m,
                "geom": from_shape(geom, srid=4326),
            }
        )
        if len(rows) >= INSERT_BATCH:
            session.execute(sa.insert(Road), rows)
            rows = []
    if rows:
        session.execute(sa.insert(Road), rows)
    report.segments = len(pieces)
    report.length_km = total_m / 1000.0
    report.nodes = build_topology(session, tolerance_m=tolerance_m)
    return report
