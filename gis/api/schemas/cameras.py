"""Request and response bodies of the camera and coverage endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from gis.api.schemas.types import (
    CRS_NAMES,
    LAT_RANGE,
    LON_RANGE,
    Latitude,
    Longitude,
    Omittable,
    StrictFloat,
    one_of,
)
from gis.layers.cameras import CameraKind, CameraStatus
from gis.services.cameras import MAX_RANGE_M, Coverage


class CameraFields(BaseModel):
    """What every reply says about a camera."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    status: str


class CameraProperties(CameraFields):
    """Properties of a camera feature."""

    id: int
    heading_deg: float = Field(description="Degrees clockwise from north")
    fov_deg: float = Field(description="Field of view, degrees (360: sees all round)")
    range_m: float
    town_code: str | None
    updated_at: datetime


class CameraRead(CameraProperties):
    """One camera with its location and its view polygon (WGS84 GeoJSON)."""

    lon: float
    lat: float
    view: dict[str, Any] | None


_CODE_PATTERN = r"^[A-Za-z0-9_.\-]+$"
_CODE = Field(min_length=1, max_length=40, pattern=_CODE_PATTERN)
# Any text without NUL characters, which PostgreSQL text cannot hold.
_TEXT = r"^[^\x00]*$"
# The aim of a camera (gis.services.cameras.check_view checks the same for every caller).
Heading = Annotated[StrictFloat, Field(ge=0, lt=360)]
FieldOfView = Annotated[StrictFloat, Field(gt=0, le=360)]
Range = Annotated[StrictFloat, Field(gt=0, le=MAX_RANGE_M)]


class CameraCreate(BaseModel):
    """A new camera; its view is computed from kind, heading, field of view and range."""

    model_config = ConfigDict(extra="forbid")

    code: str = _CODE
    name: str = Field(min_length=1, max_length=100, pattern=_TEXT)
    lon: Longitude = Field(description="Longitude, in `crs`")
    lat: Latitude = Field(description="Latitude, in `crs`")
    crs: str | None = Field(
        None,
        max_length=32,
        description="Default EPSG:4326",
        json_schema_extra=one_of(CRS_NAMES, nullable=True),
    )
    kind: CameraKind = CameraKind.FIXED
    status: CameraStatus = CameraStatus.ONLINE
    heading_deg: Heading = Field(0.0, description="[0, 360), clockwise from north")
    fov_deg: FieldOfView | None = Field(
        None, description="(0, 360]; default 60 for fixed cameras, 360 for ptz/dome"
    )
    range_m: Range = Field(100.0, description=f"(0, {MAX_RANGE_M:g}] metres")
    town_code: str | None = Field(
        None, max_length=12, pattern=_CODE_PATTERN, description="Default: the town containing it"
    )


# What a PATCH must change: a position (lon and lat together) or at least one other field.
_CHANGES = ("name", "kind", "status", "heading_deg", "fov_deg", "range_m", "town_code")
_SOME_CHANGE: list[JsonValue] = [{"required": ["lon", "lat"]}]
_SOME_CHANGE += [
    {"required": [name], "properties": {"lon": False, "lat": False}} for name in _CHANGES
]


class CameraUpdate(BaseModel):
    """Fields to change; the view is recomputed when position, kind or aim change.

    A field left out is kept; only ``town_code`` may be null (the town containing it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": _SOME_CHANGE},
    )

    name: Omittable[str] = Field(None, min_length=1, max_length=100, pattern=_TEXT)
    lon: Omittable[StrictFloat] = Field(None, json_schema_extra=LON_RANGE)
    lat: Omittable[StrictFloat] = Field(None, json_schema_extra=LAT_RANGE)
    crs: Omittable[str] = Field(None, max_length=32, json_schema_extra=one_of(CRS_NAMES))
    kind: Omittable[CameraKind] = None
    status: Omittable[CameraStatus] = None
    heading_deg: Omittable[Heading] = None
    fov_deg: Omittable[FieldOfView] = None
    range_m: Omittable[Range] = None
    town_code: str | None = Field(None, max_length=12, pattern=_CODE_PATTERN)


class SeeingCamera(CameraFields):
    """A camera whose view covers the place."""

    lon: float
    lat: float
    distance_m: float = Field(description="Geodesic distance camera → place")
    bearing_deg: float = Field(description="Bearing camera → place, clockwise from north")


class SeeingRead(BaseModel):
    """The cameras that can show a place, nearest first."""

    lon: float = Field(description="The place in WGS84")
    lat: float
    cameras: list[SeeingCamera]


class AlertCreate(BaseModel):
    """A case seen on a camera's feed."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(
        min_length=1, max_length=50, pattern=_CODE_PATTERN, description="Category code"
    )
    note: str = Field("", max_length=4000, pattern=_TEXT, description="What the operator saw")


class CoverageRead(BaseModel):
    """How much of a grid online cameras see, measured in metres (UTM of the grid)."""

    grid_code: str
    grid_name: str
    town_code: str
    cameras: int = Field(description="Online cameras whose view touches the grid")
    area_m2: float
    covered_m2: float
    area_share: float = Field(description="Share of the grid's area inside some view, 0–1")
    road_m: float
    covered_road_m: float
    road_share: float | None = Field(description="Share of road length seen; null: no roads")
    blind_spots: dict[str, Any] | None = Field(
        None, description="The part of the grid no online camera sees (GeoJSON, WGS84)"
    )

    @classmethod
    def of(cls, coverage: Coverage) -> CoverageRead:
        """The response for a service result."""
        import shapely
        from shapely.geometry import mapping

        blind = None
        if coverage.blind_spots is not None:
            blind = dict(mapping(shapely.from_wkb(coverage.blind_spots)))
        return cls(
            grid_code=coverage.grid_code,
            grid_name=coverage.grid_name,
            town_code=coverage.town_code,
            cameras=coverage.cameras,
            area_m2=round(coverage.area_m2, 1),
            covered_m2=round(coverage.covered_m2, 1),
            area_share=round(coverage.area_share, 6),
            road_m=round(coverage.road_m, 1),
            covered_road_m=round(coverage.covered_road_m, 1),
            road_share=None if coverage.road_share is None else round(coverage.road_share, 6),
            blind_spots=blind,
        )
