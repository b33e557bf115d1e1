"""Vectorised geometry helpers shared by the generators: sampling, Voronoi tiling, transforms."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry

from gis.sample.places import transformer

FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]
G = TypeVar("G", BaseGeometry, GeometryArray)

COORD_DECIMALS = 7  # ~1 cm: the precision of the committed GeoJSON and of every stored vertex


def points_in(rng: np.random.Generator, polygon: BaseGeometry, count: int) -> FloatArray:
    """``count`` points drawn uniformly inside ``polygon`` (rejection from its bounds)."""
    if count <= 0:
        return np.empty((0, 2))
    x0, y0, x1, y1 = polygon.bounds
    shapely.prepare(polygon)
    batches: list[FloatArray] = []
    found = 0
    while found < count:
        # Oversample by the bounding-box/area ratio so one round almost always suffices.
        ratio = (x1 - x0) * (y1 - y0) / max(polygon.area, 1e-9)
        size = int(count * ratio * 1.3) + 16
        x = rng.uniform(x0, x1, size)
        y = rng.uniform(y0, y1, size)
        inside = shapely.contains_xy(polygon, x, y)
        batches.append(np.column_stack([x[inside], y[inside]]))
        found += int(inside.sum())
    return np.concatenate(batches)[:count]


def _envelope(polygon: BaseGeometry, margin: float = 1_000.0) -> BaseGeometry:
    """The polygon's bounding box grown by ``margin`` metres (the Voronoi diagram's extent)."""
    x0, y0, x1, y1 = polygon.bounds
    return shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)


def voronoi_cells(seeds: FloatArray, polygon: BaseGeometry) -> GeometryArray:
    """The Voronoi cells of ``seeds`` clipped to ``polygon``, in the order of the seeds."""
    envelope = _envelope(polygon)
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=envelope, ordered=True)
    return np.asarray(shapely.intersection(shapely.get_parts(cells), polygon))


def voronoi_edges(seeds: FloatArray, polygon: BaseGeometry, overshoot: float) -> BaseGeometry:
    """The Voronoi edges between ``seeds`` inside ``polygon`` grown by ``overshoot`` metres.

    The edges are cut slightly *outside* the polygon so that, once noded with its boundary,
    they cross it instead of stopping a rounding error short of it; the stubs outside become
    dangles that polygonize drops.
    """
    envelope = _envelope(polygon)
    edges = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=envelope, only_edges=True)
    return shapely.intersection(edges, polygon.buffer(overshoot, join_style="mitre"))


def relax(
    seeds: FloatArray, polygon: BaseGeometry, iterations: int, *, pin_first: bool = False
) -> FloatArray:
    """Lloyd relaxation: move each seed to the centroid of its cell, for even-sized cells."""
    for _ in range(iterations):
        cells = voronoi_cells(seeds, polygon)
        moved = shapely.get_coordinates(shapely.centroid(cells))
        # A clipped cell can be concave; keep the seed inside it.
        outside = ~shapely.contains_xy(cells, moved[:, 0], moved[:, 1])
        if outside.any():
            moved[outside] = shapely.get_coordinates(shapely.point_on_surface(cells[outside]))
        if pin_first:
            moved[0] = seeds[0]
        seeds = moved
    return seeds


def to_wgs84(geometry: G) -> G:
    """UTM 50N metres → WGS84 lon/lat (unrounded)."""
    return _transformed(geometry, metric=False)


def to_metric(geometry: G) -> G:
    """WGS84 lon/lat → UTM 50N metres."""
    return _transformed(geometry, metric=True)


def _transformed(geometry: G, *, metric: bool) -> G:
    project = transformer(metric)

    def _xy(xy: FloatArray) -> FloatArray:
        return np.column_stack(project.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, _xy)


def round_coordinates(geometry: G) -> G:
    """Every vertex rounded to ``COORD_DECIMALS``; identical inputs round identically."""
    return shapely.transform(geometry, lambda xy: np.round(xy, COORD_DECIMALS))


def lonlat_to_xy(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS84 arrays → UTM 50N arrays."""
    x, y = transformer(True).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def xy_to_lonlat(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """UTM 50N arrays → WGS84 arrays."""
    lon, lat = transformer(False).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def as_multipolygon(geometry: BaseGeometry) -> shapely.MultiPolygon:
    """A Polygon or MultiPolygon as a MultiPolygon (the column type of regions and grids)."""
    if isinstance(geometry, shapely.MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return shapely.MultiPolygon([geometry])
    raise TypeError(f"expected a polygonal geometry, got {geometry.geom_type}")


def angle_order(points: FloatArray, centre: FloatArray) -> npt.NDArray[np.intp]:
    """Indices of ``points`` clockwise from north around ``centre`` (for stable numbering)."""
    bearing = np.mod(
        np.degrees(np.arctan2(points[:, 0] - centre[0], points[:, 1] - centre[1])), 360
    )
    return np.lexsort((points[:, 1], points[:, 0], bearing))
