"""A year of cases for the demo county, generated as numpy arrays (no per-case Python).

Where: each category has a mix of places — the town's market (its centre), village centres
(weighted by households), along roads, a few busy sites per town (factories, schools, scenic
spots) as gaussian clusters, and a uniform background; camera-reported cases lie in the view of
one of the town's cameras. Every point is kept only if it lies inside its town as stored (the
rounded WGS84 outline), so every case has a grid.

When: a per-category seasonal profile (plum-rain floods in June, straw burning after the
harvests, fire hazards in winter, car surges on holidays), fewer service cases at weekends and a
daytime curve (Beijing time). The profile is laid on a fixed reference year and the result is
moved to end at ``end``, so ``end`` shifts the time axis and changes nothing else.

Life: report → assign → accept → start → resolve → close, with the time to close drawn as a
fraction of the time limit (lognormal, ~5 % late); ~2 % are returned once for rework (resolve →
return → start → resolve) and ~1 % extended (``extend``, state unchanged, ``data.due_at`` the new
deadline, which is also the case's ``due_at``). Events after ``end`` have not happened yet, so
recent cases are open in various states; ~0.2 % of older cases are stuck open. ``due_at`` is
``reported_at`` plus the category's time limit in calendar hours (``working_hours`` is not
applied). Event actors: ``grid_member:<member id>``, ``camera:<camera code>``,
``hotline:12345`` or ``citizen`` for the report; ``command_room:<town code>`` for assign, extend,
return and close; ``unit:<unit code>`` for accept, start and resolve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from gis.layers.incidents import IncidentStatus, ReporterKind
from gis.sample import shapes
from gis.sample.places import STREAM_INCIDENTS, TownSpec, stream
from gis.sample.roads import TownGeometry

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DAY_S = 86_400
HISTORY_DAYS = 365
# The seasonal calendar is laid on the year ending here (the tests' end), then shifted to `end`.
REFERENCE_END = datetime(2026, 11, 1, tzinfo=UTC)
BEIJING_OFFSET_H = 8
NULL_TIME = -1  # "no timestamp" in the int64 second arrays

REWORK_SHARE = 0.02
EXTEND_SHARE = 0.01
STUCK_SHARE = 0.002
# Time to close as a fraction of the time allowed: lognormal with median 0.5 and sigma 0.42,
# so P(fraction > 1) ≈ 5 % (late cases) and a case reported a day before `end` is often open.
CLOSE_FRACTION_MEDIAN = 0.5
CLOSE_FRACTION_SIGMA = 0.42

# Places a case can be: the index order of Profile.where.
MARKET, VILLAGE, ROAD, SITE, BACKGROUND = range(5)
PLACE_SPREAD_M = {MARKET: 300.0, VILLAGE: 250.0, ROAD: 15.0, SITE: 150.0}
SITES_PER_TOWN = (3, 6)


@dataclass(frozen=True)
class Profile:
    """How often a category occurs, where, when in the year, and how often a camera sees it."""

    weight: float
    where: tuple[float, float, float, float, float]  # market, village, road, site, background
    season: str = "flat"
    camera: float = 0.04


# Relative frequencies: enforcement and governance cases dominate a rural command room's load,
# then convenience services, then market supervision.
PROFILES: dict[str, Profile] = {
    "public_security_hazard": Profile(5.0, (0.25, 0.35, 0.15, 0.10, 0.15)),
    "neighbour_dispute": Profile(8.0, (0.05, 0.75, 0.0, 0.0, 0.20), camera=0.0),
    "land_dispute": Profile(3.0, (0.0, 0.20, 0.0, 0.0, 0.80), "spring", camera=0.0),
    "crowd_gathering": Profile(1.5, (0.40, 0.30, 0.10, 0.20, 0.0), "holiday", camera=0.30),
    "car_surge": Profile(1.5, (0.10, 0.50, 0.40, 0.0, 0.0), "holiday", camera=0.50),
    "traffic_accident": Profile(4.0, (0.10, 0.05, 0.85, 0.0, 0.0), camera=0.35),
    "road_hazard": Profile(4.0, (0.0, 0.0, 0.90, 0.0, 0.10), "flood", camera=0.10),
    "flood_patrol": Profile(3.0, (0.0, 0.20, 0.20, 0.0, 0.60), "flood", camera=0.02),
    "landslide_risk": Profile(1.0, (0.0, 0.10, 0.20, 0.0, 0.70), "flood", camera=0.0),
    "fire_hazard": Profile(2.5, (0.20, 0.50, 0.0, 0.20, 0.10), "winter"),
    "production_safety": Profile(2.0, (0.10, 0.10, 0.10, 0.70, 0.0)),
    "elderly_fraud_sales": Profile(2.0, (0.35, 0.55, 0.0, 0.10, 0.0), camera=0.0),
    "food_safety": Profile(3.5, (0.60, 0.30, 0.05, 0.05, 0.0), "summer", camera=0.0),
    "unlicensed_trade": Profile(2.5, (0.50, 0.30, 0.20, 0.0, 0.0)),
    "counterfeit_goods": Profile(1.5, (0.70, 0.20, 0.0, 0.10, 0.0), camera=0.0),
    "price_fraud": Profile(1.5, (0.80, 0.20, 0.0, 0.0, 0.0), "holiday", camera=0.0),
    "pharmacy_violation": Profile(1.0, (0.60, 0.40, 0.0, 0.0, 0.0), camera=0.0),
    "cooking_fume": Profile(6.0, (0.50, 0.50, 0.0, 0.0, 0.0), "summer"),
    "noise_nuisance": Profile(6.0, (0.40, 0.40, 0.10, 0.10, 0.0), "summer", camera=0.0),
    "illegal_building": Profile(5.0, (0.05, 0.60, 0.05, 0.0, 0.30), "spring", camera=0.05),
    "street_occupation": Profile(7.0, (0.60, 0.10, 0.30, 0.0, 0.0), camera=0.15),
    "illegal_dumping": Profile(6.0, (0.0, 0.30, 0.30, 0.0, 0.40), camera=0.08),
    "open_burning": Profile(3.0, (0.0, 0.20, 0.0, 0.0, 0.80), "burning", camera=0.06),
    "river_pollution": Profile(2.0, (0.0, 0.20, 0.0, 0.30, 0.50), "summer", camera=0.02),
    "document_errand": Profile(4.0, (0.10, 0.85, 0.0, 0.0, 0.05), camera=0.0),
    "elderly_card": Profile(2.0, (0.10, 0.85, 0.0, 0.0, 0.05), camera=0.0),
    "homestead_check": Profile(2.0, (0.0, 0.80, 0.0, 0.0, 0.20), "spring", camera=0.0),
    "timber_permit": Profile(1.0, (0.0, 0.30, 0.0, 0.0, 0.70), "winter", camera=0.0),
    "accident_certificate": Profile(1.0, (0.10, 0.85, 0.0, 0.0, 0.05), camera=0.0),
    "social_assistance": Profile(2.0, (0.05, 0.90, 0.0, 0.0, 0.05), "winter", camera=0.0),
    "public_facility_repair": Profile(4.0, (0.20, 0.50, 0.30, 0.0, 0.0), "flood", camera=0.03),
}
DEFAULT_PROFILE = Profile(1.0, (0.20, 0.40, 0.15, 0.05, 0.20))

# Who reports: grid members find most cases on patrol; the rest come by phone (the 12345
# hotline), from citizens directly, or from a camera (its share is per category, above).
REPORTERS = (
    ReporterKind.GRID_MEMBER,
    ReporterKind.CITIZEN,
    ReporterKind.HOTLINE,
    ReporterKind.CAMERA,
)
REPORTER_SHARES = (0.72, 0.13, 0.15)  # of the non-camera reports
GRID_MEMBER, CITIZEN, HOTLINE, CAMERA = range(4)

# Beijing-time hour of day weights: office hours and the early evening.
DAY_CURVE = np.array(
    [0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 1.0, 2.2, 3.5, 4.0, 3.8, 3.2,
     2.5, 2.8, 3.5, 3.6, 3.3, 2.8, 2.2, 2.0, 1.8, 1.4, 0.9, 0.5]
)  # fmt: skip
EVENING_CURVE = np.array(
    [1.2, 0.8, 0.4, 0.2, 0.2, 0.3, 0.6, 1.0, 1.2, 1.2, 1.3, 1.6,
     1.8, 1.4, 1.2, 1.2, 1.4, 2.0, 3.0, 3.6, 3.8, 3.4, 2.6, 1.8]
)  # fmt: skip
EVENING_CATEGORIES = frozenset({"cooking_fume", "noise_nuisance"})


@dataclass(frozen=True)
class Step:
    """One column of the event matrix: an action and the states it moves between."""

    action: str
    from_status: str | None
    to_status: str
    actor: str  # reporter | command_room | unit
    note: str | None


_S = IncidentStatus
STEPS = (
    Step("report", None, _S.REPORTED, "reporter", None),
    Step("assign", _S.REPORTED, _S.ASSIGNED, "command_room", "按职责交办"),
    Step("accept", _S.ASSIGNED, _S.ACCEPTED, "unit", "已签收"),
    Step("start", _S.ACCEPTED, _S.IN_PROGRESS, "unit", "开始处置"),
    Step("extend", _S.IN_PROGRESS, _S.IN_PROGRESS, "command_room", "申请延期，已批准"),
    Step("resolve", _S.IN_PROGRESS, _S.RESOLVED, "unit", "处置完毕"),
    Step("return", _S.RESOLVED, _S.RETURNED, "command_room", "核查未通过，退回重办"),
    Step("start", _S.RETURNED, _S.IN_PROGRESS, "unit", "重新处置"),
    Step("resolve", _S.IN_PROGRESS, _S.RESOLVED, "unit", "整改完毕"),
    Step("close", _S.RESOLVED, _S.CLOSED, "command_room", "核查办结"),
)
(REPORT, ASSIGN, ACCEPT, START, EXTEND, RESOLVE, RETURN, RESTART, RERESOLVE, CLOSE) = range(
    len(STEPS)
)
STATUSES = tuple(s.value for s in IncidentStatus)
_STATUS_INDEX = {value: i for i, value in enumerate(STATUSES)}
STEP_TO_STATUS = np.array([_STATUS_INDEX[step.to_status] for step in STEPS], dtype=np.int16)


@dataclass
class Cases:
    """Every case as parallel arrays, sorted by report time (the index + 1 is the case id)."""

    town: IntArray  # index into the plan's towns
    category: IntArray  # index into the catalog
    reporter: IntArray  # index into REPORTERS
    camera: IntArray  # camera id for camera reports, else 0
    lon: FloatArray
    lat: FloatArray
    occurred: IntArray  # epoch seconds
    reported: IntArray
    assigned: IntArray  # NULL_TIME when not yet assigned
    due: IntArray
    resolved: IntArray
    closed: IntArray
    updated: IntArray
    status: IntArray  # index into STATUSES
    event_case: IntArray = field(repr=False)  # events: case index (0-based)
    event_step: IntArray = field(repr=False)  # index into STEPS
    event_at: IntArray = field(repr=False)
    event_due: IntArray = field(repr=False)  # new deadline of an extend, else NULL_TIME

    def __len__(self) -> int:
        return len(self.town)


def _bump(doy: FloatArray, centre: float, width: float) -> FloatArray:
    """A gaussian bump on the circular year."""
    distance = np.abs(doy - centre)
    distance = np.minimum(distance, 365.0 - distance)
    return np.exp(-0.5 * (distance / width) ** 2)


def _window(doy: FloatArray, first: int, last: int) -> FloatArray:
    """1 inside the day-of-year window [first, last], else 0."""
    return ((doy >= first) & (doy <= last)).astype(np.float64)


def season_weights(season: str, doy: FloatArray) -> FloatArray:
    """Relative daily frequency of a category over the (reference) year."""
    if season == "flood":  # the plum rains (梅雨) of June, typhoons in August
        return 0.3 + 3.0 * _bump(doy, 171, 22) + 1.2 * _bump(doy, 232, 18)
    if season == "burning":  # straw after the early-summer and autumn harvests
        return 0.4 + 2.0 * _bump(doy, 155, 15) + 2.5 * _bump(doy, 298, 20)
    if season == "winter":
        return 0.6 + 1.2 * _bump(doy, 15, 35)
    if season == "summer":
        return 0.7 + 0.8 * _bump(doy, 200, 40)
    if season == "spring":  # building and land work after the Spring Festival
        return 0.7 + 0.8 * _bump(doy, 85, 30)
    if season == "holiday":  # Spring Festival, May Day and National Day weeks
        return (
            1.0
            + 3.0 * _window(doy, 45, 53)
            + 3.0 * _window(doy, 121, 125)
            + 4.0 * _window(doy, 274, 280)
        )
    return np.ones_like(doy)


@dataclass(frozen=True)
class CategoryRow:
    """What the generator needs from one catalog category."""

    code: str
    platform: str
    time_limit_hours: float


def generate_cases(
    seed: int,
    towns: Sequence[TownSpec],
    geometry: Sequence[TownGeometry],
    town_outlines: Sequence[Any],
    road_pieces: Sequence[npt.NDArray[np.object_]],
    cameras: Sequence[dict[str, Any]],
    categories: Sequence[CategoryRow],
    per_town: Sequence[int],
    end: datetime,
    progress: Any = None,
) -> Cases:
    """All cases of all towns, with their event log, ending at ``end``."""
    profiles = [PROFILES.get(c.code, DEFAULT_PROFILE) for c in categories]
    weights = np.array([p.weight for p in profiles])
    # Offices are shut at weekends: service and market cases drop then, the others a little.
    office = np.array([c.platform in ("service", "market") for c in categories])
    evening = np.array([c.code in EVENING_CATEGORIES for c in categories])
    by_town: dict[str, list[dict[str, Any]]] = {}
    for camera in cameras:
        by_town.setdefault(camera["town_code"], []).append(camera)
    parts: list[dict[str, np.ndarray]] = []
    for spec, town, outline, roads, count in zip(
        towns, geometry, town_outlines, road_pieces, per_town, strict=True
    ):
        town_cameras = by_town.get(spec.code, [])
        rng = stream(seed, STREAM_INCIDENTS, spec.index)
        parts.append(
            _town_cases(
                rng,
                spec,
                town,
                outline,
                roads,
                town_cameras,
                profiles,
                weights,
                count,
                office,
                evening,
            )
        )
        if progress is not None:
            progress.update(1)
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    rng = stream(seed, STREAM_INCIDENTS, 1_000_000_000)
    return _life(rng, merged, categories, end)


def _town_cases(
    rng: np.random.Generator,
    spec: TownSpec,
    town: TownGeometry,
    outline: Any,
    roads: npt.NDArray[np.object_],
    cameras: list[dict[str, Any]],
    profiles: list[Profile],
    weights: FloatArray,
    count: int,
    office: npt.NDArray[np.bool_],
    evening: npt.NDArray[np.bool_],
) -> dict[str, np.ndarray]:
    """Category, reporter, place and reference-year time of one town's cases."""
    category = rng.choice(len(profiles), size=count, p=weights / weights.sum())
    camera_share = np.array([p.camera for p in profiles])[category]
    if not cameras:
        camera_share = np.zeros(count)
    roll = rng.random(count)
    others = np.searchsorted(np.cumsum(REPORTER_SHARES) / sum(REPORTER_SHARES), rng.random(count))
    reporter = np.where(roll < camera_share, CAMERA, np.minimum(others, 2))

    where = np.array([p.where for p in profiles])[category]
    place = rng.random(count)[:, None] > np.cumsum(where, axis=1) / where.sum(axis=1)[:, None]
    place = place.sum(axis=1)
    sites = shapes.points_in(
        rng, town.polygon, int(rng.integers(SITES_PER_TOWN[0], SITES_PER_TOWN[1] + 1))
    )

    xy = np.empty((count, 2))
    camera = np.zeros(count, dtype=np.int64)
    todo = np.arange(count)
    # Draw, keep what lands inside the stored (rounded, WGS84) town outline, redraw the rest.
    for _ in range(50):
        if len(todo) == 0:
            break
        candidate = _places(rng, town, roads, sites, cameras, place[todo], reporter[todo])
        lon, lat = shapes.xy_to_lonlat(candidate[0][:, 0], candidate[0][:, 1])
        lon, lat = np.round(lon, 6), np.round(lat, 6)
        inside = shapely.contains_xy(outline, lon, lat)
        xy[todo[inside]] = np.column_stack([lon[inside], lat[inside]])
        camera[todo[inside]] = candidate[1][inside]
        todo = todo[~inside]
    if len(todo):
        raise RuntimeError(f"town {spec.code}: could not place {len(todo)} cases inside it")
    day, second = _when(rng, profiles, category, office, evening)
    return {
        "town": np.full(count, spec.index, dtype=np.int64),
        "category": category.astype(np.int64),
        "reporter": reporter.astype(np.int64),
        "camera": camera,
        "lon": xy[:, 0],
        "lat": xy[:, 1],
        "offset": day * DAY_S + second,
        "lead": np.round(rng.lognormal(math.log(1800.0), 1.0, count)).astype(np.int64),
    }


