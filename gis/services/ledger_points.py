"""Coordinates of ledger rows -> WGS84, per file or per row, with the obvious mistakes named.

Accepted: WGS84, GCJ-02 (Amap, Tencent and phone maps), BD-09 (Baidu), CGCS2000 lon/lat and
CGCS2000 Gauss–Krüger metres (an EPSG code such as EPSG:4549, or ``CGCS2000-GK`` when the
eastings carry their zone number, 40500000.0 style). The conversions are ``gis.geo``'s; this
module only decides which one each row needs and says what looks wrong: swapped lon/lat,
metres given as degrees, surveyors' X/Y order (X is the northing there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from gis.errors import InvalidCoordinatesError, UnknownCrsError
from gis.geo import Crs, check_lonlat, parse_crs, to_wgs84
from gis.services.ledger_tables import RowError, Table, cell_text

# Names in ledgers that gis.geo.parse_crs does not know, lower-cased.
_LEDGER_CRS = {
    "高德": "GCJ-02",
    "国测局": "GCJ-02",
    "火星": "GCJ-02",
    "火星坐标": "GCJ-02",
    "gcj": "GCJ-02",
    "百度": "BD-09",
    "bd": "BD-09",
    "gps": "WGS84",
    "wgs": "WGS84",
    "国家2000": "CGCS2000",
    "2000": "CGCS2000",
    "cgcs": "CGCS2000",
}
_GK_NAMES = {"gk", "cgcs2000-gk", "cgcs2000gk", "cgcs2000 gk", "高斯", "高斯克吕格", "2000高斯"}
# CGCS2000 Gauss–Krüger EPSG codes: 3-degree zones 25–45 with the zone in the easting
# (4513–4533) and without (4534–4554), 6-degree zones 13–23 with (4491–4501) and without
# (4502–4512).
_GK_EPSG = range(4491, 4555)
# Above this a "degree" is surely metres (eastings and northings are six to eight digits).
_DEGREE_LIMIT = 1_000.0


@dataclass(frozen=True)
class PointCrs:
    """How a row's coordinates are given: lon/lat in ``geographic``, or metres in ``epsg``
    (``epsg`` None with ``projected``: Gauss–Krüger with the zone read from the easting)."""

    label: str
    geographic: Crs | None = None
    projected: bool = False
    epsg: int | None = None


def parse_point_crs(text: str | None) -> PointCrs:
    """A ledger's CRS name (WGS84, GCJ-02, 高德, BD-09, CGCS2000, EPSG:4549, CGCS2000-GK…)."""
    if text is None or not text.strip():
        return PointCrs("EPSG:4326", geographic=Crs.WGS84)
    key = text.strip().lower()
    if key in _GK_NAMES:
        return PointCrs("CGCS2000-GK", projected=True)
    digits = key.removeprefix("epsg:")
    if digits.isdigit() and int(digits) in _GK_EPSG:
        return PointCrs(f"EPSG:{digits}", projected=True, epsg=int(digits))
    try:
        crs = parse_crs(_LEDGER_CRS.get(key, text))
    except UnknownCrsError as error:
        raise UnknownCrsError(
            f"{error.detail}; for Gauss–Krüger metres give CGCS2000-GK or an EPSG code "
            "4491–4554 (e.g. EPSG:4549, CGCS2000 3-degree GK, central meridian 120°E)"
        ) from None
    return PointCrs(crs.value, geographic=crs)


@lru_cache(maxsize=64)
def _to_cgcs2000(epsg: int) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4490", always_xy=True)


def _number(value: Any) -> float | None:
    text = cell_text(value)
    if text is None:
        return None
    return float(text.replace(",", ""))


@dataclass
class Points:
    """WGS84 lon/lat of each good row, by row number, and what was noticed on the way."""

    lonlat: dict[int, tuple[float, float]]
    errors: list[RowError]
    notes: list[str]
    crs_used: dict[int, str]


