"""Responder units and cameras of the demo county."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.geo import geodesic_bearing_deg, sector_polygon
from gis.layers.cameras import CameraKind, CameraStatus
from gis.layers.categories import Platform
from gis.layers.units import UnitStatus, UnitType
from gis.sample import shapes
from gis.sample.places import STREAM_CAMERAS, STREAM_UNITS, Plan, TownSpec, stream
from gis.sample.roads import ROAD_CLASSES, TownGeometry

CAMERAS_PER_TOWN = (50, 150)
FIXED_SHARE = (0.8, 0.9)  # the rest are dome and PTZ cameras at village centres
FIXED_FOV_DEG = (40.0, 90.0)
FIXED_RANGE_M = (60.0, 200.0)
DOME_RANGE_M = (50.0, 120.0)
PTZ_RANGE_M = (120.0, 300.0)
# Cameras go where traffic is: weight of a road piece = its length × this factor of its class.
CLASS_WEIGHT = {"primary": 4.0, "secondary": 2.5, "tertiary": 1.5, "residential": 1.0}


@dataclass(frozen=True)
class UnitKind:
    """One kind of unit a town or county has, and how its name and code are made."""

    unit_type: UnitType
    platform: Platform
    suffix: str  # of the unit code
    name: str  # format string with {town}, {short} or {county}


TOWN_UNITS = (
    UnitKind(UnitType.SERVICE_CENTRE, Platform.SERVICE, "service", "{town}便民服务中心"),
    UnitKind(UnitType.POLICE_STATION, Platform.GOVERNANCE, "police", "{short}派出所"),
    UnitKind(UnitType.MARKET_OFFICE, Platform.MARKET, "market", "{short}市场监管所"),
    UnitKind(
        UnitType.ENFORCEMENT_SQUAD, Platform.ENFORCEMENT, "enforcement", "{short}综合执法中队"
    ),
)
COUNTY_UNITS = (
    UnitKind(UnitType.TRAFFIC_POLICE, Platform.GOVERNANCE, "traffic", "{county}交警大队"),
    UnitKind(UnitType.EMERGENCY_TEAM, Platform.GOVERNANCE, "emergency", "{county}应急防汛队"),
)


def _status(rng: np.random.Generator) -> str:
    """Mostly available; a few busy or off duty, as a live board would show."""
    roll = rng.random()
    if roll < 0.85:
        return UnitStatus.AVAILABLE.value
    return UnitStatus.BUSY.value if roll < 0.95 else UnitStatus.OFF_DUTY.value


def _near(
    rng: np.random.Generator, centre: np.ndarray, inside: BaseGeometry, low: float, high: float
) -> np.ndarray:
    """A point ``low``–``high`` metres from ``centre`` in a random direction, inside a polygon."""
    for _ in range(100):
        angle = rng.uniform(0.0, 2 * math.pi)
        point = centre + rng.uniform(low, high) * np.array([math.cos(angle), math.sin(angle)])
        if inside.contains(shapely.Point(point)):
            return point
        high = max(low, high * 0.8)
    return centre


def build_units(seed: int, plan: Plan, towns: list[TownGeometry]) -> list[dict[str, Any]]:
    """Four units per town near its centre and two per county, as rows with lon/lat."""
    by_code = {t.code: t for t in towns}
    rows: list[dict[str, Any]] = []

    def add(kind: UnitKind, jurisdiction: str, name: str, xy: np.ndarray, status: str) -> None:
        lon, lat = shapes.xy_to_lonlat(xy[:1], xy[1:])
        rows.append(
            {
                "code": f"{jurisdiction}-{kind.suffix}",
                "name": name,
                "platform": kind.platform.value,
                "unit_type": kind.unit_type.value,
                "jurisdiction_code": jurisdiction,
                "status": status,
                "phone": f"171{len(rows) + 1:08d}",
                "lon": round(float(lon[0]), 7),
                "lat": round(float(lat[0]), 7),
            }
        )

    for spec in plan.towns:
        town = by_code[spec.code]
        rng = stream(seed, STREAM_UNITS, spec.index)
        for kind in TOWN_UNITS:
            xy = _near(rng, town.centre, town.polygon, 100.0, 600.0)
            name = kind.name.format(town=spec.name, short=spec.short)
            add(kind, spec.code, name, xy, _status(rng))
    for number, county in enumerate(plan.counties):
        specs = sorted(
            (t for t in plan.towns if t.county_code == county.code), key=lambda t: t.code
        )
        if not specs:
            continue
        # County units sit in the county's first town, a little way out of its centre.
        seat: TownSpec = specs[0]
        rng = stream(seed, STREAM_UNITS, 1_000_000 + number)
        for kind in COUNTY_UNITS:
            town = by_code[seat.code]
            xy = _near(rng, town.centre, town.polygon, 800.0, 2_500.0)
            add(kind, county.code, kind.name.format(county=county.name), xy, _status(rng))
    return rows


def build_cameras(
    seed: int,
    plan: Plan,
    towns: list[TownGeometry],
    roads_metric: np.ndarray,
    road_classes: np.ndarray,
    road_names: list[str],
    town_pieces: list[np.ndarray],
) -> list[dict[str, Any]]:
    """50–150 cameras per town: fixed ones along roads, dome/PTZ ones at village centres.

    ``town_pieces`` lists, per town of the plan, the indices of the road pieces in it.
    """
    lengths = shapely.length(roads_metric)
    class_weight = np.array([CLASS_WEIGHT[name] for name in ROAD_CLASSES])
    rows: list[dict[str, Any]] = []
    for spec, town, mine in zip(plan.towns, towns, town_pieces, strict=True):
        rng = stream(seed, STREAM_CAMERAS, spec.index)
        count = int(rng.integers(CAMERAS_PER_TOWN[0], CAMERAS_PER_TOWN[1] + 1))
        fixed = _fixed_cameras(
            rng, town, roads_metric[mine], lengths[mine] * class_weight[road_classes[mine]],
            [road_names[i] for i in mine.tolist()], round(count * rng.uniform(*FIXED_SHARE)),
        )  # fmt: skip
        cameras = fixed + _village_cameras(rng, town, count - len(fixed))
        xy = np.array([c["xy"] for c in cameras])
        lon, lat = shapes.xy_to_lonlat(xy[:, 0], xy[:, 1])
        roll = rng.random(len(cameras))
        for number, camera in enumerate(cameras, start=1):
            lon_f, lat_f = round(float(lon[number - 1]), 7), round(float(lat[number - 1]), 7)
            label = {"fixed": "枪机", "dome": "球机", "ptz": "云台"}[camera["kind"]]
            status = (
                CameraStatus.ONLINE if roll[number - 1] < 0.92
                else CameraStatus.OFFLINE if roll[number - 1] < 0.97
                else CameraStatus.MAINTENANCE
            )  # fmt: skip
            rows.append(
                {
                    "id": len(rows) + 1,
                    "code": f"CAM-{spec.code}-{number:03d}",
                    "name": f"{camera['place']}{label}{number:03d}",
                    "kind": camera["kind"],
                    "status": status.value,
                    "heading_deg": camera["heading_deg"],
                    "fov_deg": camera["fov_deg"],
                    "range_m": camera["range_m"],
                    "town_code": spec.code,
                    "lon": lon_f,
                    "lat": lat_f,
                    "x": float(camera["xy"][0]),
                    "y": float(camera["xy"][1]),
                    "view": sector_polygon(
                        lon_f, lat_f, camera["heading_deg"], camera["fov_deg"], camera["range_m"]
                    ),
                }
            )
    return rows


def _fixed_cameras(
    rng: np.random.Generator,
    town: TownGeometry,
    roads: np.ndarray,
    weight: np.ndarray,
    names: list[str],
    wanted: int,
) -> list[dict[str, Any]]:
    """Up to ``wanted`` fixed cameras on the town's roads (busier ones likelier), looking along."""
    if len(roads) == 0 or wanted <= 0:
        return []
    # Draw twice as many spots as needed and keep the first that fall inside the town.
    pick = rng.choice(len(roads), size=2 * wanted, p=weight / weight.sum())
    length = shapely.length(roads[pick])
    position = rng.uniform(0.1, 0.9, len(pick)) * length
    at = shapely.get_coordinates(shapely.line_interpolate_point(roads[pick], position))
    keep = np.flatnonzero(shapely.contains_xy(town.polygon, at[:, 0], at[:, 1]))[:wanted]
    pick, length, position, at = pick[keep], length[keep], position[keep], at[keep]
    # The heading follows the road at that point (5 m either side), one way or the other.
    ahead = shapely.line_interpolate_point(roads[pick], np.minimum(position + 5.0, length))
    behind = shapely.line_interpolate_point(roads[pick], np.maximum(position - 5.0, 0.0))
    a = shapely.get_coordinates(shapes.to_wgs84(behind))
    b = shapely.get_coordinates(shapes.to_wgs84(ahead))
    heading = np.asarray(geodesic_bearing_deg(a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
    heading = np.where(rng.random(len(pick)) < 0.5, heading, heading + 180.0)
    fov = np.round(rng.uniform(*FIXED_FOV_DEG, len(pick)))
    reach = np.round(rng.uniform(*FIXED_RANGE_M, len(pick)))
    return [
        {
            "kind": CameraKind.FIXED.value,
            "xy": at[i],
            "heading_deg": round(float(heading[i]), 1) % 360.0,
            "fov_deg": float(fov[i]),
            "range_m": float(reach[i]),
            "place": names[int(pick[i])],
        }
        for i in range(len(pick))
    ]


def _village_cameras(
    rng: np.random.Generator, town: TownGeometry, count: int
) -> list[dict[str, Any]]:
    """``count`` dome and PTZ cameras near village centres, seeing all around."""
    villages = rng.permutation(len(town.village_centres))
    cameras = []
    for k in range(count):
        v = int(villages[k % len(villages)])
        ptz = rng.random() < 0.4
        xy = town.village_centres[v] + rng.normal(0.0, 60.0, 2)
        if not town.village_polygons[v].contains(shapely.Point(xy)):
            xy = town.village_centres[v]
        cameras.append(
            {
                "kind": (CameraKind.PTZ if ptz else CameraKind.DOME).value,
                "xy": xy,
                "heading_deg": 0.0,
                "fov_deg": 360.0,
                "range_m": round(rng.uniform(*(PTZ_RANGE_M if ptz else DOME_RANGE_M)), 0),
                "place": town.village_names[v],
            }
        )
    return cameras
