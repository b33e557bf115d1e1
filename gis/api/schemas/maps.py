"""Query parameters of the map pages, described once for the API and its OpenAPI page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, Field

from gis.api.schemas.types import LocalTime
from gis.maps.base import Basemap
from gis.maps.command_room import GridMetric
from gis.services.mapdata import (
    DEFAULT_CELL_M,
    DEFAULT_MAX_MARKERS,
    MAX_CELL_M,
    MAX_MARKERS,
    MIN_CELL_M,
    TimeStep,
)

TownQuery = Annotated[str, Query(min_length=1, max_length=12, description="Town code (乡镇)")]
VillageQuery = Annotated[
    str, Query(min_length=1, max_length=12, description="Village code (行政村/社区)")
]
SinceQuery = Annotated[
    LocalTime | None,
    Query(description="Start of the period (ISO 8601; no zone = China time). Default: until − 30d"),
]
UntilQuery = Annotated[
    LocalTime | None, Query(description="End of the period, exclusive. Default: now")
]
CategoryQuery = Annotated[
    str | None, Query(max_length=50, description="Only this category's cases (a catalog code)")
]
BasemapQuery = Annotated[
    Basemap | None,
    Query(
        description="osm; tianditu / tianditu_satellite (need GIS_TIANDITU_KEY); amap (GCJ-02); "
        "intranet (GIS_BASEMAP_URL); local (GIS_BASEMAP_FILE). Default: GIS_BASEMAP"
    ),
]
KioskQuery = Annotated[
    bool,
    Query(
        description="The wall's view: no controls, a discreet legend, large figures, a clock, "
        "the live indicator, and a notice when the login expires"
    ),
]
TileZ = Annotated[int, Path(ge=0, le=30, description="Zoom level")]
TileXY = Annotated[int, Path(ge=0, description="Tile column or row (XYZ: row 0 at the top)")]


class MapSession(BaseModel):
    """Who the page's login is, and until when (the kiosk warns on screen when it ends)."""

    user: str | None = Field(description="The token's user; null when no login is needed")
    role: str | None = Field(description="Its role")
    expires_at: datetime | None = Field(description="When the token expires; null: never")


MetricQuery = Annotated[
    GridMetric,
    Query(description="Grid colour: load (cases per 1,000 households), closure or on_time rate"),
]
CellQuery = Annotated[
    float, Query(ge=MIN_CELL_M, le=MAX_CELL_M, description="Heatmap cell size in metres")
]
StepQuery = Annotated[
    TimeStep, Query(description="Frames of the time view: day, week, or auto (day up to 62 d)")
]
MaxMarkersQuery = Annotated[
    int,
    Query(ge=0, le=MAX_MARKERS, description="Most open (and, separately, overdue) cases drawn"),
]

DEFAULTS = {"cell_m": DEFAULT_CELL_M, "max_markers": DEFAULT_MAX_MARKERS}
