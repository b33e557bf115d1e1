"""Boundary files in, boundary files out: counties, towns, villages and grids in any CRS.

Reading (``read_boundaries``) is pure: GeoJSON, Shapefile or GeoPackage via pyogrio, every
geometry converted to WGS84 lon/lat and checked. Then ``plan_import`` compares the file with the
database (added / changed / retired) and ``commit_import`` writes it; a grid that changes gets a
new dated version (the old one ``valid_to = now``, the new one ``valid_from = now``), never an
in-place edit, so "which grid covered this point on date D" stays answerable.

Coordinate systems. The file's declared CRS is used unless ``crs`` overrides it, because real
files lie: Amap/DataV-derived boundaries are GCJ-02 even when their ``.prj`` says WGS 84.
- EPSG codes (CGCS2000 EPSG:4490 and its Gauss–Krüger projections: around Quzhou EPSG:4549
  "3-degree GK CM 120E" or EPSG:4548 "CM 117E", or the zone-prefixed EPSG:4528 "zone 40"; UTM…)
  go through pyproj. (EPSG:4545 is CM 108E, far west of Zhejiang: a common mix-up.)
- GCJ-02 and BD-09 are not datums pyproj knows: their lon/lat are converted by ``gis.geo``.
- Whatever comes out must lie in China; if not, the message says which CRS to try.

Codes. Real files carry administrative codes: a county's 6-digit adcode (``330803``), a town's 9
digits. Ours are the 12-digit statistical codes, so ``plan_import`` pads them
(``gis.layers.regions.region_code``) before matching existing regions by code; any other shape is
reported as a problem of that feature, never imported as a new region.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session
from tqdm import tqdm

from gis.errors import UnknownCodeError, UnknownCrsError, ValidationError
from gis.geo import Crs, parse_crs, to_wgs84_fn, transform_geometry
from gis.layers.base import SRID, utcnow
from gis.layers.grids import Grid
from gis.layers.regions import Region, region_code
from gis.services import grid_versions
from gis.services.ledger_tables import cell_text
from gis.settings import DEFAULT_PLAN_LOCK_TIMEOUT_S, DEFAULT_SNAP_M

if TYPE_CHECKING:
    from distributed import Client

# Rough bounding box of China (as in gis.geo): converted boundaries must fall inside it.
_CHINA = (72.0, 0.8, 137.9, 55.9)
CODE_FIELDS = ("code", "adcode", "CODE", "ADCODE", "gid", "id", "编码", "代码")
NAME_FIELDS = ("name", "NAME", "Name", "名称", "mc", "MC")
FORMATS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
PROGRESS_ABOVE = 2_000  # features; smaller files finish before a bar would be readable
# Features per Dask task when the caller does not say how many partitions (--dask).
PARTITION_FEATURES = 10_000


class Level(StrEnum):
    """What a boundary file holds."""

    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"
    GRID = "grid"


# The level each level's features belong to (their parent).
PARENT_LEVEL = {Level.TOWN: "county", Level.VILLAGE: "town", Level.GRID: "village"}


@dataclass
class BoundaryFeature:
    """One boundary from a file, in WGS84, valid, polygonal."""

    index: int
    code: str
    name: str
    geom: MultiPolygon
    parent_code: str | None = None
    households: int | None = None
    population: int | None = None
    repair: str | None = None


@dataclass
class Problem:
    """A feature that was repaired or rejected, and why."""

    index: int
    code: str | None
    reason: str


@dataclass
class ReadResult:
    """What was read from a boundary file."""

    path: Path
    source_crs: str
    declared_crs: str | None
    features: list[BoundaryFeature]
    repaired: list[Problem] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)


def describe_crs(text: str) -> tuple[str, Crs | CRS]:
    """Parse a --crs value: GCJ-02/BD-09/WGS84/CGCS2000 names, or anything pyproj knows."""
    try:
        return parse_crs(text).value, parse_crs(text)
    except UnknownCrsError:
        pass
    try:
        crs = CRS.from_user_input(text.strip())
    except CRSError as error:
        raise UnknownCrsError(
            f"unknown CRS {text!r}: give an EPSG code (EPSG:4549 for CGCS2000 / 3-degree "
            "Gauss-Kruger CM 120E, EPSG:4490 for CGCS2000 lon/lat), GCJ-02 or BD-09"
        ) from error
    return crs.to_string(), crs


def _pick_field(
    columns: Sequence[str], wanted: str | None, candidates: Iterable[str], what: str
) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValidationError(
                f"the file has no field {wanted!r} for the {what}; fields: {', '.join(columns)}"
            )
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise ValidationError(
        f"cannot tell which field holds the {what}; pass --{what}-field "
        f"(fields: {', '.join(columns)})"
    )


def _default_encoding(path: Path) -> str | None:
    """Shapefiles without a .cpg are read as UTF-8 (Chinese data is UTF-8 or GBK, never Latin-1,
    which is GDAL's guess)."""
    if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists():
        return "UTF-8"
    return None


def _as_count(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if count >= 0 else None


@dataclass(frozen=True)
class _Fields:
    """Which field holds what, and the CRS the geometries are read in (``--crs`` or the
    file's): all a partition of the file needs to be checked on its own."""

    code: str
    name: str
    parent: str | None
    households: str | None
    population: str | None
    declared: CRS | None
    override: str | None


@dataclass
class _Checked:
    """The features of one part of a file that passed, and the problems of the others."""

    features: list[BoundaryFeature] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)


def read_boundaries(
    path: Path,
    *,
    crs: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    households_field: str | None = None,
    population_field: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    progress: bool = False,
    client: Client | None = None,
    partitions: int | None = None,
    on_partition: Callable[[int], None] | None = None,
) -> ReadResult:
    """Read a GeoJSON/Shapefile/GeoPackage of boundaries into valid WGS84 MultiPolygons; with
    a Dask ``client``, read and check it in ``partitions`` slices on the cluster (the same
    result; ``on_partition`` is called with each slice's position as it finishes)."""
    import pyogrio

    path = Path(path)
    if not path.exists():
        raise ValidationError(f"no such file: {path}")
    encoding = encoding or _default_encoding(path)
    frame = None
    if client is None or path.suffix.lower() in READ_ONCE_SUFFIXES:
        frame = _read_slice(path, layer, encoding)
        declared, columns, total = frame.crs, list(frame.columns), len(frame)
    else:
        try:
            info = pyogrio.read_info(path, layer=layer, encoding=encoding, force_feature_count=True)
        except Exception as error:  # as in _read_slice
            raise ValidationError(f"cannot read {path}: {error}") from error
        # The CRS geopandas would give the whole frame (pyogrio's string, through pyproj).
        declared = CRS.from_user_input(info["crs"]) if info["crs"] else None
        columns, total = list(info["fields"]), int(info["features"])
    columns = [str(c) for c in columns if c != "geometry"]
    code_col = _pick_field(columns, code_field, CODE_FIELDS, "code")
    name_col = _pick_field(columns, name_field, (*NAME_FIELDS, code_col), "name")
    for wanted in (parent_field, households_field, population_field):
        if wanted is not None:
            _pick_field(columns, wanted, (), "field")
    fields = _Fields(
        code=code_col,
        name=name_col,
        parent=parent_field,
        households=households_field,
        population=population_field,
        declared=declared,
        override=crs,
    )
    source, _ = _converter(declared, crs)  # an unknown CRS fails here, before any work
    bar = progress and total > PROGRESS_ABOVE
    if client is None:
        parts = [_check_slice(frame, fields, desc=f"checking {path.name}" if bar else None)]
    else:
        parts = _check_on_dask(
            client, path, layer, encoding, fields, total, partitions, bar, on_partition, frame
        )
    result = ReadResult(
        path=path,
        source_crs=source,
        declared_crs=declared.to_string() if declared is not None else None,
        features=[f for part in parts for f in part.features],
        repaired=[p for part in parts for p in part.repaired],
        rejected=[p for part in parts for p in part.rejected],
    )
    duplicates = [c for c, n in Counter(f.code for f in result.features).items() if n > 1]
    if duplicates:
        for feature in [f for f in result.features if f.code in set(duplicates)]:
            result.rejected.append(
                Problem(feature.index, feature.code, "the code appears more than once in the file")
            )
        result.features = [f for f in result.features if f.code not in set(duplicates)]
    return result


def _read_slice(
    path: Path, layer: str | None, encoding: str | None, start: int = 0, count: int | None = None
) -> Any:
    """Features ``start`` … ``start + count`` of the file (all by default) as a GeoDataFrame."""
    import pyogrio

    try:
        return pyogrio.read_dataframe(
            path, layer=layer, encoding=encoding, skip_features=start, max_features=count
        )
    except Exception as error:  # pyogrio raises DataSourceError, DataLayerError, OSError…
        raise ValidationError(f"cannot read {path}: {error}") from error


def _check_slice(
    frame: Any, fields: _Fields, *, start: int = 0, desc: str | None = None
) -> _Checked:
    """Check the features of ``frame``, the file's features from ``start`` on: a code, and a
    valid polygonal WGS84 geometry (``_checked_geometry``); a progress bar if ``desc``."""
    _, convert = _converter(fields.declared, fields.override)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    rows = frame.drop(columns="geometry").to_dict("records")
    checked = _Checked()
    iterator: Iterable[tuple[int, dict[str, Any]]] = enumerate(rows)
    if desc is not None:
        iterator = tqdm(iterator, total=len(rows), unit="feature", desc=desc)
    for position, row in iterator:
        index = start + position
        code = cell_text(row.get(fields.code))
        if code is None:
            checked.rejected.append(Problem(index, None, f"no value in field {fields.code!r}"))
            continue
        if len(code) > 20:
            checked.rejected.append(Problem(index, code, "the code is longer than 20 characters"))
            continue
        outcome = _checked_geometry(geoms[position], convert)
        if isinstance(outcome, str):
            checked.rejected.append(Problem(index, code, outcome))
            continue
        geom, repair = outcome
        if repair:
            checked.repaired.append(Problem(index, code, repair))
        checked.features.append(
            BoundaryFeature(
                index=index,
                code=code,
                name=(cell_text(row.get(fields.name)) or code)[:100],
                geom=geom,
                parent_code=cell_text(row.get(fields.parent)) if fields.parent else None,
                households=_as_count(row.get(fields.households)) if fields.households else None,
                population=_as_count(row.get(fields.population)) if fields.population else None,
                repair=repair,
            )
        )
    return checked


def read_and_check_slice(
    path: Path, layer: str | None, encoding: str | None, start: int, count: int, fields: _Fields
) -> _Checked:
    """Read and check features ``start`` … ``start + count`` of a file: a Dask task."""
    return _check_slice(_read_slice(path, layer, encoding, start, count), fields, start=start)


def check_slice(frame: Any, fields: _Fields, start: int) -> _Checked:
    """Check features read elsewhere (``frame``, the file's from ``start`` on): a Dask task."""
    return _check_slice(frame, fields, start=start)


# Files GDAL cannot start reading in the middle of (GeoJSON and its kin): a slice read on a
# worker would parse the file up to it, so they are read once by the caller even with Dask.
READ_ONCE_SUFFIXES = frozenset({".geojson", ".json", ".geojsonl", ".geojsons", ".topojson"})


def _check_on_dask(
    client: Client,
    path: Path,
    layer: str | None,
    encoding: str | None,
    fields: _Fields,
    total: int,
    partitions: int | None,
    progress: bool,
    on_partition: Callable[[int], None] | None,
    frame: Any = None,
) -> list[_Checked]:
    """The file read and checked in slices on the cluster, in file order.

    Each task reads its own slice with pyogrio (``skip_features``/``max_features``, as
    ``dask_geopandas.read_file`` does, which does not take pyogrio's ``encoding``: Chinese
    Shapefiles without a .cpg need it), so the workers must see the file at the same path. A
    ``frame`` already read (a GeoJSON, DataV's format: ``READ_ONCE_SUFFIXES``) is cut into
    slices sent to the workers instead, which only check them."""
    from gis.services import bulk

    count = partitions or max(1, math.ceil(total / PARTITION_FEATURES))
    size = max(1, math.ceil(total / count))
    starts = list(range(0, total, size))
    sizes = [min(size, total - start) for start in starts]
    slices = list(zip(starts, sizes, strict=True))
    if frame is not None:
        task: Callable[..., _Checked] = check_slice
        arguments: list[tuple[Any, ...]] = [
            (frame.iloc[start : start + n], fields, start) for start, n in slices
        ]
    else:
        task = read_and_check_slice
        arguments = [(path, layer, encoding, start, n, fields) for start, n in slices]
    parts: list[_Checked] = bulk.run_tasks(
        client,
        task,
        arguments,
        progress=progress,
        desc=f"checking {path.name} on Dask",
        unit="feature",
        sizes=sizes,
        on_done=on_partition,
    )
    return parts


def _converter(declared: CRS | None, override: str | None) -> tuple[str, Any]:
    """The CRS to read the file in and a function converting one geometry to WGS84."""
    if override is not None:
        label, crs = describe_crs(override)
    elif declared is not None:
        label, crs = declared.to_string(), declared
    else:
        label, crs = "EPSG:4326 (assumed: the file declares no CRS)", Crs.WGS84
    if isinstance(crs, Crs):
        fn = to_wgs84_fn(crs)
        return label, lambda g: transform_geometry(g, fn)
    if crs.equals(CRS.from_epsg(SRID)):
        return label, lambda g: g
    from pyproj import Transformer
    from pyproj.exceptions import ProjError

    try:
        transformer = Transformer.from_crs(crs, CRS.from_epsg(SRID), always_xy=True)
    except ProjError as error:
        raise UnknownCrsError(
            f"cannot convert from {label} to WGS84 ({error}); give an EPSG code of China "
            "(EPSG:4549 CGCS2000 GK CM 120E, EPSG:4490…), GCJ-02 or BD-09"
        ) from error

    def project(geom: BaseGeometry) -> BaseGeometry:
        result: BaseGeometry = shapely.transform(
            geom,
            lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
        )
        return result

    return label, project


def _checked_geometry(raw: Any, convert: Any) -> tuple[MultiPolygon, str | None] | str:
    """The WGS84, valid, 2-D polygonal geometry of a feature, or why it is rejected."""
    if raw is None or raw.is_empty:
        return "the feature has no geometry"
    if raw.geom_type not in {"Polygon", "MultiPolygon"}:
        return f"{raw.geom_type} geometry: boundaries must be polygons"
    geom = convert(shapely.force_2d(raw))
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        return "coordinates are not finite after conversion (wrong --crs?)"
    min_x, min_y, max_x, max_y = geom.bounds
    if not (
        _CHINA[0] <= min_x and max_x <= _CHINA[2] and _CHINA[1] <= min_y and max_y <= _CHINA[3]
    ):
        hint = (
            "the coordinates look projected (metres): pass --crs with the file's projection, "
            "e.g. EPSG:4549 (CGCS2000 GK CM 120E)"
            if max(abs(min_x), abs(max_x)) > 180
            else "pass the right --crs"
        )
        return (
            f"after conversion the feature lies at lon {min_x:.4f}..{max_x:.4f}, "
            f"lat {min_y:.4f}..{max_y:.4f}, outside China; {hint}"
        )
    if geom.is_valid:
        return _polygonal(geom), None
    reason = explain_validity(geom)
    fixed = _polygonal(shapely.make_valid(geom))
    if fixed.is_empty:
        return f"invalid geometry ({reason}) with no area left after repair"
    return fixed, f"repaired: {reason}"


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    parts: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            parts.append(part)
        elif isinstance(part, MultiPolygon) or part.geom_type == "GeometryCollection":
            parts.extend(p for p in shapely.get_parts(part) if isinstance(p, Polygon))
    return MultiPolygon([p for p in parts if not p.is_empty])


# --- comparing with the database ----------------------------------------------------------------


@dataclass
class ImportPlan:
    """What committing a file would do."""

    level: Level
    added: list[BoundaryFeature] = field(default_factory=list)
    changed: list[tuple[BoundaryFeature, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[tuple[str, str]] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    unplaced: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts by outcome."""
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "retired": len(self.retired),
            "unplaced": len(self.unplaced),
        }


def same_geometry(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Equal shapes: vertex-for-vertex within 1e-9° (~0.1 mm), or topologically equal."""
    # Compare like with like: a Polygon and the MultiPolygon of it are the same boundary.
    if isinstance(a, Polygon):
        a = MultiPolygon([a])
    if isinstance(b, Polygon):
        b = MultiPolygon([b])
    na, nb = shapely.normalize(a), shapely.normalize(b)
    return bool(na.equals_exact(nb, 1e-9)) or bool(a.equals(b))


def _parents_by_overlap(
    session: Session, features: list[BoundaryFeature], level: str
) -> dict[str, str]:
    """For features without a parent: the region of ``level`` each overlaps most (one query)."""
    if not features:
        return {}
    rows = session.execute(
        sa.text(
            """
            SELECT f.code, best.code AS parent
              FROM unnest(CAST(:codes AS text[]), CAST(:wkbs AS bytea[])) AS f(code, wkb)
              CROSS JOIN LATERAL (
                    SELECT r.code FROM regions r
                     WHERE r.level = :level
                       AND ST_Intersects(r.geom, ST_SetSRID(ST_GeomFromWKB(f.wkb), 4326))
                     ORDER BY ST_Area(ST_Intersection(
                                r.geom, ST_SetSRID(ST_GeomFromWKB(f.wkb), 4326))) DESC, r.code
                     LIMIT 1) best
            """
        ),
        {
            "codes": [f.code for f in features],
            "wkbs": [shapely.to_wkb(f.geom) for f in features],
            "level": level,
        },
    ).all()
    return {code: parent for code, parent in rows}


def plan_import(
    session: Session, read: ReadResult, *, level: Level, parent: str | None = None
) -> ImportPlan:
    """Compare a read file with the database: what would be added, changed and retired."""
    plan = ImportPlan(level=level)
    features = read.features
    if level is not Level.GRID:
        features = _with_region_codes(plan, features, level)
    if level is not Level.COUNTY:
        parent_level = PARENT_LEVEL[level]
        if parent is not None:
            if level is not Level.GRID:
                parent = region_code(parent, parent_level)
            region = session.get(Region, parent)
            if region is None or region.level != parent_level:
                raise UnknownCodeError(f"--parent {parent} is not a {parent_level} code")
            for feature in features:
                feature.parent_code = parent
        missing = [f for f in features if f.parent_code is None]
        found = _parents_by_overlap(session, missing, parent_level)
        for feature in missing:
            feature.parent_code = found.get(feature.code)
        known = set(
            session.scalars(
                sa.select(Region.code).where(
                    Region.code.in_({f.parent_code for f in features if f.parent_code}),
                    Region.level == parent_level,
                )
            )
        )
        for feature in features:
            if feature.parent_code not in known:
                plan.unplaced.append(
                    Problem(
                        feature.index,
                        feature.code,
                        f"no {parent_level} {feature.parent_code or '(none overlaps it)'}; "
                        "pass --parent or --parent-field, or import the parents first",
                    )
                )
        features = [f for f in features if f.parent_code in known]
        plan.parents = sorted(known)
    if level is Level.GRID:
        _compare_grids(session, plan, features)
    else:
        _compare_regions(session, plan, features, level)
    return plan


def _with_region_codes(
    plan: ImportPlan, features: list[BoundaryFeature], level: Level
) -> list[BoundaryFeature]:
    """The features with their own and their parents' codes as our 12-digit region codes, so a
    real file's ``330803`` matches the region ``330803000000``; the others become problems."""
    parent_level = PARENT_LEVEL.get(level, "city")
    kept: list[BoundaryFeature] = []
    for feature in features:
        try:
            code = region_code(feature.code, level.value)
            parent = feature.parent_code
            if parent is not None:
                parent = region_code(parent, parent_level)
        except ValidationError as error:
            plan.unplaced.append(Problem(feature.index, feature.code, error.detail))
            continue
        # A copy: the read file keeps the codes it carries.
        kept.append(dataclasses.replace(feature, code=code, parent_code=parent))
    # "330803" and "330803000000" in one file are the same region twice.
    twice = {code for code, n in Counter(f.code for f in kept).items() if n > 1}
    plan.unplaced.extend(
        Problem(f.index, f.code, "the code appears more than once in the file (as normalised)")
        for f in kept
        if f.code in twice
    )
    return [f for f in kept if f.code not in twice]


def _compare_regions(
    session: Session, plan: ImportPlan, features: list[BoundaryFeature], level: Level
) -> None:
    query = sa.select(Region).where(Region.level == level.value)
    if plan.parents:
        query = query.where(
            sa.or_(
                Region.parent_code.in_(plan.parents), Region.code.in_([f.code for f in features])
            )
        )
    else:
        query = query.where(Region.code.in_([f.code for f in features]))
    existing = {r.code: r for r in session.scalars(query)}

    def differences(old: Region, feature: BoundaryFeature) -> list[str]:
        what = [] if old.name == feature.name else ["name"]
        if not _same_geom(old, feature):
            what.append("geometry")
        if feature.parent_code is not None and old.parent_code != feature.parent_code:
            what.append("parent")
        return what

    _classify(plan, features, existing, differences)


def _compare_grids(session: Session, plan: ImportPlan, features: list[BoundaryFeature]) -> None:
    codes = [f.code for f in features]
    existing = {
        g.code: g
        for g in session.scalars(
            sa.select(Grid).where(
                Grid.valid_to.is_(None),
                sa.or_(Grid.village_code.in_(plan.parents), Grid.code.in_(codes)),
            )
        )
    }

    def differences(old: Grid, feature: BoundaryFeature) -> list[str]:
        what = [] if old.name == feature.name else ["name"]
        if old.village_code != feature.parent_code:
            what.append("village")
        if feature.households is not None and feature.households != old.households:
            what.append("households")
        if feature.population is not None and feature.population != old.population:
            what.append("population")
        if not _same_geom(old, feature):
            what.append("geometry")
        return what

    _classify(plan, features, existing, differences)


def _same_geom(old: Region | Grid, feature: BoundaryFeature) -> bool:
    from geoalchemy2.shape import to_shape

    return same_geometry(to_shape(old.geom), feature.geom)


def _classify(
    plan: ImportPlan,
    features: list[BoundaryFeature],
    existing: dict[str, Any],
    differences: Callable[[Any, BoundaryFeature], list[str]],
) -> None:
    """Sort the read features into added, changed (with what differs) and unchanged against
    the ``existing`` rows by code; the existing ones the file does not name are retired."""
    for feature in features:
        old = existing.get(feature.code)
        if old is None:
            plan.added.append(feature)
        elif what := differences(old, feature):
            plan.changed.append((feature, what))
        else:
            plan.unchanged.append(feature.code)
    codes = {f.code for f in features}
    plan.retired = sorted((c, r.name) for c, r in existing.items() if c not in codes)


# --- writing ------------------------------------------------------------------------------------


def commit_import(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    now: datetime | None = None,
    lock_timeout_s: float = DEFAULT_PLAN_LOCK_TIMEOUT_S,
    snap_m: float = DEFAULT_SNAP_M,
) -> dict[str, int]:
    """Write an import plan in the caller's transaction (grids: new dated versions; open cases
    re-assigned with the snap distance ``snap_m``, as a plan apply does)."""
    if plan.level is Level.GRID:
        return _commit_grids(
            session, plan, actor=actor, now=now, lock_timeout_s=lock_timeout_s, snap_m=snap_m
        )
    for feature in plan.added:
        session.add(
            Region(
                code=feature.code,
                name=feature.name,
                level=plan.level.value,
                parent_code=feature.parent_code,
                households=feature.households,
                population=feature.population,
                geom=from_shape(feature.geom, srid=SRID),
            )
        )
    for feature, _ in plan.changed:
        region = session.get(Region, feature.code)
        assert region is not None
        region.name = feature.name
        region.geom = from_shape(feature.geom, srid=SRID)
        if feature.parent_code is not None:
            region.parent_code = feature.parent_code
        if feature.households is not None:
            region.households = feature.households
        if feature.population is not None:
            region.population = feature.population
    session.flush()
    # Regions are not versioned and cases point at them: missing ones are reported, not deleted.
    return {**plan.summary(), "retired": 0}


def _commit_grids(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    now: datetime | None,
    lock_timeout_s: float,
    snap_m: float,
) -> dict[str, int]:
    # The same locks as a plan apply, so an import and an apply on one village never interleave.
    grid_versions.lock_regions(session, plan.parents, lock_timeout_s=lock_timeout_s)
    # Read the clock under the lock, so this change is never dated before one it waited for.
    now = now or utcnow()
    towns = dict(
        session.execute(
            sa.select(Region.code, Region.parent_code).where(Region.code.in_(plan.parents))
        ).all()
    )
    touched = [f.code for f, _ in plan.changed] + [code for code, _ in plan.retired]
    old_by_code = {g.code: g for g in grid_versions.lock_current(session, Grid.code.in_(touched))}
    create = []
    for feature in [*plan.added, *(f for f, _ in plan.changed)]:
        previous = old_by_code.get(feature.code)
        village = feature.parent_code or (previous.village_code if previous else None)
        town = towns.get(village) if village is not None else None
        if village is None or town is None:
            raise ValidationError(f"grid {feature.code}: village {village} has no town")
        create.append(
            grid_versions.NewGridVersion(
                code=feature.code,
                name=feature.name,
                village_code=village,
                town_code=town,
                households=_given_or(feature.households, previous.households if previous else 0),
                population=_given_or(feature.population, previous.population if previous else 0),
                geom=feature.geom,
            )
        )
    written = grid_versions.write_versions(
        session,
        grid_versions.GridWrite(
            retire=list(old_by_code.values()),
            create=create,
            actor=actor,
            source="import",
            note="boundary import",
            reason="grid boundaries re-imported",
            snap_m=snap_m,
        ),
        now=now,
    )
    return {
        **plan.summary(),
        "cases_moved": written.cases.moved,
        "cases_unassigned": written.cases.unassigned,
    }


def _given_or(value: int | None, default: int) -> int:
    return default if value is None else value


# --- export -------------------------------------------------------------------------------------


def export_frame(
    session: Session, level: Level, *, parent: str | None = None, at: datetime | None = None
) -> Any:
    """The boundaries of ``level`` (grids: the versions in force at ``at``) as a GeoDataFrame."""
    import geopandas as gpd

    if level is Level.GRID:
        query = sa.select(
            Grid.code,
            Grid.name,
            Grid.village_code.label("parent"),
            Grid.version,
            Grid.town_code.label("town"),
            Grid.households,
            Grid.population,
            sa.func.to_char(Grid.valid_from, 'YYYY-MM-DD"T"HH24:MI:SSOF').label("valid_from"),
            sa.func.ST_AsBinary(Grid.geom).label("wkb"),
        ).order_by(Grid.code)
        if at is None:
            query = query.where(Grid.valid_to.is_(None))
        else:
            query = query.where(
                Grid.valid_from <= at, sa.or_(Grid.valid_to.is_(None), Grid.valid_to > at)
            )
        if parent is not None:
            query = query.where(sa.or_(Grid.village_code == parent, Grid.town_code == parent))
    else:
        query = (
            sa.select(
                Region.code,
                Region.name,
                Region.parent_code.label("parent"),
                Region.households,
                Region.population,
                sa.func.ST_AsBinary(Region.geom).label("wkb"),
            )
            .where(Region.level == level.value)
            .order_by(Region.code)
        )
        if parent is not None:
            query = query.where(Region.parent_code == parent)
    rows = [dict(r._mapping) for r in session.execute(query)]
    geoms = [shapely.from_wkb(bytes(r.pop("wkb"))) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=f"EPSG:{SRID}")


def write_frame(frame: Any, path: Path, fmt: str) -> None:
    """Write a GeoDataFrame as GeoJSON, GeoPackage or Shapefile (UTF-8, with a .cpg)."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if frame.empty:
        raise ValidationError("nothing to export: no boundaries match")
    options: dict[str, Any] = {}
    if fmt == "shp":
        options["encoding"] = "UTF-8"
    if fmt == "geojson":
        # 15 significant digits: the stored doubles survive the round trip (~1e-13°).
        options["layer_options"] = {"COORDINATE_PRECISION": 15, "RFC7946": "NO"}
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_file(path, driver=FORMATS[fmt], engine="pyogrio", **options)