def _places(
    rng: np.random.Generator,
    town: TownGeometry,
    roads: npt.NDArray[np.object_],
    sites: FloatArray,
    cameras: list[dict[str, Any]],
    place: npt.NDArray[np.int64],
    reporter: npt.NDArray[np.int64],
) -> tuple[FloatArray, IntArray]:
    """Candidate points (metres) for cases of the given place kinds; camera ids of camera cases."""
    count = len(place)
    xy = np.empty((count, 2))
    camera = np.zeros(count, dtype=np.int64)
    spread = np.zeros(count)
    for kind, sd in PLACE_SPREAD_M.items():
        spread[place == kind] = sd
    mask = place == MARKET
    xy[mask] = town.centre
    mask = place == VILLAGE
    if mask.any():
        p = town.village_households / town.village_households.sum()
        xy[mask] = town.village_centres[rng.choice(len(p), size=int(mask.sum()), p=p)]
    mask = place == ROAD
    if mask.any():
        if len(roads):
            # Uniform along the town's roads: a piece by its length, then a point along it.
            lengths = shapely.length(roads)
            pick = rng.choice(len(roads), size=int(mask.sum()), p=lengths / lengths.sum())
            along = rng.random(len(pick)) * lengths[pick]
            xy[mask] = shapely.get_coordinates(shapely.line_interpolate_point(roads[pick], along))
        else:
            xy[mask] = town.centre
    mask = place == SITE
    xy[mask] = sites[rng.integers(0, len(sites), int(mask.sum()))]
    mask = place == BACKGROUND
    if mask.any():
        x0, y0, x1, y1 = town.polygon.bounds
        xy[mask] = np.column_stack(
            [rng.uniform(x0, x1, int(mask.sum())), rng.uniform(y0, y1, int(mask.sum()))]
        )
    xy += rng.normal(0.0, 1.0, (count, 2)) * spread[:, None]

    mask = reporter == CAMERA
    if mask.any() and cameras:
        n = int(mask.sum())
        pick = rng.integers(0, len(cameras), n)
        origin = np.array([[cameras[i]["x"], cameras[i]["y"]] for i in pick.tolist()])
        heading = np.array([cameras[i]["heading_deg"] for i in pick.tolist()])
        fov = np.array([cameras[i]["fov_deg"] for i in pick.tolist()])
        reach = np.array([cameras[i]["range_m"] for i in pick.tolist()])
        # Uniform over the sector: bearing within the field of view, radius ~ sqrt(u).
        bearing = np.radians(heading + (rng.random(n) - 0.5) * fov)
        radius = reach * np.sqrt(rng.uniform(0.01, 0.9, n))
        xy[mask] = origin + np.column_stack([np.sin(bearing), np.cos(bearing)]) * radius[:, None]
        camera[mask] = np.array([cameras[i]["id"] for i in pick.tolist()])
    return xy, camera


