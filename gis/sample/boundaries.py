"""Town, village and grid boundaries of the demo county, and their committed GeoJSON files.

Each town is a radially perturbed polygon (a sum of a few random low harmonics, so the outline
is smooth and irregular) around its documented centre, scaled to a drawn area. Villages are the
Voronoi cells of relaxed random seeds inside the town (the town seat is the community holding
the town centre); grids are the Voronoi cells of seeds inside each village.

Exact tiling survives the trip to WGS84 because the whole partition of a town is built as one
noded set of lines and polygonized in metres, so neighbouring faces share identical vertices;
every vertex is then transformed and rounded on its own, and equal inputs round equally.
Villages and towns are unions of their grid faces, so grids tile villages and villages tile towns
with no gap or overlap at all.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from gis.layers.categories import DATA_DIR
from gis.sample import shapes
from gis.sample.names import village_names
from gis.sample.places import (
    STREAM_GRIDS,
    STREAM_TOWN,
    Plan,
    TownSpec,
    make_plan,
    stream,
)

BOUNDARIES_DIR = DATA_DIR / "boundaries"
LAYER_FILES = ("towns", "villages", "grids")

REAL_TOWN_AREA_KM2 = (75.0, 105.0)
SYNTHETIC_TOWN_AREA_KM2 = (65.0, 90.0)
MIN_TOWN_AREA_KM2 = 60.0
VILLAGES_PER_TOWN = (10, 25)
# Grids per village: 1–4 at scale 1 (a rural town: one grid per 300–500 households); at K > 1
# the benchmark county is denser, 4–18 per village, so that K=100 gives ~95k grids.
GRIDS_PER_VILLAGE = (1, 4)
DENSE_GRIDS_PER_VILLAGE = (4, 18)
HOUSEHOLDS_PER_GRID = (400.0, 50.0, 250, 600)  # mean, sd, clipped to [min, max]
PERSONS_PER_HOUSEHOLD = (2.5, 3.2)
OUTLINE_VERTICES = 256
# Voronoi edges poke out of their parent by this much (m) so that noding always cuts the parent.
OVERSHOOT_M = 0.001
MAX_ATTEMPTS = 20

TOWN_COLUMNS = ("code", "name", "name_en", "county_code", "households", "population")
VILLAGE_COLUMNS = ("code", "name", "name_en", "town_code", "households", "population")
GRID_COLUMNS = ("code", "name", "village_code", "town_code", "households", "population")
REGION_COLUMNS = ("code", "name", "name_en", "parent_code", "households", "population")


@dataclass(frozen=True)
class Boundaries:
    """The demo county's boundaries as GeoDataFrames in EPSG:4326, each sorted by code."""

    city: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame
    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    seed: int  # the generator seed they came from (recorded in the GeoJSON files too)


@dataclass
class _TownParts:
    """One generated town, before it joins the others."""

    town: dict[str, Any]
    villages: list[dict[str, Any]]
    grids: list[dict[str, Any]]


def generate_boundaries(seed: int, scale: int = 1, *, progress: bool = False) -> Boundaries:
    """Generate the towns, villages and grids of the demo county for ``seed`` and ``scale``."""
    plan = make_plan(seed, scale)
    grid_range = GRIDS_PER_VILLAGE if scale == 1 else DENSE_GRIDS_PER_VILLAGE
    outlines: list[Polygon] = []
    done: list[_TownParts] = []
    for town in tqdm(
        plan.towns, desc="sample: boundaries", unit="town", file=sys.stderr, disable=not progress
    ):
        for attempt in range(MAX_ATTEMPTS):
            # Each outline must clear the towns drawn before it; the rare degenerate
            # partition is redrawn from the next attempt's streams.
            area_m2, outline = _town_outline(seed, town, attempt, outlines)
            parts = _partition_job((seed, town, attempt, area_m2, grid_range))
            if parts is not None:
                break
        else:
            raise RuntimeError(f"town {town.code}: no valid partition in {MAX_ATTEMPTS} attempts")
        outlines.append(outline)
        done.append(parts)
    return _assemble(seed, plan, done)


def _assemble(seed: int, plan: Plan, built: Sequence[_TownParts]) -> Boundaries:
    """Frames for every level, counties and the city as unions of their towns."""
    towns = _frame([b.town for b in built], TOWN_COLUMNS)
    villages = _frame([v for b in built for v in b.villages], VILLAGE_COLUMNS)
    grids = _frame([g for b in built for g in b.grids], GRID_COLUMNS)
    return Boundaries(*_derived(plan, towns), towns, villages, grids, seed)


