"""Coordinate handling for the coordinate systems used in China; pure functions, no database.

Chinese web maps do not publish WGS84: Amap, Tencent and DataV use GCJ-02 (the state-mandated
obfuscation of WGS84) and Baidu uses BD-09 (a further distortion of GCJ-02). The service stores
everything in EPSG:4326, so every import and every request is converted here first.

All transforms are vectorised with numpy because the bulk importers convert millions of vertices;
they accept a pair of floats or a pair of float arrays and return the same kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from gis.errors import InvalidCoordinatesError, UnknownCrsError

FloatArray = npt.NDArray[np.float64]
# Either a pair of Python floats or a pair of numpy arrays; the result has the same kind.
Coord = TypeVar("Coord", float, FloatArray)
LonLatFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


class Crs(StrEnum):
    """Coordinate reference systems the service accepts for input and output."""

    WGS84 = "EPSG:4326"
    CGCS2000 = "EPSG:4490"
    GCJ02 = "GCJ-02"
    BD09 = "BD-09"


# Lower-cased spelling -> CRS; the canonical values are added below so both forms parse.
_CRS_ALIASES: dict[str, Crs] = {
    "wgs84": Crs.WGS84,
    "wgs-84": Crs.WGS84,
    "4326": Crs.WGS84,
    "epsg:4326": Crs.WGS84,
    "cgcs2000": Crs.CGCS2000,
    "4490": Crs.CGCS2000,
    "epsg:4490": Crs.CGCS2000,
    "gcj02": Crs.GCJ02,
    "gcj-02": Crs.GCJ02,
    "bd09": Crs.BD09,
    "bd-09": Crs.BD09,
    "bd09ll": Crs.BD09,
}
_CRS_ALIASES.update({member.value.lower(): member for member in Crs})


def crs_spellings() -> list[str]:
    """Every spelling ``parse_crs`` accepts as written here (it also ignores case): the
    canonical names first, then the aliases."""
    canonical = [member.value for member in Crs]
    lowered = {name.lower() for name in canonical}
    return canonical + sorted(alias for alias in _CRS_ALIASES if alias not in lowered)


def parse_crs(text: str | None) -> Crs:
    """Parse a CRS name or alias case-insensitively; None means WGS84."""
    if text is None:
        return Crs.WGS84
    crs = _CRS_ALIASES.get(text.strip().lower())
    if crs is None:
        canonical = ", ".join(member.value for member in Crs)
        aliases = ", ".join(sorted(set(_CRS_ALIASES) - {m.value.lower() for m in Crs}))
        raise UnknownCrsError(
            f"unknown coordinate reference system {text!r}; accepted: {canonical} "
            f"(case-insensitive; aliases: {aliases})"
        )
    return crs


# --- GCJ-02 -------------------------------------------------------------------------------------
# Constants of the published GCJ-02 algorithm: it uses the Krasovsky 1940 semi-major axis and a
# slightly different eccentricity, not WGS84's, so these must not be "corrected".
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# BD-09's own angular scale; using math.pi here instead is a known bug in some libraries.
_X_PI = math.pi * 3000.0 / 180.0

# Rough bounding box of China used by every GCJ-02 implementation; outside it GCJ-02 == WGS84.
_CHINA_LON_MIN, _CHINA_LON_MAX = 72.004, 137.8347
_CHINA_LAT_MIN, _CHINA_LAT_MAX = 0.8293, 55.8271

# Iterative inverses stop when the step is below this (degrees; 1e-12 deg is ~0.1 µm), far below
# the 1e-9 deg target, and give up after _MAX_ITER steps (the contraction factor is ~3e-3, so
# convergence takes 4-5 steps; the cap is only a guard: NaN and far points never iterate).
_INVERSE_TOL_DEG = 1e-12
_MAX_ITER = 30


def _as_arrays(lon: Any, lat: Any) -> tuple[FloatArray, FloatArray]:
    """Broadcast the inputs to float64 arrays of a common shape."""
    lon_a, lat_a = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return lon_a, lat_a


def _like_input(lon_in: Any, lat_in: Any, lon: FloatArray, lat: FloatArray) -> tuple[Any, Any]:
    """Return floats when both inputs were scalars, arrays otherwise."""
    if np.ndim(lon_in) == 0 and np.ndim(lat_in) == 0:
        return float(lon), float(lat)
    return lon, lat


def _out_of_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """Vectorised bounding-box test; NaN compares False and so counts as outside."""
    inside = (
        (lon >= _CHINA_LON_MIN)
        & (lon <= _CHINA_LON_MAX)
        & (lat >= _CHINA_LAT_MIN)
        & (lat <= _CHINA_LAT_MAX)
    )
    return ~inside


def out_of_china(lon: float, lat: float) -> bool:
    """True when the point is outside the rough China bounding box where GCJ-02 applies."""
    return bool(_out_of_china(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)))


def _boxed(
    lon: FloatArray, lat: FloatArray
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """The points outside the China box, and the points with those replaced by one inside it.

    The formulas below only mean something inside the box; near the poles they overflow, and the
    inverses' iterations diverge there or never end on NaN. Points outside keep their input
    (identity), so they are computed at a stand-in and dropped by the caller's ``np.where``."""
    outside = _out_of_china(lon, lat)
    return outside, np.where(outside, 105.0, lon), np.where(outside, 35.0, lat)