def _when(
    rng: np.random.Generator,
    profiles: list[Profile],
    category: npt.NDArray[np.int64],
    office: npt.NDArray[np.bool_],
    evening: npt.NDArray[np.bool_],
) -> tuple[IntArray, IntArray]:
    """Day of the reference year (0 = first) and UTC second of day of each case."""
    start = np.datetime64(REFERENCE_END.replace(tzinfo=None), "D") - HISTORY_DAYS
    dates = start + np.arange(HISTORY_DAYS)
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.float64)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weekend = weekday >= 5
    day = np.empty(len(category), dtype=np.int64)
    hour = np.empty(len(category), dtype=np.int64)
    for c in np.unique(category).tolist():
        mask = category == c
        profile = profiles[c]
        weights = season_weights(profile.season, doy)
        weights = weights * np.where(weekend, 0.45 if office[c] else 0.9, 1.0)
        if profile.season == "holiday":
            weights = weights * np.where(weekend, 1.6, 1.0)
        cdf = np.cumsum(weights) / weights.sum()
        day[mask] = np.searchsorted(cdf, rng.random(int(mask.sum())), side="right")
        curve = EVENING_CURVE if evening[c] else DAY_CURVE
        hour[mask] = rng.choice(24, size=int(mask.sum()), p=curve / curve.sum())
    second = (hour - BEIJING_OFFSET_H) * 3600 + rng.integers(0, 3600, len(category))
    # Beijing's small hours are the previous UTC day; fold them back into day 0 at the start.
    moved = day * DAY_S + second
    moved = np.clip(moved, 0, HISTORY_DAYS * DAY_S - 1)
    return moved // DAY_S, moved % DAY_S