def _derived(plan: Plan, towns: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The city and county frames, as unions of the town geometries and sums of their counts."""
    counties = []
    for county in plan.counties:
        members = towns[towns["county_code"] == county.code]
        if members.empty:
            continue
        counties.append(
            {
                "code": county.code,
                "name": county.name,
                "name_en": county.name_en,
                "parent_code": county.parent_code,
                "households": int(members["households"].sum()),
                "population": int(members["population"].sum()),
                # Towns never touch, so the union is just their parts side by side.
                "geometry": shapes.as_multipolygon(shapely.union_all(members.geometry.values)),
            }
        )
    city = {
        "code": plan.city.code,
        "name": plan.city.name,
        "name_en": plan.city.name_en,
        "parent_code": None,
        "households": int(towns["households"].sum()),
        "population": int(towns["population"].sum()),
        "geometry": shapes.as_multipolygon(shapely.union_all(towns.geometry.values)),
    }
    return _frame([city], REGION_COLUMNS), _frame(counties, REGION_COLUMNS)


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> gpd.GeoDataFrame:
    """A GeoDataFrame of ``rows`` with ``columns`` then geometry, sorted by code."""
    frame = gpd.GeoDataFrame(
        [{c: row[c] for c in columns} for row in rows],
        columns=list(columns),
        geometry=[row["geometry"] for row in rows],
        crs="EPSG:4326",
    )
    for column in ("households", "population"):
        frame[column] = frame[column].astype("int64")
    return frame.sort_values("code", kind="stable").reset_index(drop=True)


# --- one town -----------------------------------------------------------------------------------


def _outline(rng: np.random.Generator) -> np.ndarray:
    """Unit-area radial profile of a town: r(θ) = 1 + Σ a_k cos(kθ + φ_k), k = 2…15."""
    theta = np.linspace(0.0, 2 * math.pi, OUTLINE_VERTICES, endpoint=False)
    radius = np.ones_like(theta)
    # No k=1 term (it would shift the outline off the documented centre); amplitudes fall with
    # k so the outline is smooth, and their sum stays below 0.25, so r is always > 0.75.
    for k in range(2, 16):
        amplitude = rng.uniform(0.0, 0.12) / k**1.1
        radius += amplitude * np.cos(k * theta + rng.uniform(0.0, 2 * math.pi))
    xy = np.column_stack([np.cos(theta) * radius, np.sin(theta) * radius])
    return xy / math.sqrt(Polygon(xy).area)  # area 1, so a scale factor s gives area s²


def _town_rng(seed: int, town: TownSpec, attempt: int) -> tuple[np.random.Generator, float, Any]:
    """The town's generator after drawing its area (m²) and unit outline, and those two."""
    rng = stream(seed, STREAM_TOWN, town.index, attempt)
    low, high = SYNTHETIC_TOWN_AREA_KM2 if town.synthetic else REAL_TOWN_AREA_KM2
    area_m2 = rng.uniform(low, high) * 1e6
    return rng, area_m2, _outline(rng)


def _centre(town: TownSpec) -> np.ndarray:
    """The documented centre of a town in metres."""
    return np.array(shapes.lonlat_to_xy(np.array([town.lon]), np.array([town.lat]))).ravel()


def _town_outline(
    seed: int, town: TownSpec, attempt: int, others: Sequence[Polygon]
) -> tuple[float, Polygon]:
    """The town's area and outline (metres), shrunk until clear of ``others``."""
    _, area_m2, unit = _town_rng(seed, town, attempt)
    centre = _centre(town)
    outline = Polygon(centre + unit * math.sqrt(area_m2))
    box = outline.envelope
    nearby = [o for o in others if o.envelope.intersects(box)]
    while nearby and shapely.intersects(outline, nearby).any():
        area_m2 *= 0.9
        if area_m2 < MIN_TOWN_AREA_KM2 * 1e6:
            raise RuntimeError(f"town {town.code} cannot fit beside its neighbours")
        outline = Polygon(centre + unit * math.sqrt(area_m2))
    return area_m2, outline


def _partition_job(job: tuple[int, TownSpec, int, float, tuple[int, int]]) -> _TownParts | None:
    """Villages and grids of one town outline, or None if the draw degenerates.

    Everything comes from ``job`` (and the town's own random streams), so towns could be
    partitioned in any order or in parallel with the same result.
    """
    seed, town, attempt, area_m2, grid_range = job
    rng, _, unit = _town_rng(seed, town, attempt)
    centre = _centre(town)
    outline = Polygon(centre + unit * math.sqrt(area_m2))
    grids_rng = stream(seed, STREAM_GRIDS, town.index, attempt)
    return _partition(rng, grids_rng, town, outline, centre, grid_range)


def _partition(
    rng: np.random.Generator,
    grids_rng: np.random.Generator,
    town: TownSpec,
    outline: Polygon,
    centre: np.ndarray,
    grid_range: tuple[int, int],
) -> _TownParts | None:
    """Villages and grids of a town outline, or None if this draw degenerates after rounding."""
    village_count = int(rng.integers(VILLAGES_PER_TOWN[0], VILLAGES_PER_TOWN[1] + 1))
    seeds = shapes.points_in(rng, outline, village_count)
    seeds[0] = centre  # the town seat's community holds the town centre
    seeds = shapes.relax(seeds, outline, 3, pin_first=True)
    # Number the villages clockwise from north, seat first, so codes read around the town.
    order = np.concatenate([[0], 1 + shapes.angle_order(seeds[1:], centre)])
    seeds = seeds[order]
    village_cells = shapes.voronoi_cells(seeds, outline)
    names = village_names(rng, village_count - 1)

    lines: list[BaseGeometry] = [
        outline.boundary,
        shapes.voronoi_edges(seeds, outline, OVERSHOOT_M),
    ]
    grid_cells: list[BaseGeometry] = []
    grid_village: list[int] = []
    # The grid stream is separate, so denser grids at K > 1 keep the same villages.
    for v, cell in enumerate(village_cells):
        count = int(grids_rng.integers(grid_range[0], grid_range[1] + 1))
        if count == 1 or cell.area < 1e4 * count:
            grid_cells.append(cell)
            grid_village.append(v)
            continue
        grid_seeds = shapes.relax(
            shapes.points_in(grids_rng, cell, count), cell, 2 if grid_range[1] <= 4 else 1
        )
        grid_seeds = grid_seeds[shapes.angle_order(grid_seeds, seeds[v])]
        lines.append(shapes.voronoi_edges(grid_seeds, cell, OVERSHOOT_M))
        grid_cells.extend(shapes.voronoi_cells(grid_seeds, cell))
        grid_village.extend([v] * count)

    # One noded set of lines for the whole town: every shared edge exists exactly once.
    noded = shapely.union_all(np.array(lines, dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if (shapely.area(faces) < 1.0).any():
        return None
    cells = np.array(grid_cells, dtype=object)
    face_index, cell_index = shapely.STRtree(cells).query(
        shapely.point_on_surface(faces), predicate="within"
    )
    if len(face_index) != len(faces) or len(np.unique(face_index)) != len(faces):
        return None
    if len(np.unique(cell_index)) != len(cells):
        return None
    owner = np.empty(len(faces), dtype=np.int64)
    owner[face_index] = cell_index
    wgs_faces = shapes.round_coordinates(shapes.to_wgs84(faces))
    wgs_faces = shapely.orient_polygons(wgs_faces, exterior_cw=False)
    if not shapely.is_valid(wgs_faces).all() or not shapely.coverage_is_valid(wgs_faces):
        return None

    households = np.clip(
        np.round(grids_rng.normal(HOUSEHOLDS_PER_GRID[0], HOUSEHOLDS_PER_GRID[1], len(cells))),
        HOUSEHOLDS_PER_GRID[2],
        HOUSEHOLDS_PER_GRID[3],
    ).astype(np.int64)
    population = np.round(households * grids_rng.uniform(*PERSONS_PER_HOUSEHOLD, len(cells)))

    villages: list[dict[str, Any]] = []
    grids: list[dict[str, Any]] = []
    grid_village_arr = np.asarray(grid_village)
    for v in range(village_count):
        if v == 0:
            code, name, name_en = (
                town.prefix + "001",
                f"{town.short}社区",
                f"{town.name_en} Community",
            )
        else:
            code = f"{town.prefix}{200 + v:03d}"
            name, name_en = names[v - 1]
        members = np.flatnonzero(grid_village_arr == v)
        for number, g in enumerate(members, start=1):
            grids.append(
                {
                    "code": f"{code}{number:03d}",
                    "name": f"{name}第{number}网格",
                    "village_code": code,
                    "town_code": town.code,
                    "households": int(households[g]),
                    "population": int(population[g]),
                    "geometry": _union(wgs_faces[owner == g]),
                }
            )
        villages.append(
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "town_code": town.code,
                "households": int(households[members].sum()),
                "population": int(population[members].sum()),
                "geometry": _union(wgs_faces[np.isin(owner, members)]),
            }
        )
    town_row = {
        "code": town.code,
        "name": town.name,
        "name_en": town.name_en,
        "county_code": town.county_code,
        "households": int(households.sum()),
        "population": int(population.sum()),
        "geometry": _union(wgs_faces),
    }
    return _TownParts(town_row, villages, grids)


def _union(faces: np.ndarray) -> shapely.MultiPolygon:
    """Union of faces that share exact edges, as a counter-clockwise MultiPolygon."""
    merged = shapely.coverage_union_all(faces) if len(faces) > 1 else faces[0]
    return shapes.as_multipolygon(shapely.orient_polygons(merged, exterior_cw=False))


# --- GeoJSON ------------------------------------------------------------------------------------


def geojson_texts(boundaries: Boundaries) -> dict[str, str]:
    """The committed files' exact text, by layer name: one feature per line, keys in order."""
    frames = {
        "towns": (boundaries.towns, TOWN_COLUMNS),
        "villages": (boundaries.villages, VILLAGE_COLUMNS),
        "grids": (boundaries.grids, GRID_COLUMNS),
    }
    texts = {}
    for layer, (frame, columns) in frames.items():
        lines = []
        for row in frame.itertuples(index=False):
            properties = {c: _plain(getattr(row, c)) for c in columns}
            feature = {
                "type": "Feature",
                "properties": properties,
                "geometry": _rounded(mapping(row.geometry)),
            }
            lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
        body = ",\n".join(lines)
        head = f'{{"type":"FeatureCollection","name":"{layer}","seed":{boundaries.seed}'
        texts[layer] = f'{head},"features":[\n{body}\n]}}\n'
    return texts


def _plain(value: Any) -> Any:
    """numpy scalars as plain Python values for json."""
    return value.item() if isinstance(value, np.generic) else value


def _rounded(geometry: Any) -> Any:
    """A GeoJSON mapping with tuples as lists and every number rounded to 7 decimals."""
    if isinstance(geometry, dict):
        return {key: _rounded(value) for key, value in geometry.items()}
    if isinstance(geometry, list | tuple):
        return [_rounded(value) for value in geometry]
    if isinstance(geometry, float):
        return round(geometry, shapes.COORD_DECIMALS)
    return geometry


def write_boundaries(
    path: Path = BOUNDARIES_DIR, *, seed: int | None = None, boundaries: Boundaries | None = None
) -> list[Path]:
    """Write towns/villages/grids.geojson for ``seed`` (default: the settings' seed), scale 1."""
    if boundaries is None:
        if seed is None:
            from gis.settings import Settings

            seed = Settings().sample_seed
        boundaries = generate_boundaries(seed, 1)
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for layer, text in geojson_texts(boundaries).items():
        file = path / f"{layer}.geojson"
        file.write_text(text, encoding="utf-8")
        written.append(file)
    return written


def read_boundaries(path: Path = BOUNDARIES_DIR) -> Boundaries:
    """The committed scale-1 boundaries, with counties and the city derived by union."""
    layers = {}
    seeds = set()
    for layer, columns in (
        ("towns", TOWN_COLUMNS),
        ("villages", VILLAGE_COLUMNS),
        ("grids", GRID_COLUMNS),
    ):
        file = path / f"{layer}.geojson"
        if not file.exists():
            raise FileNotFoundError(f"{file} is missing: run `gis sample boundaries`")
        collection = json.loads(file.read_text(encoding="utf-8"))
        seeds.add(collection.get("seed"))
        features = collection["features"]
        rows = [
            {**feature["properties"], "geometry": shape(feature["geometry"])}
            for feature in features
        ]
        layers[layer] = _frame(rows, columns)
    if len(seeds) != 1 or not isinstance(next(iter(seeds)), int):
        raise ValueError(f"{path}: the files disagree on their seed ({seeds}); regenerate them")
    plan = make_plan(0, 1)  # the real towns do not depend on the seed
    return Boundaries(*_derived(plan, layers["towns"]), **layers, seed=seeds.pop())
