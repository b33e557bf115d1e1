"""The whole demo county in memory — boundaries, units, roads, cameras, cases — before loading."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from tqdm import tqdm

from gis.errors import ConflictError, ValidationError
from gis.layers.categories import read_catalog
from gis.sample import shapes
from gis.sample.boundaries import (
    BOUNDARIES_DIR,
    LAYER_FILES,
    Boundaries,
    generate_boundaries,
    read_boundaries,
)
from gis.sample.facilities import build_cameras, build_units
from gis.sample.incidents import Cases, CategoryRow, generate_cases
from gis.sample.places import STREAM_INCIDENTS, Plan, make_plan, stream
from gis.sample.roads import ROAD_CLASSES, build_roads, town_geometries

INCIDENTS_PER_TOWN = 8_000  # scale 1, varied ±15 % by town
DENSE_INCIDENTS_PER_TOWN = 2_500  # scale > 1: K=100 gives ~1.25M cases
TOWN_VOLUME_SPREAD = 0.15


@dataclass(frozen=True)
class County:
    """Everything ``load_sample`` writes, generated from a seed."""

    seed: int
    scale: int
    end: datetime
    plan: Plan
    boundaries: Boundaries
    units: list[dict[str, Any]]
    roads: gpd.GeoDataFrame
    cameras: list[dict[str, Any]]
    cases: Cases


def committed_boundaries() -> Boundaries | None:
    """The boundaries in data/boundaries, or None if the files are not there."""
    if not all((BOUNDARIES_DIR / f"{layer}.geojson").exists() for layer in LAYER_FILES):
        return None
    return read_boundaries()


def default_end() -> datetime:
    """Today 00:00 UTC, the default end of the year of history."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def case_volumes(seed: int, plan: Plan, scale: int, given: int | None) -> list[int]:
    """Cases per town: as given, or the default for the scale varied ±15 % by town."""
    if given is not None:
        return [given] * len(plan.towns)
    base = INCIDENTS_PER_TOWN if scale == 1 else DENSE_INCIDENTS_PER_TOWN
    spread = (1 - TOWN_VOLUME_SPREAD, 1 + TOWN_VOLUME_SPREAD)
    return [
        round(base * stream(seed, STREAM_INCIDENTS, t.index, 0).uniform(*spread))
        for t in plan.towns
    ]


def build_county(
    seed: int,
    scale: int = 1,
    *,
    end: datetime | None = None,
    incidents_per_town: int | None = None,
    progress: bool = False,
) -> County:
    """Generate the demo county for ``seed`` and ``scale``, with a year of cases up to ``end``."""
    if scale < 1:
        raise ValidationError(f"scale must be at least 1, got {scale}")
    if incidents_per_town is not None and incidents_per_town < 0:
        raise ValidationError(f"incidents_per_town must be >= 0, got {incidents_per_town}")
    end = end or default_end()
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    plan = make_plan(seed, scale)
    # At scale 1 with the seed they were made with, the committed files are what is served;
    # any other seed or scale is generated (identically, as a test checks).
    boundaries = committed_boundaries() if scale == 1 else None
    if boundaries is None or boundaries.seed != seed:
        boundaries = generate_boundaries(seed, scale, progress=progress)
    if list(boundaries.towns["code"]) != sorted(t.code for t in plan.towns):
        raise ConflictError(
            "data/boundaries does not hold the planned towns: run `gis sample boundaries`"
        )
    bar = tqdm(total=3, desc="sample: roads, units, cameras", file=sys.stderr, disable=not progress)
    towns = town_geometries(plan, boundaries)
    roads = build_roads(seed, plan, towns)
    bar.update()
    units = build_units(seed, plan, towns)
    bar.update()
    roads_metric = np.asarray(shapes.to_metric(roads.geometry.values), dtype=object)
    middles = shapely.STRtree(shapely.line_interpolate_point(roads_metric, 0.5, normalized=True))
    # A town's road pieces are those whose middle lies in it (the primary road's included).
    town_pieces = [np.sort(middles.query(t.polygon, predicate="contains")) for t in towns]
    road_class = np.array([ROAD_CLASSES.index(c) for c in roads["road_class"]])
    cameras = build_cameras(
        seed, plan, towns, roads_metric, road_class, roads["name"].tolist(), town_pieces
    )
    bar.update()
    bar.close()

    categories = [
        CategoryRow(row["code"], row["platform"], float(row["time_limit_hours"]))
        for row in read_catalog()
    ]
    outlines = boundaries.towns.set_index("code").loc[[t.code for t in plan.towns], "geometry"]
    cases_bar = tqdm(
        total=len(plan.towns),
        desc="sample: generating cases",
        unit="town",
        file=sys.stderr,
        disable=not progress,
    )
    cases = generate_cases(
        seed,
        plan.towns,
        towns,
        outlines.tolist(),
        [roads_metric[p] for p in town_pieces],
        cameras,
        categories,
        case_volumes(seed, plan, scale, incidents_per_town),
        end,
        progress=cases_bar,
    )
    cases_bar.close()
    return County(seed, scale, end, plan, boundaries, units, roads, cameras, cases)
