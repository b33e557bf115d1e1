"""The demo road network: noded segments with class, speed, geodesic length and node ids.

Per town: a secondary road from the town centre to every village centre, tertiary roads between
neighbouring villages (the Gabriel graph of the village centres, which contains the minimum
spanning tree, so every village is reachable without the long hull edges of a Delaunay
triangulation), and a few residential lanes out of each village centre. Per county, a primary
road chains its towns' centres (for the real county 衢江区: 高家 — 大洲).

All lines of a county are noded together (split where they cross), so segments meet at shared
end points; node ids come from the rounded end points, so ``source``/``target`` form a routing
topology without pgRouting's ``pgr_createTopology``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from gis.layers.roads import DEFAULT_SPEEDS_KMH
from gis.sample import shapes
from gis.sample.boundaries import Boundaries
from gis.sample.places import STREAM_ROADS, Plan, stream

ROAD_CLASSES = ("primary", "secondary", "tertiary", "residential")  # most important first
LANES_PER_VILLAGE = (1, 3)
LANE_LENGTH_M = (250.0, 800.0)
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class TownGeometry:
    """A town's outline and centres in metres, shared by the road, camera and incident stages."""

    code: str
    polygon: BaseGeometry  # the town, in UTM 50N
    centre: np.ndarray  # (x, y) of the documented centre
    village_codes: list[str]
    village_names: list[str]
    village_polygons: np.ndarray  # of shapely geometries, metres
    village_centres: np.ndarray  # (n, 2)
    village_households: np.ndarray


def town_geometries(plan: Plan, boundaries: Boundaries) -> list[TownGeometry]:
    """The metric geometry of every town of the plan, in plan order."""
    towns = boundaries.towns.set_index("code")
    result = []
    for spec in plan.towns:
        villages = boundaries.villages[boundaries.villages["town_code"] == spec.code]
        polygons = np.asarray(shapes.to_metric(villages.geometry.values), dtype=object)
        centres = shapely.get_coordinates(shapely.centroid(polygons))
        # A concave village's centroid can fall outside it; use a point that is inside.
        outside = ~shapely.contains_xy(polygons, centres[:, 0], centres[:, 1])
        if outside.any():
            centres[outside] = shapely.get_coordinates(shapely.point_on_surface(polygons[outside]))
        centre = np.array(shapes.lonlat_to_xy(np.array([spec.lon]), np.array([spec.lat]))).ravel()
        result.append(
            TownGeometry(
                code=spec.code,
                polygon=shapes.to_metric(towns.loc[spec.code, "geometry"]),
                centre=centre,
                village_codes=villages["code"].tolist(),
                village_names=villages["name"].tolist(),
                village_polygons=polygons,
                village_centres=centres,
                village_households=villages["households"].to_numpy(),
            )
        )
    return result


def gabriel_edges(points: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j) whose diametral circle holds no other point (the Gabriel graph)."""
    count = len(points)
    i, j = np.triu_indices(count, k=1)
    middle = (points[i] + points[j]) / 2
    radius2 = np.sum((points[i] - points[j]) ** 2, axis=1) / 4
    # Squared distance of every point to every pair's midpoint: pairs × points.
    d2 = np.sum((middle[:, None, :] - points[None, :, :]) ** 2, axis=2)
    d2[np.arange(len(i)), i] = np.inf
    d2[np.arange(len(i)), j] = np.inf
    keep = np.all(d2 > radius2[:, None], axis=1)
    return list(zip(i[keep].tolist(), j[keep].tolist(), strict=True))


def bent_lines(rng: np.random.Generator, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Roads from each start to its end that bow gently sideways instead of running straight."""
    if len(starts) == 0:
        return np.empty(0, dtype=object)
    delta = ends - starts
    length = np.hypot(delta[:, 0], delta[:, 1])
    steps = np.maximum(2, np.ceil(length / 250.0).astype(np.int64))
    line = np.repeat(np.arange(len(starts)), steps + 1)
    # Position along each line, 0…1, for every vertex of every line at once.
    first = np.concatenate([[0], np.cumsum(steps + 1)[:-1]])
    t = (np.arange(len(line)) - first[line]) / steps[line]
    bow1 = rng.normal(0.0, 0.04, len(starts))
    bow2 = rng.normal(0.0, 0.015, len(starts))
    bow = bow1[line] * np.sin(math.pi * t) + bow2[line] * np.sin(2 * math.pi * t)
    normal = np.column_stack([-delta[:, 1], delta[:, 0]]) / np.maximum(length, 1e-9)[:, None]
    xy = starts[line] + t[:, None] * delta[line] + (bow * length[line])[:, None] * normal[line]
    return np.asarray(shapely.linestrings(xy, indices=line), dtype=object)


def _short(name: str) -> str:
    """A village name without its 村/社区 suffix, for road names."""
    return name.removesuffix("社区").removesuffix("村")


