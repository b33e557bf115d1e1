"""Which towns the demo county has, where they are, and which county and city they belong to.

Scale 1 is five real towns of Quzhou (衢州市) at their approximate real locations. Scale K > 1
adds 5·K − 5 synthetic towns (示范镇001…) on a jittered hexagonal lattice around them, grouped into
made-up counties with codes 330830–330879 (Quzhou's real ones are 02, 03, 22, 24, 25 and 81).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import Transformer

# Everything is generated in metres in UTM zone 50N, which covers Quzhou (114°–120°E); the
# synthetic lattice reaches ~4° from the central meridian at K=100, where areas are off by <0.4 %.
METRIC_CRS = "EPSG:32650"
CITY_CODE = "330800000000"

# Keys of the independent random streams (numpy SeedSequence entropy), one per use, so adding a
# stage never changes the numbers another stage draws.
STREAM_LATTICE = 1
STREAM_TOWN = 2
STREAM_GRIDS = 3
STREAM_UNITS = 4
STREAM_ROADS = 5
STREAM_CAMERAS = 6
STREAM_INCIDENTS = 7
STREAM_MEMBERS = 8

# Spacing of the synthetic lattice (m). Town radii stay below ~6.8 km, so 17 km apart with
# ≤0.8 km of jitter per axis keeps every pair of towns disjoint.
LATTICE_SPACING_M = 17_000.0
LATTICE_JITTER_M = 800.0
# Counties 330830–330879: 50 codes clear of the real ones (柯城 02, 衢江 03, 常山 22, 开化 24,
# 龙游 25, 江山 81), so above K≈50 a synthetic county holds more than 5 towns.
FIRST_SYNTHETIC_COUNTY = 30
SYNTHETIC_COUNTY_CODES = 50


@dataclass(frozen=True)
class RegionSpec:
    """A city or county of the plan (its geometry is the union of its towns)."""

    code: str
    name: str
    name_en: str
    parent_code: str | None


@dataclass(frozen=True)
class TownSpec:
    """One town of the plan: codes, names and the documented centre (WGS84)."""

    index: int  # position in the plan; keys the town's random streams
    code: str
    name: str
    name_en: str
    short: str  # the name without 镇, used in unit and road names
    county_code: str
    lon: float
    lat: float
    synthetic: bool

    @property
    def prefix(self) -> str:
        """The first nine digits of the code, which prefix the town's village codes."""
        return self.code[:9]


@dataclass(frozen=True)
class Plan:
    """The city, counties and towns of a demo county at one scale."""

    city: RegionSpec
    counties: tuple[RegionSpec, ...]
    towns: tuple[TownSpec, ...]

    def county(self, code: str) -> RegionSpec:
        """The county with this code."""
        return next(county for county in self.counties if county.code == code)


CITY = RegionSpec(CITY_CODE, "衢州市", "Quzhou", None)
REAL_COUNTIES = (
    RegionSpec("330803000000", "衢江区", "Qujiang", CITY_CODE),
    RegionSpec("330822000000", "常山县", "Changshan", CITY_CODE),
    RegionSpec("330824000000", "开化县", "Kaihua", CITY_CODE),
    RegionSpec("330881000000", "江山市", "Jiangshan", CITY_CODE),
)
_QUJIANG, _CHANGSHAN, _KAIHUA, _JIANGSHAN = (county.code for county in REAL_COUNTIES)
REAL_TOWNS = (
    TownSpec(0, "330803114000", "高家镇", "Gaojia", "高家", _QUJIANG, 119.028, 29.003, False),
    TownSpec(1, "330803110000", "大洲镇", "Dazhou", "大洲", _QUJIANG, 118.981, 28.873, False),
    TownSpec(2, "330822111000", "球川镇", "Qiuchuan", "球川", _CHANGSHAN, 118.355, 28.833, False),
    TownSpec(3, "330881121000", "贺村镇", "Hecun", "贺村", _JIANGSHAN, 118.530, 28.667, False),
    TownSpec(4, "330824115000", "华埠镇", "Huabu", "华埠", _KAIHUA, 118.354, 29.010, False),
)  # fmt: skip