def _gcj_delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 minus WGS84 in degrees at a WGS84 point, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    # The periodic "noise" term in x is shared by both components.
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0

    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    d_lat = d_lat + common
    d_lat = d_lat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat = (
        d_lat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )

    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    d_lon = d_lon + common
    d_lon = d_lon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon = (
        d_lon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )

    # The offsets above are in metres on the Krasovsky ellipsoid; convert with the meridian and
    # parallel radii of curvature at this latitude.
    rad_lat = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of the forward GCJ-02 transform."""
    outside, in_lon, in_lat = _boxed(lon, lat)
    d_lon, d_lat = _gcj_delta(in_lon, in_lat)
    return np.where(outside, lon, in_lon + d_lon), np.where(outside, lat, in_lat + d_lat)


def _gcj_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of the exact GCJ-02 inverse by fixed-point iteration."""
    # GCJ-02 has no closed-form inverse. Solve w + delta(w) = g by iterating w <- g - delta(w):
    # delta varies by ~3e-3 deg per deg, so the map is a strong contraction and each step gains
    # about 2.5 digits. Newton would need the Jacobian for no real gain.
    # Whether to transform at all is decided on the GCJ-02 input, the only point we know; the
    # box is rough anyway, so the few metres near its edge where this differs do not matter.
    outside, g_lon, g_lat = _boxed(lon, lat)
    w_lon, w_lat = g_lon, g_lat
    for _ in range(_MAX_ITER):
        d_lon, d_lat = _gcj_delta(w_lon, w_lat)
        new_lon = g_lon - d_lon
        new_lat = g_lat - d_lat
        step = np.maximum(np.abs(new_lon - w_lon), np.abs(new_lat - w_lat))
        w_lon, w_lat = new_lon, new_lat
        if step.size == 0 or not step.max() > _INVERSE_TOL_DEG:
            break
    return np.where(outside, lon, w_lon), np.where(outside, lat, w_lat)


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of GCJ-02 -> BD-09."""
    # BD-09 perturbs the polar form of GCJ-02 (radius and angle about 0,0) and then shifts it.
    outside, g_lon, g_lat = _boxed(lon, lat)
    z = np.hypot(g_lon, g_lat) + 0.00002 * np.sin(g_lat * _X_PI)
    theta = np.arctan2(g_lat, g_lon) + 0.000003 * np.cos(g_lon * _X_PI)
    bd_lon = z * np.cos(theta) + 0.0065
    bd_lat = z * np.sin(theta) + 0.006
    return np.where(outside, lon, bd_lon), np.where(outside, lat, bd_lat)


def _bd_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of BD-09 -> GCJ-02, exact by fixed-point iteration."""
    # The widely published inverse evaluates the sin/cos perturbations at the BD-09 point instead
    # of the GCJ-02 one; that is wrong by up to ~0.25 m. Use it as the first guess and then solve
    # gcj_to_bd(g) = b exactly with the same contraction iteration as for GCJ-02.
    outside, b_lon, b_lat = _boxed(lon, lat)
    x = b_lon - 0.0065
    y = b_lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    g_lon = z * np.cos(theta)
    g_lat = z * np.sin(theta)
    for _ in range(_MAX_ITER):
        # Unmasked forward: the iteration must not see the identity branch outside the box.
        z_f = np.hypot(g_lon, g_lat) + 0.00002 * np.sin(g_lat * _X_PI)
        theta_f = np.arctan2(g_lat, g_lon) + 0.000003 * np.cos(g_lon * _X_PI)
        err_lon = z_f * np.cos(theta_f) + 0.0065 - b_lon
        err_lat = z_f * np.sin(theta_f) + 0.006 - b_lat
        g_lon = g_lon - err_lon
        g_lat = g_lat - err_lat
        step = np.maximum(np.abs(err_lon), np.abs(err_lat))
        if step.size == 0 or not step.max() > _INVERSE_TOL_DEG:
            break
    return np.where(outside, lon, g_lon), np.where(outside, lat, g_lat)


