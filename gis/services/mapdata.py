"""The queries behind the command-room maps: everything is aggregated in PostGIS.

A town can hold a million cases; the page must stay a few hundred kilobytes. So the heatmap is a
count per square cell (sized in metres at the town's latitude) computed by ``GROUP BY`` in the
database, and the open-case markers are capped.

The figures of the period (received, closed, 办结率, 按期办结率, overdue) are the statistics'
own (``gis.services.stats``, one definition and one query), for each grid and for the town, as
of the same moment ``/stats`` would use; the map adds only what is "now": the cases open now
and overdue now, whenever they were reported (``gis.layers.incidents`` defines open and active).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely import from_wkb
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import geodesic_distance_m
from gis.layers.base import LOCAL_TZ
from gis.layers.cameras import Camera
from gis.layers.categories import Category, get_category, parse_platform
from gis.layers.grids import Grid, member_names_by_grid
from gis.layers.incidents import ACTIVE_STATUSES, OPEN_STATUSES, Incident
from gis.layers.regions import Region, RegionLevel, get_region
from gis.layers.units import ResponderUnit
from gis.maps.data import (
    Area,
    CameraView,
    Capped,
    CaseFigures,
    CommandRoomData,
    GridInfo,
    GridStat,
    HeatCell,
    HeatFrame,
    HotspotCell,
    OpenCase,
    UnitPoint,
    VillageGridsData,
)
from gis.services import stats

# Command rooms count days and weeks in China Standard Time, whatever the server's zone.
DEFAULT_PERIOD = timedelta(days=30)
DEFAULT_CELL_M = 250.0
MIN_CELL_M, MAX_CELL_M = 25.0, 5_000.0
# The time view bins at least twice as coarsely: it carries one set of cells per frame.
TIME_CELL_FACTOR = 2
# Most (frame, cell) pairs the time view ships; past that its cells double until it fits, so a
# year of a million cases cannot blow the page up (~32 bytes a pair: about 1 MB at most).
TIME_VIEW_BUDGET = 30_000
# Most heatmap cells over the town's bounding box (~0.8 MB); a smaller cell_m is refused.
MAX_HEAT_CELLS = 25_000
MAX_FRAMES = 200
# Days up to which the automatic time step is a day; longer periods go by week.
AUTO_DAILY_MAX_DAYS = 62
DEFAULT_MAX_MARKERS = 2_000
# ~65 bytes a marker: 5,000 open plus 5,000 overdue stay near 0.65 MB.
MAX_MARKERS = 5_000
# Grid outlines are simplified to about a metre: invisible on screen, and the page shrinks.
SIMPLIFY_DEG = 0.00001
_OPEN = sorted(status.value for status in OPEN_STATUSES)
_ACTIVE = sorted(status.value for status in ACTIVE_STATUSES)


class TimeStep(StrEnum):
    """Frames of the time view."""

    AUTO = "auto"
    DAY = "day"
    WEEK = "week"


@dataclass(frozen=True)
class Period:
    """A half-open interval [since, until) of report times, both timezone-aware."""

    since: datetime
    until: datetime


def as_aware(value: datetime) -> datetime:
    """A timezone-aware time; a naive one is read as China Standard Time (the users' clock)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL_TZ)


def resolve_period(
    since: datetime | None, until: datetime | None, *, now: datetime | None = None
) -> Period:
    """The period asked for: defaults to the 30 days up to now; ``until`` must follow ``since``."""
    now = as_aware(now) if now is not None else datetime.now(UTC)
    end = as_aware(until) if until is not None else now
    start = as_aware(since) if since is not None else end - DEFAULT_PERIOD
    if end <= start:
        raise ValidationError(
            f"until ({end.isoformat()}) must be after since ({start.isoformat()}); "
            "swap them or widen the period"
        )
    return Period(start, end)


def get_town_area(session: Session, code: str) -> Area:
    """The town with this code as an ``Area``, or ``NotFoundError``."""
    region = get_region(session, code, level=RegionLevel.TOWN)
    return Area(region.code, region.name, region.name_en, to_shape(region.geom))


def _metres_per_degree(lon: float, lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at a point (geodesic, WGS84)."""
    step = 0.01
    per_lon = geodesic_distance_m(lon, lat, lon + step, lat) / step
    per_lat = geodesic_distance_m(lon, lat, lon, lat + step) / step
    return per_lon, per_lat


@dataclass(frozen=True)
class _Binning:
    """A lon/lat lattice whose cells are ``cell_m`` metres square at the town's latitude."""

    x0: float
    y0: float
    dx: float
    dy: float

    @classmethod
    def for_area(cls, area: Area, cell_m: float) -> _Binning:
        minx, miny, maxx, maxy = area.bounds
        per_lon, per_lat = _metres_per_degree((minx + maxx) / 2, (miny + maxy) / 2)
        return cls(minx, miny, cell_m / per_lon, cell_m / per_lat)

    def columns(self) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
        """Integer cell indexes of an incident, computed in the database."""
        ix = sa.func.floor((sa.func.ST_X(Incident.geom) - self.x0) / self.dx)
        iy = sa.func.floor((sa.func.ST_Y(Incident.geom) - self.y0) / self.dy)
        return sa.cast(ix, sa.Integer).label("ix"), sa.cast(iy, sa.Integer).label("iy")

    def centre(self, ix: int, iy: int) -> tuple[float, float]:
        """The lon/lat of a cell's centre, rounded to ~0.1 m (smaller pages, same picture)."""
        return (
            round(self.x0 + (ix + 0.5) * self.dx, 6),
            round(self.y0 + (iy + 0.5) * self.dy, 6),
        )


@dataclass(frozen=True)
class CaseFilter:
    """Which of a town's cases a map counts or the dispatch queue lists: one platform's and/or
    one category's (None: all)."""

    platform: str | None = None
    category: str | None = None

    # The same selection as SQL text on ``incidents AS i``, for statements written out, bound
    # with ``params()``.
    WHERE: ClassVar[str] = (
        "(CAST(:platform AS text) IS NULL OR i.platform = :platform)"
        " AND (CAST(:category AS text) IS NULL OR i.category_code = :category)"
    )

    def params(self) -> dict[str, str | None]:
        """The bound parameters of ``WHERE`` (None: all)."""
        return {"platform": self.platform, "category": self.category}

    def check(self, session: Session) -> None:
        """Refuse an unknown platform or category, or a category of another platform."""
        parse_platform(self.platform)
        if self.category is not None:
            found = get_category(session, self.category)
            if self.platform is not None and found.platform != self.platform:
                raise ValidationError(
                    f"category {self.category!r} belongs to platform {found.platform!r}, not "
                    f"{self.platform!r}; drop one of the two filters"
                )

    def of_town(self, town_code: str) -> list[sa.ColumnElement[bool]]:
        """The conditions on ``incidents`` that select these cases of the town."""
        filters: list[sa.ColumnElement[bool]] = [Incident.town_code == town_code]
        if self.platform is not None:
            filters.append(Incident.platform == self.platform)
        if self.category is not None:
            filters.append(Incident.category_code == self.category)
        return filters


ALL_CASES = CaseFilter()


def _in_period(period: Period) -> list[sa.ColumnElement[bool]]:
    return [Incident.reported_at >= period.since, Incident.reported_at < period.until]


def choose_step(period: Period, step: TimeStep) -> TimeStep:
    """Day or week frames: ``auto`` picks days for periods up to two months."""
    if step is not TimeStep.AUTO:
        return step
    days = (period.until - period.since).total_seconds() / 86_400
    return TimeStep.DAY if days <= AUTO_DAILY_MAX_DAYS else TimeStep.WEEK


def frame_starts(period: Period, step: TimeStep) -> list[datetime]:
    """Local midnights (days) or Mondays (weeks) whose frame overlaps the period."""
    if step is TimeStep.AUTO:
        raise ValueError("resolve the step with choose_step first")
    first = period.since.astimezone(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    if step is TimeStep.WEEK:
        first -= timedelta(days=first.weekday())
    stride = timedelta(days=7 if step is TimeStep.WEEK else 1)
    starts: list[datetime] = []
    current = first
    while current < period.until:
        starts.append(current)
        if len(starts) > MAX_FRAMES:
            raise ValidationError(
                f"the time view would have more than {MAX_FRAMES} {step.value} frames; "
                "shorten the period or use step=week"
            )
        # Add days on the local calendar (China has no DST, but stay correct anyway).
        current = (current.replace(tzinfo=None) + stride).replace(tzinfo=LOCAL_TZ)
    return starts


@dataclass(frozen=True)
class PeriodFigures:
    """What one pass over the period's cases yields: the heat cells and the time frames."""

    heat: list[HeatCell]
    frames: list[HeatFrame]


def _coarsen(
    per_frame: list[dict[tuple[int, int], int]], factor: int, budget: int
) -> tuple[int, list[dict[tuple[int, int], int]]]:
    """Merge cells ``factor`` x ``factor`` (doubling the factor) until the pairs fit ``budget``."""
    while True:
        coarse: list[dict[tuple[int, int], int]] = []
        for cells in per_frame:
            merged: dict[tuple[int, int], int] = {}
            for (x, y), n in cells.items():
                key = (x // factor, y // factor)
                merged[key] = merged.get(key, 0) + n
            coarse.append(merged)
        if sum(len(cells) for cells in coarse) <= budget or factor >= 1024:
            return factor, coarse
        factor *= 2


def period_figures(
    session: Session,
    *,
    area: Area,
    period: Period,
    step: TimeStep,
    cell_m: float = DEFAULT_CELL_M,
    cases: CaseFilter = ALL_CASES,
    time_budget: int = TIME_VIEW_BUDGET,
) -> PeriodFigures:
    """Cases of the period per ``cell_m`` cell (the heatmap) and per coarser cell and local day
    or week (the time view; every frame present), from ONE aggregate in PostGIS.

    At a million cases the cost is reading the period's rows, so they are read once: grouped by
    frame and cell (a few tens of thousands of groups), then summed two ways here.
    """
    starts = frame_starts(period, step)
    stride_s = (7 if step is TimeStep.WEEK else 1) * 86_400
    binning = _Binning.for_area(area, cell_m)
    ix, iy = binning.columns()
    # Frame number by arithmetic on the epoch: the same as date_trunc in China time (no DST
    # there) and several times cheaper per row. date_part is double precision; extract() is
    # numeric since PostgreSQL 14, and slow.
    bucket = sa.cast(
        sa.func.floor(
            (sa.func.date_part("epoch", Incident.reported_at) - starts[0].timestamp()) / stride_s
        ),
        sa.Integer,
    ).label("bucket")
    query = (
        sa.select(bucket, ix, iy, sa.func.count())
        .where(*cases.of_town(area.code), *_in_period(period))
        .group_by(sa.text("1"), sa.text("2"), sa.text("3"))
    )
    fine: dict[tuple[int, int], int] = {}
    per_frame: list[dict[tuple[int, int], int]] = [{} for _ in starts]
    for frame, x, y, n in session.execute(query):
        fine[(x, y)] = fine.get((x, y), 0) + n
        cells = per_frame[min(max(frame, 0), len(starts) - 1)]
        cells[(x, y)] = cells.get((x, y), 0) + n
    factor, coarse = _coarsen(per_frame, TIME_CELL_FACTOR, time_budget)
    coarse_binning = _Binning(binning.x0, binning.y0, binning.dx * factor, binning.dy * factor)
    heat = [HeatCell(*binning.centre(x, y), n) for (x, y), n in sorted(fine.items())]
    frames = [
        HeatFrame(
            start.strftime("%Y-%m-%d"),
            [HeatCell(*coarse_binning.centre(x, y), n) for (x, y), n in sorted(cells.items())],
        )
        for start, cells in zip(starts, coarse, strict=True)
    ]
    return PeriodFigures(heat, frames)


def _simplified_wkb() -> sa.ColumnElement[Any]:
    return sa.func.ST_AsBinary(sa.func.ST_SimplifyPreserveTopology(Grid.geom, SIMPLIFY_DEG))


def _overdue_now(now: datetime) -> sa.ColumnElement[bool]:
    """An active case past its deadline at ``now`` (a resolved one waits on nobody's deadline)."""
    return sa.and_(
        Incident.status.in_(_ACTIVE), Incident.due_at.is_not(None), Incident.due_at < now
    )


def _as_figures(row: dict[str, Any]) -> CaseFigures:
    return CaseFigures(
        received=int(row["received"]),
        closed=int(row["closed"]),
        closure_rate=row["closure_rate"],
        on_time_rate=row["on_time_rate"],
        overdue_open=int(row["overdue_open"]),
    )


def period_stats(
    session: Session,
    *,
    town_code: str,
    period: Period,
    as_of: datetime | None,
    cases: CaseFilter = ALL_CASES,
) -> tuple[dict[str, CaseFigures], CaseFigures]:
    """The statistics' figures of the town's cases of the period, by grid code and for the whole
    town, from ``gis.services.stats`` in one pass (``as_of`` as there: None reads the stored
    facts)."""
    query = stats.StatsQuery(
        period.since,
        period.until,
        as_of,
        group_by=("grid",),
        town_codes=(town_code,),
        platform=cases.platform,
        category=cases.category,
        with_total=True,
    )
    by_grid: dict[str, CaseFigures] = {}
    town = CaseFigures()
    for row in stats.case_figures(session, query):
        if row["is_total"]:
            town = _as_figures(row)
        elif row["grid_code"] is not None:  # cases outside every grid count for the town only
            by_grid[row["grid_code"]] = _as_figures(row)
    return by_grid, town


def grid_stats(
    session: Session,
    *,
    town_code: str,
    period: Period,
    now: datetime,
    figures: dict[str, CaseFigures],
    cases: CaseFilter = ALL_CASES,
) -> list[GridStat]:
    """Every current grid of the town with its figures of the period (``figures``, by grid
    code) and its cases open and overdue now."""
    open_stats = (
        sa.select(
            Incident.grid_code.label("code"),
            sa.func.count().label("open"),
            sa.func.count().filter(_overdue_now(now)).label("overdue"),
        )
        .where(
            *cases.of_town(town_code),
            Incident.status.in_(_OPEN),
            Incident.reported_at < period.until,
        )
        .group_by(Incident.grid_code)
        .subquery()
    )
    query = (
        sa.select(
            Grid.code,
            Grid.name,
            _simplified_wkb(),
            Grid.households,
            sa.func.coalesce(open_stats.c.open, 0),
            sa.func.coalesce(open_stats.c.overdue, 0),
        )
        .outerjoin(open_stats, open_stats.c.code == Grid.code)
        .where(Grid.town_code == town_code, Grid.valid_to.is_(None))
        .order_by(Grid.code)
    )
    rows = session.execute(query).all()
    members = member_names_by_grid(session, [row[0] for row in rows])
    return [
        GridStat(
            code=code,
            name=name,
            geom=from_wkb(bytes(wkb)),
            households=int(households or 0),
            members=members.get(code, []),
            figures=figures.get(code, CaseFigures()),
            open_now=int(open_),
            overdue_now=int(overdue),
        )
        for code, name, wkb, households, open_, overdue in rows
    ]


def open_cases(
    session: Session,
    *,
    town_code: str,
    until: datetime,
    now: datetime,
    overdue: bool,
    limit: int = DEFAULT_MAX_MARKERS,
    cases: CaseFilter = ALL_CASES,
) -> Capped:
    """Cases open now (reported before ``until``), overdue now or not, most urgent first,
    capped."""
    late = _overdue_now(now)
    where = [
        *cases.of_town(town_code),
        Incident.status.in_(_OPEN),
        Incident.reported_at < until,
        late if overdue else sa.not_(late),
    ]
    total = int(session.execute(sa.select(sa.func.count()).where(*where)).scalar_one())
    query = (
        sa.select(
            Incident.id,
            sa.func.ST_X(Incident.geom),
            sa.func.ST_Y(Incident.geom),
            Incident.platform,
            Category.name_zh,
            Category.name_en,
            Incident.status,
            Incident.reported_at,
            Incident.due_at,
            ResponderUnit.name,
            Incident.grid_code,
        )
        .join(Category, Category.code == Incident.category_code)
        .outerjoin(ResponderUnit, ResponderUnit.id == Incident.unit_id)
        .where(*where)
        .order_by(Incident.due_at.asc().nulls_last(), Incident.id)
        .limit(limit)
    )
    items = [
        OpenCase(
            id=int(row[0]),
            lon=round(float(row[1]), 6),
            lat=round(float(row[2]), 6),
            platform=row[3],
            category_zh=row[4],
            category_en=row[5],
            status=row[6],
            reported_at=row[7],
            due_at=row[8],
            unit_name=row[9],
            grid_code=row[10],
            overdue=overdue,
        )
        for row in session.execute(query)
    ]
    return Capped(items, total)


def _town_envelope(town_code: str) -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.ST_Envelope(Region.geom))
        .where(Region.code == town_code)
        .scalar_subquery()
    )


def units_of_town(town_code: str) -> sa.ColumnElement[bool]:
    """The units of a town: with jurisdiction over it, or standing within its bounding box."""
    return sa.or_(
        ResponderUnit.jurisdiction_code == town_code,
        sa.func.ST_Intersects(ResponderUnit.geom, _town_envelope(town_code)),
    )


def town_units(session: Session, *, town_code: str) -> list[UnitPoint]:
    """The units of a town (``units_of_town``), by code."""
    query = (
        sa.select(
            ResponderUnit.code,
            ResponderUnit.name,
            ResponderUnit.unit_type,
            ResponderUnit.platform,
            ResponderUnit.status,
            sa.func.ST_X(ResponderUnit.geom),
            sa.func.ST_Y(ResponderUnit.geom),
        )
        .where(units_of_town(town_code))
        .order_by(ResponderUnit.code)
    )
    return [
        UnitPoint(code, name, unit_type, platform_, status, round(lon, 6), round(lat, 6))
        for code, name, unit_type, platform_, status, lon, lat in session.execute(query)
    ]


def town_cameras(session: Session, *, town_code: str) -> list[CameraView]:
    """Cameras of the town or within its bounding box, with their view sectors, by code."""
    query = (
        sa.select(
            Camera.code,
            Camera.name,
            Camera.status,
            sa.func.ST_X(Camera.geom),
            sa.func.ST_Y(Camera.geom),
            sa.func.ST_AsBinary(Camera.view),
        )
        .where(
            sa.or_(
                Camera.town_code == town_code,
                sa.func.ST_Intersects(Camera.geom, _town_envelope(town_code)),
            )
        )
        .order_by(Camera.code)
    )
    return [
        CameraView(code, name, status, round(lon, 6), round(lat, 6), from_wkb(bytes(view)))
        for code, name, status, lon, lat, view in session.execute(query)
    ]


def _check_cell_count(area: Area, cell_m: float) -> None:
    """Refuse a cell so small that the town's heatmap would carry too many cells."""
    minx, miny, maxx, maxy = area.bounds
    per_lon, per_lat = _metres_per_degree((minx + maxx) / 2, (miny + maxy) / 2)
    width_m, height_m = (maxx - minx) * per_lon, (maxy - miny) * per_lat
    cells = (width_m / cell_m + 1) * (height_m / cell_m + 1)
    if cells > MAX_HEAT_CELLS:
        smallest = math.ceil(math.sqrt(width_m * height_m / MAX_HEAT_CELLS) * 1.05)
        raise ValidationError(
            f"cell_m={cell_m:g} would cut this town ({width_m / 1000:.1f} x "
            f"{height_m / 1000:.1f} km) into ~{cells:,.0f} cells; use cell_m >= {smallest}"
        )


def towns_with_cases(session: Session) -> list[str]:
    """Codes of the towns that have at least one case, in code order."""
    has_cases = sa.exists().where(Incident.town_code == Region.code)
    query = (
        sa.select(Region.code)
        .where(Region.level == RegionLevel.TOWN.value, has_cases)
        .order_by(Region.code)
    )
    return list(session.scalars(query))


def command_room_data(
    session: Session,
    *,
    town_code: str,
    since: datetime | None = None,
    until: datetime | None = None,
    cases: CaseFilter = ALL_CASES,
    cell_m: float = DEFAULT_CELL_M,
    step: TimeStep = TimeStep.AUTO,
    max_markers: int = DEFAULT_MAX_MARKERS,
    now: datetime | None = None,
    stale_after: timedelta | None = None,
) -> CommandRoomData:
    """Everything the command-room map of a town shows, aggregated in PostGIS; ``cases`` narrows
    every figure and marker to one platform's and/or one category's cases.

    The period's figures are read as ``/stats`` reads them (``stats.choose_as_of``): from the
    stored facts while they are fresher than ``stale_after``, else exactly as of ``now``;
    without ``stale_after``, always exactly as of ``now``.
    """
    now = as_aware(now) if now is not None else datetime.now(UTC)
    period = resolve_period(since, until, now=now)
    if not MIN_CELL_M <= cell_m <= MAX_CELL_M:
        raise ValidationError(f"cell_m must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres")
    if not 0 <= max_markers <= MAX_MARKERS:
        raise ValidationError(f"max_markers must be between 0 and {MAX_MARKERS}")
    cases.check(session)
    area = get_town_area(session, town_code)
    _check_cell_count(area, cell_m)
    chosen = choose_step(period, step)
    figures = period_figures(
        session, area=area, period=period, step=chosen, cell_m=cell_m, cases=cases
    )
    as_of = (
        now
        if stale_after is None
        else stats.choose_as_of(session, None, now=now, stale_after=stale_after)
    )
    by_grid, by_town = period_stats(
        session, town_code=area.code, period=period, as_of=as_of, cases=cases
    )
    grids = grid_stats(
        session, town_code=area.code, period=period, now=now, figures=by_grid, cases=cases
    )
    open_now = {
        late: open_cases(
            session,
            town_code=area.code,
            until=period.until,
            now=now,
            overdue=late,
            limit=max_markers,
            cases=cases,
        )
        for late in (False, True)
    }
    return CommandRoomData(
        town=area,
        since=period.since,
        until=period.until,
        now=now,
        platform=cases.platform,
        category=cases.category,
        cell_m=cell_m,
        heat=figures.heat,
        time_step=chosen.value,
        frames=figures.frames,
        grids=grids,
        open_cases=open_now[False],
        overdue_cases=open_now[True],
        units=town_units(session, town_code=area.code),
        cameras=town_cameras(session, town_code=area.code),
        total_incidents=sum(cell.count for cell in figures.heat),
        town_figures=by_town,
        figures_as_of=as_of if as_of is not None else stats.last_refresh(session),
        **town_hotspots(session, area.code, period, cases),
    )


# Fixed, so that a page built twice from the same data is the same page.
HOTSPOT_SEED = 0


def town_hotspots(
    session: Session,
    town_code: str,
    period: Period,
    cases: CaseFilter,
) -> dict[str, Any]:
    """The map's hotspot layer: Gi* classes of the town's grids for the period
    (``gis.services.hotspots``), or none and the reason when inference is not possible."""
    from gis.services import hotspots

    query = hotspots.HotspotQuery(
        town_code, period.since, period.until, cases.platform, cases.category, seed=HOTSPOT_SEED
    )
    try:
        result = hotspots.find_hotspots(session, query)
    except ValidationError as error:
        return {"hotspots": [], "hotspots_note": error.detail}
    cells: list[HotspotCell] = list(result.grids)
    return {"hotspots": cells, "hotspots_note": ""}


def village_grids_data(session: Session, *, village_code: str) -> VillageGridsData:
    """A village's current grids with households, population and members."""
    village = get_region(session, village_code, level=RegionLevel.VILLAGE)
    town_name = ""
    if village.parent_code is not None:
        town_name = get_region(session, village.parent_code).name
    query = (
        sa.select(Grid.code, Grid.name, _simplified_wkb(), Grid.households, Grid.population)
        .where(Grid.village_code == village.code, Grid.valid_to.is_(None))
        .order_by(Grid.code)
    )
    rows = session.execute(query).all()
    members = member_names_by_grid(session, [row[0] for row in rows])
    grids = [
        GridInfo(
            code, name, from_wkb(bytes(wkb)), int(hh or 0), int(pop or 0), members.get(code, [])
        )
        for code, name, wkb, hh, pop in rows
    ]
    area = Area(village.code, village.name, village.name_en, to_shape(village.geom))
    return VillageGridsData(village=area, town_name=town_name, grids=grids)