def build_roads(seed: int, plan: Plan, towns: list[TownGeometry]) -> gpd.GeoDataFrame:
    """All road segments (WGS84) with name, class, speed, length, source and target."""
    by_code = {t.code: t for t in towns}
    pieces: list[gpd.GeoDataFrame] = []
    for county in plan.counties:
        specs = sorted(
            (t for t in plan.towns if t.county_code == county.code), key=lambda t: t.code
        )
        if not specs:
            continue
        lines: list[np.ndarray] = []
        classes: list[int] = []
        names: list[str] = []
        for spec in specs:
            town = by_code[spec.code]
            rng = stream(seed, STREAM_ROADS, spec.index)
            short = [_short(name) for name in town.village_names]
            # Secondary roads from the town centre out to every village but the seat's own.
            outer = [v for v, code in enumerate(town.village_codes) if not code.endswith("001")]
            starts = np.repeat(town.centre[None, :], len(outer), axis=0)
            lines.append(bent_lines(rng, starts, town.village_centres[outer]))
            classes += [1] * len(outer)
            names += [f"{spec.short}—{short[v]}线" for v in outer]
            # Tertiary roads between neighbouring villages.
            pairs = np.array(gabriel_edges(town.village_centres), dtype=np.int64).reshape(-1, 2)
            centres = town.village_centres
            lines.append(bent_lines(rng, centres[pairs[:, 0]], centres[pairs[:, 1]]))
            classes += [2] * len(pairs)
            names += [f"{short[a]}—{short[b]}村道" for a, b in pairs.tolist()]
            # Residential lanes out of each village centre, kept if they stay in the village.
            lanes = rng.integers(LANES_PER_VILLAGE[0], LANES_PER_VILLAGE[1] + 1, len(centres))
            village = np.repeat(np.arange(len(centres)), lanes)
            number = np.concatenate([np.arange(1, n + 1) for n in lanes.tolist()])
            angle = rng.uniform(0, 2 * math.pi, len(village))
            reach = rng.uniform(*LANE_LENGTH_M, len(village))
            ends = centres[village] + reach[:, None] * np.column_stack(
                [np.cos(angle), np.sin(angle)]
            )
            lane_lines = bent_lines(rng, centres[village], ends)
            inside = shapely.contains(town.village_polygons[village], lane_lines)
            lines.append(lane_lines[inside])
            classes += [3] * int(inside.sum())
            names += [
                f"{town.village_names[v]}{n}号巷"
                for v, n in zip(village[inside].tolist(), number[inside].tolist(), strict=True)
            ]
        # A primary road chains the county's towns, centre to centre.
        for here, there in itertools.pairwise(specs):
            rng = stream(seed, STREAM_ROADS, here.index, there.index)
            a_xy, b_xy = by_code[here.code].centre, by_code[there.code].centre
            lines.append(bent_lines(rng, a_xy[None, :], b_xy[None, :]))
            classes.append(0)
            names.append(f"{here.short}—{there.short}公路")
        pieces.append(_noded(np.concatenate(lines), np.array(classes), names))
    segments = gpd.GeoDataFrame(_concat(pieces), geometry="geometry", crs="EPSG:4326")
    return _topology(segments)


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Concatenate frames with a fresh index."""
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry")


def _noded(lines: np.ndarray, classes: np.ndarray, names: list[str]) -> gpd.GeoDataFrame:
    """Split lines where they cross; each piece takes the most important line it lies on."""
    noded = shapely.get_parts(shapely.union_all(lines))
    middles = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    piece, parent = shapely.STRtree(lines).query(middles, predicate="dwithin", distance=0.01)
    # Per piece, the parent of the best class (then the first drawn): sort and keep the first.
    order = np.lexsort((parent, classes[parent], piece))
    piece, parent = piece[order], parent[order]
    first = np.concatenate([[True], piece[1:] != piece[:-1]])
    best = np.full(len(noded), -1)
    best[piece[first]] = parent[first]
    keep = best >= 0
    wgs = shapes.round_coordinates(shapes.to_wgs84(noded[keep]))
    wgs = shapely.remove_repeated_points(wgs)
    return gpd.GeoDataFrame(
        {
            "name": [names[p] for p in best[keep]],
            "road_class": [ROAD_CLASSES[c] for c in classes[best[keep]]],
        },
        geometry=wgs,
    )


def _topology(segments: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop collapsed pieces, add speed, geodesic length, and node ids from rounded end points."""
    geoms = segments.geometry.values
    segments = segments[(shapely.get_num_coordinates(geoms) >= 2) & ~shapely.is_empty(geoms)]
    segments = segments[shapely.length(segments.geometry.values) > 0].reset_index(drop=True)
    geoms = segments.geometry.values
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    same = index[1:] == index[:-1]
    _, _, step = _GEOD.inv(coords[:-1, 0][same], coords[:-1, 1][same], coords[1:, 0][same],
                           coords[1:, 1][same])  # fmt: skip
    length = np.bincount(index[:-1][same], weights=step, minlength=len(segments))
    starts = shapely.get_coordinates(shapely.get_point(geoms, 0))
    ends = shapely.get_coordinates(shapely.get_point(geoms, -1))
    keys = np.rint(np.vstack([starts, ends]) * 10**shapes.COORD_DECIMALS).astype(np.int64)
    _, node = np.unique(keys, axis=0, return_inverse=True)
    node = node.ravel() + 1
    segments = segments.assign(
        id=np.arange(1, len(segments) + 1),
        speed_kmh=[DEFAULT_SPEEDS_KMH[c] for c in segments["road_class"]],
        oneway=False,
        length_m=length,
        source=node[: len(segments)],
        target=node[len(segments) :],
    )
    columns = ["id", "name", "road_class", "speed_kmh", "oneway", "length_m", "source", "target"]
    return gpd.GeoDataFrame(segments[[*columns, "geometry"]], geometry="geometry", crs="EPSG:4326")