def _wgs_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of WGS84 -> BD-09 via GCJ-02."""
    return _gcj_to_bd(*_wgs_to_gcj(lon, lat))


def _bd_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of BD-09 -> WGS84 via GCJ-02."""
    return _gcj_to_wgs(*_bd_to_gcj(lon, lat))


def _apply(fn: LonLatFn, lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Run an array transform on floats or arrays and return the same kind."""
    lon_a, lat_a = _as_arrays(lon, lat)
    out_lon, out_lat = _like_input(lon, lat, *fn(lon_a, lat_a))
    return cast(Coord, out_lon), cast(Coord, out_lat)


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert WGS84 lon/lat to GCJ-02 (identity outside China)."""
    return _apply(_wgs_to_gcj, lon, lat)


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert GCJ-02 lon/lat to WGS84 exactly (iterated inverse; identity outside China)."""
    return _apply(_gcj_to_wgs, lon, lat)


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert GCJ-02 lon/lat to BD-09 (identity outside China)."""
    return _apply(_gcj_to_bd, lon, lat)


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert BD-09 lon/lat to GCJ-02 exactly (iterated inverse; identity outside China)."""
    return _apply(_bd_to_gcj, lon, lat)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert WGS84 lon/lat to BD-09 via GCJ-02."""
    return _apply(_wgs_to_bd, lon, lat)


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Convert BD-09 lon/lat to WGS84 via GCJ-02."""
    return _apply(_bd_to_wgs, lon, lat)


def _identity(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Array form of the no-op transform."""
    return lon, lat


# CGCS2000 (EPSG:4490) and WGS84 (EPSG:4326) are different datums, but their realisations agree
# to a few centimetres in China, far below the accuracy of any source we import (and of GCJ-02
# itself); treating them as identical avoids a pointless, lossy-looking datum shift.
_TO_WGS84: dict[Crs, LonLatFn] = {
    Crs.WGS84: _identity,
    Crs.CGCS2000: _identity,
    Crs.GCJ02: _gcj_to_wgs,
    Crs.BD09: _bd_to_wgs,
}
_FROM_WGS84: dict[Crs, LonLatFn] = {
    Crs.WGS84: _identity,
    Crs.CGCS2000: _identity,
    Crs.GCJ02: _wgs_to_gcj,
    Crs.BD09: _wgs_to_bd,
}


def to_wgs84_fn(crs: Crs | str) -> LonLatFn:
    """The array function converting from ``crs`` to WGS84, e.g. for ``transform_geometry``."""
    return _TO_WGS84[parse_crs(crs)]


def from_wgs84_fn(crs: Crs | str) -> LonLatFn:
    """The array function converting from WGS84 to ``crs``, e.g. for ``transform_geometry``."""
    return _FROM_WGS84[parse_crs(crs)]


def to_wgs84(lon: Coord, lat: Coord, crs: Crs | str) -> tuple[Coord, Coord]:
    """Convert lon/lat given in ``crs`` to WGS84."""
    fn = to_wgs84_fn(crs)
    if fn is _identity and isinstance(lon, float) and isinstance(lat, float):
        return lon, lat  # one WGS84 point per report: no arrays for a no-op
    return _apply(fn, lon, lat)


def from_wgs84(lon: Coord, lat: Coord, crs: Crs | str) -> tuple[Coord, Coord]:
    """Convert WGS84 lon/lat to ``crs``."""
    return _apply(from_wgs84_fn(crs), lon, lat)


def transform_geometry(geom: BaseGeometry, fn: LonLatFn) -> BaseGeometry:
    """Apply a vectorised (lon, lat) -> (lon, lat) function to every vertex of a geometry."""

    # One call per geometry with all its vertices, so a whole polygon converts in a single numpy
    # pass. include_z=None keeps 3D geometries 3D; z is passed through untouched.
    def _xy(x: FloatArray, y: FloatArray, z: FloatArray | None = None) -> tuple[FloatArray, ...]:
        new_x, new_y = fn(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return (new_x, new_y) if z is None else (new_x, new_y, z)

    # The shapely stubs only model the interleaved (one-array) form of the transformation.
    result: BaseGeometry = shapely.transform(  # type: ignore[call-overload]
        geom, _xy, include_z=None, interleaved=False
    )
    return result


# --- validation ---------------------------------------------------------------------------------


def _in_china_box(lon: float, lat: float) -> bool:
    """Scalar bounding-box test used for the swapped-coordinates hint."""
    return _CHINA_LON_MIN <= lon <= _CHINA_LON_MAX and _CHINA_LAT_MIN <= lat <= _CHINA_LAT_MAX


def check_lonlat(lon: float, lat: float, *, expect_china: bool = True) -> None:
    """Raise InvalidCoordinatesError for non-finite, out-of-range or plausibly swapped lon/lat."""
    lon = float(lon)
    lat = float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidCoordinatesError(
            f"coordinates must be finite numbers, got lon={lon}, lat={lat}", lon=lon, lat=lat
        )
    swap_hint = (
        f"looks like latitude and longitude are swapped: send lon first (lon={lat}, lat={lon})"
    )
    # The China check comes first: a pair whose swap lands in China is almost surely (lat, lon)
    # order from a Chinese source, whether or not it is also out of range. With expect_china it
    # also rejects in-range pairs (e.g. lon=30, lat=80, the Arctic Ocean) that a Chinese
    # grid-management service never receives for real.
    if not _in_china_box(lon, lat) and _in_china_box(lat, lon):
        out_of_range = not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0)
        if expect_china or out_of_range:
            raise InvalidCoordinatesError(swap_hint, lon=lon, lat=lat)
    if abs(lat) > 90.0 and abs(lon) <= 90.0:
        # The classic swap anywhere in the world: the "latitude" cannot be one, the "longitude"
        # could.
        raise InvalidCoordinatesError(
            f"latitude {lat} is outside [-90, 90]; {swap_hint}", lon=lon, lat=lat
        )
    if not -180.0 <= lon <= 180.0:
        raise InvalidCoordinatesError(f"longitude {lon} is outside [-180, 180]", lon=lon, lat=lat)
    if not -90.0 <= lat <= 90.0:
        raise InvalidCoordinatesError(f"latitude {lat} is outside [-90, 90]", lon=lon, lat=lat)


# --- metres -------------------------------------------------------------------------------------

# One shared geodesic on the WGS84 ellipsoid (Karney's algorithm, accurate to nanometres); Geod
# objects are immutable and safe to share between threads.
_GEOD = Geod(ellps="WGS84")


def checked_wgs84(lon: float, lat: float, crs_text: str | None) -> tuple[float, float, Crs]:
    """Validate a lon/lat pair given in ``crs_text`` (None: WGS84) and convert it to WGS84.

    The one check every input path uses (reports, errands, locate, dispatch, cameras, units).
    NaN and infinity cannot be written as JSON: the error keeps its message and only the finite
    values."""
    crs = parse_crs(crs_text)
    try:
        check_lonlat(lon, lat)
    except InvalidCoordinatesError as error:
        finite = {
            k: v
            for k, v in error.extra.items()
            if not (isinstance(v, float) and not math.isfinite(v))
        }
        raise InvalidCoordinatesError(error.detail, **finite) from None
    wgs_lon, wgs_lat = to_wgs84(float(lon), float(lat), crs)
    return float(wgs_lon), float(wgs_lat), crs


def geodesic_distance_m(lon1: Coord, lat1: Coord, lon2: Coord, lat2: Coord) -> Coord:
    """Geodesic distance in metres on the WGS84 ellipsoid (floats or arrays)."""
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    if np.ndim(dist) == 0:
        return cast(Coord, float(dist))
    return cast(Coord, np.asarray(dist, dtype=np.float64))


def geodesic_bearing_deg(lon1: Coord, lat1: Coord, lon2: Coord, lat2: Coord) -> Coord:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    az12, _, _ = _GEOD.inv(lon1, lat1, lon2, lat2)
    # pyproj returns (-180, 180]; the service speaks compass bearings.
    bearing = np.mod(np.asarray(az12, dtype=np.float64), 360.0)
    if np.ndim(bearing) == 0:
        return cast(Coord, float(bearing))
    return cast(Coord, bearing)


# The WGS84 ellipsoid, for areas.
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
_E = math.sqrt(_E2)
# 3-point Gauss–Legendre on [0, 1]: exact for polynomials of degree 5. Its error grows with the
# sixth power of an edge's latitude span: ~1e-4 m² for an edge 1° long (measured against the
# edge cut into 1,000 pieces), below floating-point noise for grid-sized edges.
_GL_T = np.array([0.5 - 0.5 * math.sqrt(0.6), 0.5, 0.5 + 0.5 * math.sqrt(0.6)])
_GL_W = np.array([5.0, 8.0, 5.0]) / 18.0


def _authalic(phi: FloatArray) -> FloatArray:
    """∫ M·N·cos φ dφ from the equator: the ellipsoid's area per radian of longitude up to φ."""
    s = np.sin(phi)
    return cast(
        FloatArray,
        _A * _A * (1 - _E2) / 2 * (s / (1 - _E2 * s * s) + np.arctanh(_E * s) / _E),
    )


def area_m2(geom: BaseGeometry | None) -> float:
    """Area in m² on the WGS84 ellipsoid of a lon/lat geometry (0 for empty or non-areal ones).

    The region measured is the one PostGIS ``geometry`` and shapely draw: edges straight in
    lon/lat. Geodesic-edge measures (pyproj ``geometry_area_perimeter``, ``ST_Area(geography)``)
    redraw every edge as a geodesic, which bends away from the straight lon/lat edge by ~1 cm
    over 1 km here: harmless for a grid, but a sliver between two edges that coincide in lon/lat
    (one long edge against a run of short ones) then measures square metres instead of ~0.
    """
    if geom is None or geom.is_empty:
        return 0.0
    return float(areas_m2([geom])[0])


def areas_m2(geoms: Any) -> FloatArray:
    """``area_m2`` of each geometry of a sequence, in one vectorised pass (a plan's 40 grids
    cost what one does: the per-call numpy overhead dominates small polygons)."""
    array = np.asarray(geoms, dtype=object).ravel()
    result = np.zeros(array.size)
    if array.size == 0:
        return result
    parts, owner = shapely.get_parts(array, return_index=True)
    if parts.size and (shapely.get_type_id(parts) == 7).any():  # collections inside collections
        parts, inner = shapely.get_parts(parts, return_index=True)
        owner = owner[inner]
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    polygons, owner = parts[keep], owner[keep]
    if polygons.size == 0:
        return result
    rings = shapely.get_rings(polygons)  # each polygon's exterior, then its holes
    holes = shapely.get_num_interior_rings(polygons)
    exterior = np.zeros(rings.size, dtype=bool)
    exterior[np.cumsum(holes + 1) - holes - 1] = True
    ring_owner = np.repeat(owner, holes + 1)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    lam, phi = np.radians(coords[:, 0]), np.radians(coords[:, 1])
    # Green's theorem: a ring's area is -∮ F(φ) dλ. Along a straight lon/lat edge λ is linear in
    # φ, so the edge's term is Δλ times the mean of F over the edge (3-point Gauss–Legendre).
    # F is taken relative to the ring's first vertex (∮ dλ = 0 on a closed ring), which keeps
    # the terms small and a sliver's area as small as its coordinates say.
    same_ring = ring_of[1:] == ring_of[:-1]  # edges: consecutive vertices of one ring
    first = np.searchsorted(ring_of, ring_of)  # index of each vertex's ring's first vertex
    d_lam = (lam[1:] - lam[:-1])[same_ring]
    start, d_phi = phi[:-1][same_ring], (phi[1:] - phi[:-1])[same_ring]
    along = start[:, None] + d_phi[:, None] * _GL_T[None, :]
    reference = _authalic(phi[first[:-1][same_ring]])
    mean_f = (_authalic(along) - reference[:, None]) @ _GL_W
    per_ring = np.abs(np.bincount(ring_of[:-1][same_ring], d_lam * mean_f, rings.size))
    shells = np.bincount(ring_owner[exterior], per_ring[exterior], array.size)
    inside = np.bincount(ring_owner[~exterior], per_ring[~exterior], array.size)
    return cast(FloatArray, np.maximum(shells - inside, 0.0))


def utm_crs_for(lon: float, lat: float) -> str:
    """EPSG code of the UTM zone for a point: EPSG:326NN north of the equator, 327NN south."""
    # Standard 6-degree zones; the Norway/Svalbard exceptions do not concern China. lon=180
    # belongs to zone 60, not 61.
    zone = min(max(math.floor((float(lon) + 180.0) / 6.0) + 1, 1), 60)
    return f"EPSG:{32600 + zone}" if lat >= 0 else f"EPSG:{32700 + zone}"


def sector_polygon(
    lon: float,
    lat: float,
    heading_deg: float,
    fov_deg: float,
    range_m: float,
    segments: int = 32,
) -> Polygon:
    """Camera view sector (or full circle when fov >= 360) as a WGS84 lon/lat Polygon."""
    if not range_m > 0:
        raise ValueError(f"range_m must be positive, got {range_m}")
    if not fov_deg > 0:
        raise ValueError(f"fov_deg must be positive, got {fov_deg}")
    if segments < 3:
        raise ValueError(f"segments must be at least 3, got {segments}")
    if fov_deg >= 360.0:
        azimuths = np.linspace(0.0, 360.0, segments, endpoint=False)
    else:
        # Azimuths may run past 360 or below 0 (a sector across north); Geod.fwd wraps them.
        azimuths = np.linspace(
            heading_deg - fov_deg / 2.0, heading_deg + fov_deg / 2.0, segments + 1
        )
    n = azimuths.size
    # Each vertex is a true geodesic point at range_m, so the arc is right in metres at any
    # latitude, unlike buffering in degrees.
    arc_lon, arc_lat, _ = _GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, range_m))
    arc = list(zip(np.asarray(arc_lon).tolist(), np.asarray(arc_lat).tolist(), strict=True))
    if fov_deg >= 360.0:
        return Polygon(arc)
    return Polygon([(float(lon), float(lat)), *arc])