def resolve_points(table: Table, file_crs: str | None) -> Points:
    """The WGS84 position of every row of ``table``; a bad row is a ``RowError``."""
    default = parse_point_crs(file_crs or table.layer_crs)
    header = table.headers
    lon_col = "lon" if "lon" in header else "x"
    lat_col = "lat" if "lat" in header else "y"
    result = Points({}, [], [], {})
    if lon_col not in header or lat_col not in header:
        result.errors.append(
            RowError(None, None, None, "no coordinate columns: give 经度/lon and 纬度/lat, or X/Y")
        )
        return result
    groups: dict[Crs, list[tuple[int, float, float]]] = {}
    surveyor_order = 0
    for number, row in table.rows:
        try:
            crs = parse_point_crs(cell_text(row.get("crs"))) if row.get("crs") else default
        except UnknownCrsError as error:
            result.errors.append(
                RowError(number, header.get("crs"), cell_text(row.get("crs")), error.detail)
            )
            continue
        try:
            first, second = _number(row.get(lon_col)), _number(row.get(lat_col))
        except ValueError:
            bad = row.get(lon_col) if _is_bad(row.get(lon_col)) else row.get(lat_col)
            column = header[lon_col] if _is_bad(row.get(lon_col)) else header[lat_col]
            result.errors.append(RowError(number, column, cell_text(bad), "not a number"))
            continue
        if first is None or second is None:
            column = header[lon_col] if first is None else header[lat_col]
            result.errors.append(RowError(number, column, None, "no coordinate"))
            continue
        result.crs_used[number] = crs.label
        if crs.projected:
            converted = _projected(number, first, second, crs, header[lon_col])
            if isinstance(converted, RowError):
                result.errors.append(converted)
                continue
            (first, second), swapped = converted
            surveyor_order += swapped
            crs = PointCrs("EPSG:4490", geographic=Crs.CGCS2000)
        elif abs(first) > _DEGREE_LIMIT or abs(second) > _DEGREE_LIMIT:
            result.errors.append(
                RowError(
                    number,
                    header[lon_col],
                    f"{first:g}, {second:g}",
                    "these look like metres (Gauss–Krüger), not degrees: give --crs "
                    "CGCS2000-GK (eastings with the zone number) or the EPSG code (e.g. EPSG:4549)",
                )
            )
            continue
        try:
            check_lonlat(first, second)
        except InvalidCoordinatesError as error:
            result.errors.append(
                RowError(number, header[lon_col], f"{first:g}, {second:g}", error.detail)
            )
            continue
        assert crs.geographic is not None
        groups.setdefault(crs.geographic, []).append((number, first, second))
    if surveyor_order:
        result.notes.append(
            f"{surveyor_order} row(s) give X as the northing (surveyors' order); read as such"
        )
    for geographic, items in groups.items():
        lons = np.array([i[1] for i in items])
        lats = np.array([i[2] for i in items])
        wgs_lon, wgs_lat = to_wgs84(lons, lats, geographic)
        for (number, _, _), lon, lat in zip(items, wgs_lon, wgs_lat, strict=True):
            result.lonlat[number] = (float(lon), float(lat))
    return result


def _is_bad(value: Any) -> bool:
    text = cell_text(value)
    if text is None:
        return False
    try:
        float(text.replace(",", ""))
    except ValueError:
        return True
    return False


def _projected(
    number: int, first: float, second: float, crs: PointCrs, column: str
) -> tuple[tuple[float, float], bool] | RowError:
    """CGCS2000 lon/lat of a Gauss–Krüger pair, and whether it came northing first."""
    easting, northing, swapped = first, second, False
    # Northings in China are 0.1–6 million metres; eastings 0.2–0.8 million, or with the zone
    # number in front, 13–45 million. A pair whose first value is northing-sized is in the
    # surveyors' order (X north, Y east).
    if 1e6 <= first < 1e7 and (second < 1e6 or second >= 1e7):
        easting, northing, swapped = second, first, True
    epsg = crs.epsg
    if epsg is None:
        zone = int(easting // 1_000_000)
        if 25 <= zone <= 45:
            epsg = 4488 + zone  # 3-degree zone with the zone number: EPSG:4513 is zone 25
        elif 13 <= zone <= 23:
            epsg = 4478 + zone  # 6-degree zone with the zone number: EPSG:4491 is zone 13
        else:
            return RowError(
                number,
                column,
                f"{first:.2f}, {second:.2f}",
                "the easting carries no zone number (e.g. 40 in 40500000): give the EPSG code "
                "of the zone instead of CGCS2000-GK (e.g. EPSG:4549 for central meridian 120°E)",
            )
    lon, lat = _to_cgcs2000(epsg).transform(easting, northing)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return RowError(number, column, f"{first:.2f}, {second:.2f}", f"not a point of EPSG:{epsg}")
    return (float(lon), float(lat)), swapped