def _life(
    rng: np.random.Generator,
    cases: dict[str, np.ndarray],
    categories: Sequence[CategoryRow],
    end: datetime,
) -> Cases:
    """Sort by report time, then draw each case's life and cut it at ``end``."""
    history_start = int((end - timedelta(days=HISTORY_DAYS)).timestamp())
    end_s = int(end.timestamp())
    # One integer key (offset < 2^25 s, town < 2^24, category < 2^8) sorts faster than lexsort;
    # a stable sort keeps equal keys in generation order, so the result is deterministic.
    key = (cases["offset"] << 32) | (cases["town"] << 8) | cases["category"]
    order = np.argsort(key, kind="stable")
    cases = {name: value[order] for name, value in cases.items()}
    reported = history_start + cases["offset"]
    n = len(reported)

    limit = np.array([c.time_limit_hours * 3600.0 for c in categories])[cases["category"]]
    due = reported + np.round(limit).astype(np.int64)
    extend = rng.random(n) < EXTEND_SHARE
    new_due = due + np.round(limit * rng.uniform(0.5, 1.0, n)).astype(np.int64)
    allowed = np.where(extend, new_due, due) - reported
    fraction = np.clip(
        rng.lognormal(math.log(CLOSE_FRACTION_MEDIAN), CLOSE_FRACTION_SIGMA, n), 0.03, 4.0
    )
    total = fraction * allowed
    to_assign = np.minimum(rng.lognormal(math.log(480.0), 0.7, n), 0.08 * total)
    to_accept = np.minimum(rng.lognormal(math.log(900.0), 0.8, n), 0.12 * total)
    rest = total - to_assign - to_accept
    to_start = rest * rng.beta(2.0, 8.0, n)
    rest = rest - to_start
    to_resolve = rest * rng.beta(8.0, 2.0, n)

    t = np.full((n, len(STEPS)), np.nan)
    t[:, REPORT] = reported
    t[:, ASSIGN] = reported + to_assign
    t[:, ACCEPT] = t[:, ASSIGN] + to_accept
    t[:, START] = t[:, ACCEPT] + to_start
    t[:, CLOSE] = reported + total
    t[:, RESOLVE] = t[:, START] + to_resolve

    rework = rng.random(n) < REWORK_SHARE
    first = t[:, START] + to_resolve * rng.uniform(0.3, 0.55, n)
    back = first + (t[:, CLOSE] - first) * rng.uniform(0.1, 0.25, n)
    again = back + (t[:, CLOSE] - back) * rng.uniform(0.05, 0.2, n)
    fixed = again + (t[:, CLOSE] - again) * rng.uniform(0.6, 0.9, n)
    t[rework, RESOLVE] = first[rework]
    t[rework, RETURN] = back[rework]
    t[rework, RESTART] = again[rework]
    t[rework, RERESOLVE] = fixed[rework]
    # The extension is asked for while the work is under way, before the first resolution.
    asked = t[:, START] + (t[:, RESOLVE] - t[:, START]) * rng.uniform(0.2, 0.8, n)
    t[extend, EXTEND] = asked[extend]

    # Whole seconds, each step at least one second after the one before: with r the rank of
    # a step among the case's steps, t'_k = r_k + max_{j<=k}(t_j - r_j).
    times = np.floor(t)
    present = ~np.isnan(times)
    rank = np.cumsum(present, axis=1)
    lifted = np.maximum.accumulate(np.where(present, times - rank, -np.inf), axis=1)
    times = np.where(present, lifted + rank, np.nan)
    # What has not happened by `end` is not in the log; a few old cases are stuck part-way.
    stuck = rng.random(n) < STUCK_SHARE
    cut = reported + (times[:, CLOSE] - reported) * rng.uniform(0.02, 0.9, n)
    horizon = np.where(stuck, np.minimum(cut, end_s - 1), end_s - 1)
    present &= times <= horizon[:, None]
    present[:, REPORT] = True
    times = np.where(present, times, -1).astype(np.int64)

    last = len(STEPS) - 1 - np.argmax(present[:, ::-1], axis=1)
    status = STEP_TO_STATUS[last].astype(np.int64)
    finished = np.isin(status, [_STATUS_INDEX[_S.RESOLVED], _STATUS_INDEX[_S.CLOSED]])
    resolved_at = np.where(present[:, RERESOLVE], times[:, RERESOLVE], times[:, RESOLVE])
    row, column = np.nonzero(present)  # row-major: by case, then in step order
    return Cases(
        town=cases["town"],
        category=cases["category"],
        reporter=cases["reporter"],
        camera=cases["camera"],
        lon=cases["lon"],
        lat=cases["lat"],
        occurred=reported - cases["lead"],
        reported=reported,
        assigned=times[:, ASSIGN],
        due=np.where(present[:, EXTEND], new_due, due),
        resolved=np.where(finished, resolved_at, NULL_TIME),
        closed=times[:, CLOSE],
        updated=times[np.arange(n), last],
        status=status,
        event_case=row.astype(np.int64),
        event_step=column.astype(np.int64),
        event_at=times[row, column],
        event_due=np.where(column == EXTEND, new_due[row], NULL_TIME),
    )
