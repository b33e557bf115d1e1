"""A plan's grids as a file for QGIS (GeoPackage or GeoJSON) and a file read back as a new draft.

Export writes the draft's proposed grids, exactly as stored (lon/lat, EPSG:4326), one layer
``grids`` with the fields ``code``, ``name``, ``village``, ``households``, ``population``,
``members`` (member ids, ``"3,7"``: a GeoPackage has no list type) and ``member_names`` (for
people; ignored when read back). GDAL writes both formats (pyogrio), so QGIS and ``ogrinfo``
open them as any other layer.

Import reads such a file (or any polygon layer with a ``code`` field) into a new draft of the
village, validated, balanced and measured like every plan (``gis.services.planning``). What the
editor cannot show on a map is refused before anything is written, with the reason:

- a file GDAL cannot read, with no polygon layer, no ``code`` field or more grids than a plan
  may have;
- a CRS other than those a plan's grids may be given in (``gis.services.ogc_crs``: CRS84 /
  EPSG:4326, EPSG:4490, EPSG:4549); a file without one is read as lon/lat (GeoJSON's rule);
- coordinates that are not lon/lat after conversion (metres in a file that claims degrees);
- a geometry that is not a polygon, or an invalid one (crossing itself…): unlike a JSON plan,
  a file is not repaired silently — fix it in QGIS (Vector → Geometry Tools → Check Validity);
- a grid mostly outside the village (less than ``MIN_INSIDE`` of its area inside): the sign of
  a wrong CRS or of another village's file. Smaller spills are the plan's validation errors,
  drawn on the map like any other.

``gis.ingest`` reads boundary files for the county's own imports, but services may not import
it (docs/architecture.md); what is shared is GDAL (pyogrio) and pyproj, not code.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from gis.errors import (
    InvalidCoordinatesError,
    InvalidGeometryError,
    UnknownCrsError,
    ValidationError,
)
from gis.geo import area_m2
from gis.layers.grids import list_members
from gis.layers.plans import Plan, PlanScope
from gis.services import ogc_plans, planning
from gis.services.ledger_tables import cell_text
from gis.services.ogc_crs import supported
from gis.settings import Settings


@dataclass(frozen=True)
class FileFormat:
    """A file format the editor exports and imports."""

    driver: str
    media_type: str
    suffix: str


FORMATS = {
    "gpkg": FileFormat("GPKG", "application/geopackage+sqlite3", ".gpkg"),
    "geojson": FileFormat("GeoJSON", "application/geo+json", ".geojson"),
}
LAYER = "grids"
MIN_INSIDE = 0.5  # share of a grid's area inside the village below which the file is refused


# --- export -------------------------------------------------------------------------------------


def _member_text(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def export_plan(session: Session, plan: Plan, fmt: str) -> bytes:
    """The plan's proposed grids as a GeoPackage or GeoJSON file (its bytes)."""
    import geopandas as gpd
    import pyogrio

    if fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    features = ogc_plans.features(plan)
    town = planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)
    named = sorted({m for f in features for m in _ids(f)})
    names = {m.id: m.name for m in list_members(session, town_code=town, also=named)}
    rows = []
    for feature in features:
        props = feature.get("properties") or {}
        ids = _ids(feature)
        rows.append(
            {
                "code": props.get("code"),
                "name": props.get("name"),
                "village": props.get("village"),
                "households": props.get("households"),
                "population": props.get("population"),
                "members": _member_text(ids),
                "member_names": ",".join(names.get(i, str(i)) for i in ids),
            }
        )
    geoms = [shape(f["geometry"]) for f in features]
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
    for column in ("households", "population"):
        frame[column] = frame[column].astype("Int64")  # integers, empty where estimated
    spec = FORMATS[fmt]
    options: dict[str, Any] = {}
    if fmt == "geojson":
        # 15 decimals: the stored doubles come back exactly enough to keep shared edges shared.
        options["layer_options"] = {"COORDINATE_PRECISION": 15, "RFC7946": "NO"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"plan-{plan.id}{spec.suffix}"
        pyogrio.write_dataframe(frame, path, layer=LAYER, driver=spec.driver, **options)
        return path.read_bytes()


def _ids(feature: dict[str, Any]) -> list[int]:
    props = feature.get("properties") or {}
    raw = props.get("members", props.get("member")) or []
    return [m for m in (raw if isinstance(raw, list) else [raw]) if isinstance(m, int)]


def filename(plan: Plan, fmt: str) -> str:
    """The download's file name: ``plan-<id>-<village>.gpkg``."""
    return f"plan-{plan.id}-{plan.scope_code}{FORMATS[fmt].suffix}"


# --- import -------------------------------------------------------------------------------------


def _read_frame(data: bytes, name: str) -> Any:
    import pyogrio

    suffix = Path(name).suffix.lower()
    if suffix not in {f.suffix for f in FORMATS.values()} | {".json"}:
        raise ValidationError(
            f"{name}: the editor imports a GeoPackage (.gpkg) or GeoJSON (.geojson) file"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            layers = [str(row[0]) for row in pyogrio.list_layers(path)]
            layer = LAYER if LAYER in layers else (layers[0] if layers else None)
            frame = pyogrio.read_dataframe(path, layer=layer)
        except Exception as error:  # pyogrio raises DataSourceError, DataLayerError, OSError…
            raise ValidationError(
                f"{name} cannot be read as GeoPackage or GeoJSON ({error})"
            ) from None
    if frame.empty:
        raise ValidationError(f"{name} has no features: a plan needs at least one grid")
    return frame


def _to_lonlat(frame: Any, name: str) -> Any:
    """The frame in lon/lat (EPSG:4326), or 422 if its CRS is not one a plan may be given in."""
    if frame.crs is None:
        return frame  # GeoJSON without "crs" is lon/lat by definition (RFC 7946)
    wgs84 = CRS.from_epsg(4326)
    if frame.crs.equals(wgs84) or frame.crs.equals(CRS.from_user_input("OGC:CRS84")):
        return frame
    accepted = {c.srid for c in supported().values()}
    epsg = frame.crs.to_epsg()
    if epsg not in accepted:
        label = f"EPSG:{epsg}" if epsg else (frame.crs.name or frame.crs.to_string())
        raise UnknownCrsError(
            f"{name} is in {label}; the editor reads EPSG:4326 (WGS84 lon/lat), EPSG:4490 "
            "(CGCS2000) or EPSG:4549 (CGCS2000 3-degree Gauss-Kruger CM 120E): save it in one "
            "of these (QGIS: Export → Save Features As → CRS)",
            crs=label,
        )
    return frame.to_crs(wgs84)


def _count(value: Any, what: str) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{what} must be a whole number ≥ 0, got {value!r}")
    return value


def _member_ids(value: Any, what: str) -> list[int]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):  # "3,7" as exported; "[3, 7]" as a list read as text
        parts = [p for p in re.split(r"[,，;\s]+", value.strip("[]() ")) if p]
    elif isinstance(value, list | tuple | np.ndarray):
        parts = list(value)
    else:
        parts = [value]
    ids = []
    for part in parts:
        try:
            ids.append(int(str(part)))
        except ValueError:
            raise ValidationError(
                f"{what}: members must be grid-member ids such as 3,7, got {value!r}"
            ) from None
    return sorted(set(ids))


def _checked(geom: BaseGeometry | None, what: str) -> BaseGeometry:
    if geom is None or geom.is_empty:
        raise InvalidGeometryError(f"{what} has no geometry")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometryError(f"{what} is a {geom.geom_type}: a grid is a polygon")
    geom = shapely.force_2d(geom)
    try:
        planning.check_coordinates(geom, what)
    except InvalidCoordinatesError as error:
        raise InvalidCoordinatesError(
            f"{error.detail} — these are not lon/lat degrees: is the file's CRS right?"
        ) from error
    if not geom.is_valid:
        raise InvalidGeometryError(
            f"{what} is invalid ({explain_validity(geom)}); fix it in QGIS (Vector → Geometry "
            "Tools → Check Validity) and import it again"
        )
    return geom


def read_proposal(
    data: bytes, name: str, village_geom: BaseGeometry, village: str
) -> dict[str, Any]:
    """A GeoPackage/GeoJSON file's grids as a plan proposal (GeoJSON, lon/lat), or a 4xx saying
    what in the file cannot be a grid of ``village``."""
    frame = _to_lonlat(_read_frame(data, name), name)
    if len(frame) > planning.MAX_GRIDS_PER_PLAN:
        raise ValidationError(
            f"{name} has {len(frame)} features; a plan has at most "
            f"{planning.MAX_GRIDS_PER_PLAN} grids"
        )
    columns = [str(c) for c in frame.columns if c != "geometry"]
    if "code" not in columns:
        raise ValidationError(
            f"{name} has no field 'code' (fields: {', '.join(columns) or 'none'}); each grid "
            "needs its code"
        )
    geoms = frame.geometry.values
    features = []
    for index, row in enumerate(frame.drop(columns="geometry").to_dict("records")):
        code = cell_text(row.get("code"))
        what = f"feature {index + 1}" + (f" (grid {code})" if code else "")
        if code is None:
            raise ValidationError(f"{what} has no code")
        geom = _checked(geoms[index], what)
        inside = area_m2(planning.polygonal(geom.intersection(village_geom)))
        total = area_m2(planning.polygonal(geom))
        if total > 0 and inside / total < MIN_INSIDE:
            raise ValidationError(
                f"{what} lies outside village {village} ({inside / total:.0%} of its area "
                "inside): is it this village's file, and is its CRS right?",
                grid=code,
            )
        props: dict[str, Any] = {"code": code}
        name_value = cell_text(row.get("name"))
        if name_value is not None:
            props["name"] = name_value[:100]
        for field in ("households", "population"):
            count = _count(row.get(field), f"{what}: {field}")
            if count is not None:
                props[field] = count
        members = _member_ids(row.get("members", row.get("member")), what)
        if members:
            props["member"] = members
        features.append(
            {"type": "Feature", "id": code, "geometry": planning.geojson(geom), "properties": props}
        )
    return {"type": "FeatureCollection", "features": features}


def import_draft(
    session: Session,
    *,
    village: str,
    data: bytes,
    name: str,
    actor: str,
    settings: Settings,
    title: str | None = None,
    now: datetime | None = None,
) -> Plan:
    """A new draft plan of ``village`` with the file's grids, validated like any plan; nothing
    is written if the file is refused."""
    scope = planning.load_scope(session, PlanScope.VILLAGE, village)
    proposed = read_proposal(data, name, scope.geom, village)
    token, _ = planning.scope_version(session, PlanScope.VILLAGE, village)
    return planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village,
        proposed=proposed,
        based_on_version=token,
        actor=actor,
        settings=settings,
        title=title or f"imported from {Path(name).name}"[:200],
        now=now,
    )


__all__ = ["FORMATS", "export_plan", "filename", "import_draft", "read_proposal"]