@lru_cache(maxsize=2)
def transformer(to_metric: bool) -> Transformer:
    """The WGS84 ↔ UTM 50N transformer (lon/lat order), made once per process."""
    if to_metric:
        return Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    return Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random generator for ``(seed, *keys)``; never depends on call order."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def make_plan(seed: int, scale: int = 1) -> Plan:
    """The towns of the demo county at ``scale``: the five real ones, then synthetic ones."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    towns = list(REAL_TOWNS)
    counties = list(REAL_COUNTIES)
    extra = 5 * scale - len(REAL_TOWNS)
    if extra > 0:
        lon, lat = _lattice(seed, extra)
        per_county = max(5, math.ceil(extra / SYNTHETIC_COUNTY_CODES))
        for number in range(extra):
            county_number, town_number = divmod(number, per_county)
            county_digits = f"3308{FIRST_SYNTHETIC_COUNTY + county_number:02d}"
            county_code = county_digits + "000000"
            if town_number == 0:
                counties.append(
                    RegionSpec(
                        county_code,
                        f"示范县{county_number + 1:02d}",
                        f"Demo County {county_number + 1:02d}",
                        CITY_CODE,
                    )
                )
            label = f"{number + 1:03d}"
            towns.append(
                TownSpec(
                    index=len(towns),
                    code=f"{county_digits}{101 + town_number:03d}000",
                    name=f"示范镇{label}",
                    name_en=f"Demo Town {label}",
                    short=f"示范{label}",
                    county_code=county_code,
                    lon=float(lon[number]),
                    lat=float(lat[number]),
                    synthetic=True,
                )
            )
    return Plan(CITY, tuple(counties), tuple(towns))


def _lattice(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (lon, lat) of ``count`` synthetic towns around the real ones, grouped by row."""
    to_metric = transformer(True)
    real_x, real_y = to_metric.transform(
        np.array([t.lon for t in REAL_TOWNS]), np.array([t.lat for t in REAL_TOWNS])
    )
    origin_x, origin_y = float(np.mean(real_x)), float(np.mean(real_y))
    row_step = LATTICE_SPACING_M * math.sqrt(3) / 2
    radius = 4
    while True:
        col_grid, row_grid = np.meshgrid(
            np.arange(-radius, radius + 1), np.arange(-radius, radius + 1)
        )
        cols, rows = col_grid.ravel(), row_grid.ravel()
        x = origin_x + (cols + 0.5 * (rows % 2)) * LATTICE_SPACING_M
        y = origin_y + rows * row_step
        # Keep lattice points a full spacing away from every real town.
        clear = np.min(np.hypot(x[:, None] - real_x, y[:, None] - real_y), axis=1)
        keep = clear >= LATTICE_SPACING_M
        distance = np.round(np.hypot(x - origin_x, y - origin_y))
        # Nearest to the origin first; ties broken by row then column, so the choice is exact.
        order = np.lexsort((cols, rows, distance))
        chosen = order[keep[order]]
        # Only use the ring of lattice points fully inside the square searched so far.
        inner = chosen[distance[chosen] <= radius * row_step]
        if len(inner) >= count:
            break
        radius *= 2
    picked = inner[:count]
    # Group neighbours into counties: row by row, alternating direction (a serpentine), so a
    # county's towns sit side by side and its primary road is short.
    serpentine = np.where(rows[picked] % 2 == 0, cols[picked], -cols[picked])
    picked = picked[np.lexsort((serpentine, rows[picked]))]
    rng = stream(seed, STREAM_LATTICE)
    jitter = rng.uniform(-LATTICE_JITTER_M, LATTICE_JITTER_M, size=(count, 2))
    lon, lat = transformer(False).transform(x[picked] + jitter[:, 0], y[picked] + jitter[:, 1])
    return np.asarray(lon), np.asarray(lat)
