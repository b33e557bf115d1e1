"""What the maps show, as plain data: the builders take these, never a database session.

``gis.services.mapdata`` fills them from PostGIS; notebooks and tests may build them by hand.
Every coordinate here is WGS84 lon/lat; the builders shift them for a GCJ-02 basemap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Area:
    """A town or village: its codes, names and boundary."""

    code: str
    name: str
    name_en: str | None
    geom: BaseGeometry

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the boundary."""
        minx, miny, maxx, maxy = self.geom.bounds
        return float(minx), float(miny), float(maxx), float(maxy)


@dataclass(frozen=True)
class HeatCell:
    """One bin of the heatmap: its centre and how many incidents fell in it."""

    lon: float
    lat: float
    count: int


@dataclass(frozen=True)
class HeatFrame:
    """The bins of one time step (a day or a week) for the time view."""

    label: str
    cells: list[HeatCell]


@dataclass(frozen=True)
class CaseFigures:
    """An area's figures over the period's cases, as ``/stats`` publishes them (one definition:
    ``gis.services.stats``): received, closed, 办结率 = closed / valid, 按期办结率 = closed by the
    deadline in force / closed, and ``overdue_open``: the period's cases still active and late."""

    received: int = 0
    closed: int = 0
    closure_rate: float | None = None
    on_time_rate: float | None = None
    overdue_open: int = 0


@dataclass(frozen=True)
class GridStat:
    """A grid with its member(s), its figures for the period, and its cases open right now."""

    code: str
    name: str
    geom: BaseGeometry
    households: int
    members: list[str]
    figures: CaseFigures
    # Every case of the grid open now (not final), whenever reported, and those of them overdue
    # now (active and past the deadline): a different question from the period's figures.
    open_now: int
    overdue_now: int

    @property
    def per_1000_households(self) -> float | None:
        """Cases received per 1,000 households; None when the grid has no households on record."""
        received = self.figures.received
        return 1000.0 * received / self.households if self.households > 0 else None


@dataclass(frozen=True)
class OpenCase:
    """An open case as a marker: where, what, who, by when."""

    id: int
    lon: float
    lat: float
    platform: str
    category_zh: str
    category_en: str
    status: str
    reported_at: datetime
    due_at: datetime | None
    unit_name: str | None
    grid_code: str | None
    overdue: bool


@dataclass(frozen=True)
class UnitPoint:
    """A responder unit and its current status."""

    code: str
    name: str
    unit_type: str
    platform: str
    status: str
    lon: float
    lat: float


@dataclass(frozen=True)
class CameraView:
    """A camera, where it stands and the sector it sees."""

    code: str
    name: str
    status: str
    lon: float
    lat: float
    view: BaseGeometry


@dataclass(frozen=True)
class Capped:
    """A list cut to a size the page can carry, with how many there were in all."""

    items: list[OpenCase]
    total: int

    @property
    def truncated(self) -> bool:
        """True when some items were left out."""
        return self.total > len(self.items)


@dataclass(frozen=True)
class HotspotCell:
    """One grid's Gi* hot/cold class for the period (gis.services.hotspots)."""

    code: str
    name: str
    geom: BaseGeometry
    count: int
    z: float
    p: float
    label: str
    colour: str


@dataclass(frozen=True)
class CommandRoomData:
    """Everything the command-room map of one town shows for one period."""

    town: Area
    since: datetime
    until: datetime
    now: datetime
    platform: str | None
    category: str | None
    cell_m: float
    heat: list[HeatCell]
    time_step: str
    frames: list[HeatFrame]
    grids: list[GridStat]
    open_cases: Capped
    overdue_cases: Capped
    units: list[UnitPoint]
    cameras: list[CameraView]
    total_incidents: int = 0  # cases on the heatmap (reported in the period)
    # The town's figures for the period (as /stats/towns) and the time they are as of.
    town_figures: CaseFigures = CaseFigures()
    figures_as_of: datetime | None = None
    # Gi* hot and cold spots of the period's cases; when there are too few cases or grids
    # for inference, none, and the reason.
    hotspots: list[HotspotCell] = field(default_factory=list)
    hotspots_note: str = ""


@dataclass(frozen=True)
class GridInfo:
    """A current grid with its people: what a village printout labels."""

    code: str
    name: str
    geom: BaseGeometry
    households: int
    population: int
    members: list[str]


@dataclass(frozen=True)
class VillageGridsData:
    """A village and its current grids with their members: the planner's printout."""

    village: Area
    town_name: str
    grids: list[GridInfo]
