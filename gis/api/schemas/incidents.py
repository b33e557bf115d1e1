"""Request and reply models of intake: ``IncidentCreate`` in, ``IncidentRead`` out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, WithJsonSchema

from gis.api.schemas.types import (
    CRS_NAMES,
    Latitude,
    Longitude,
    StrictFloat,
    Time,
    one_of,
    read_from,
)
from gis.layers.incidents import IncidentListed, LocationQuality
from gis.services.assignment import Location, Placement
from gis.services.intake import (
    IncidentDetail,
    IncidentReport,
    MediaRef,
    ReportLocation,
    occurred_at_field,
    photos_field,
)


def _list_crs_names(schema: dict[str, Any]) -> None:
    schema["properties"]["crs"].update(one_of(CRS_NAMES))


class LocationCreate(ReportLocation):
    """Where the case is, in ``crs`` (default WGS84); lon first, as GeoJSON."""

    model_config = ConfigDict(json_schema_extra=_list_crs_names)

    lon: Longitude = Field(description="Longitude (east), degrees")
    lat: Latitude = Field(description="Latitude (north), degrees")
    accuracy_m: StrictFloat | None = Field(
        None, ge=0, le=100_000, description="The fix's accuracy radius in metres (a phone's GPS)"
    )


# An http(s) URL as pydantic's HttpUrl reads it, spelled out so a client knows before sending.
PhotoUrl = Annotated[
    HttpUrl,
    WithJsonSchema(
        {
            "type": "string",
            # The last label starts with a letter: all-digit hosts are read as IPv4 addresses.
            "pattern": r"^https?://([a-z0-9]+\.)*[a-z][a-z0-9]*(:[0-9]{1,4})?(/[A-Za-z0-9._~-]*)*$",
            "maxLength": 2083,
        }
    ),
]


class IncidentCreate(IncidentReport):
    """A report: category code, a point (lon/lat in ``crs``), who reports, what and photos.

    The same fields as ``IncidentReport`` (the service's), typed strictly at the boundary."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "cooking_fume",
                    "location": {"lon": 118.8741, "lat": 28.9417, "crs": "GCJ-02"},
                    "description": "楼下餐馆油烟直排 — cooking fumes vented at street level",
                    "reporter": {"kind": "grid_member", "id": "M-0231"},
                    "occurred_at": "2026-11-27T09:30:00+08:00",
                    "photos": ["https://example.org/p/1.jpg"],
                }
            ]
        },
    )

    location: LocationCreate
    occurred_at: Time | None = occurred_at_field()
    photos: list[PhotoUrl | MediaRef] = photos_field()


class LonLat(BaseModel):
    """A WGS84 point (EPSG:4326), lon first."""

    lon: float
    lat: float


class SourcePoint(BaseModel):
    """The point as the reporter sent it, in its coordinate system."""

    crs: str
    lon: float
    lat: float


class Named(BaseModel):
    """A code and its name (village, town, county, category)."""

    code: str
    name: str | None


class MemberRef(BaseModel):
    """The grid member (网格员) serving a grid."""

    id: int
    name: str | None


class GridRef(BaseModel):
    """The grid a point belongs to, with its member."""

    id: int
    code: str
    name: str | None
    member: MemberRef | None


class UnitRef(BaseModel):
    """The responder unit a case is assigned to, and how far it is (metres, ellipsoidal)."""

    id: int
    code: str | None
    name: str | None
    type: str | None
    phone: str | None
    distance_m: float | None


class CameraRef(BaseModel):
    """A camera whose view covers the point: distance and bearing from the camera."""

    id: int
    code: str
    name: str
    kind: str
    distance_m: float
    bearing_deg: float | None


class DuplicateRef(BaseModel):
    """An open incident of the same category nearby and recent: possibly the same case."""

    id: int
    status: str
    distance_m: float
    reported_at: datetime
    grid_code: str | None


class Reporter(BaseModel):
    """Who reported."""

    kind: str
    id: str | None


def _named(code: str | None, name: str | None) -> Named | None:
    return None if code is None else Named(code=code, name=name)


def _placed(p: Placement) -> dict[str, Any]:
    """The grid (with its member), village, town and county of a case or point, as the reply
    fields ``grid``, ``village``, ``town`` and ``county``."""
    grid = None
    if p.grid_id is not None and p.grid_code is not None:
        member = None if p.member_id is None else MemberRef(id=p.member_id, name=p.member_name)
        grid = GridRef(id=p.grid_id, code=p.grid_code, name=p.grid_name, member=member)
    return {
        "grid": grid,
        "village": _named(p.village_code, p.village_name),
        "town": _named(p.town_code, p.town_name),
        "county": _named(p.county_code, p.county_name),
    }


class IncidentRead(BaseModel):
    """An incident with its assignment: grid, platform, unit, deadline, cameras, duplicates."""

    id: int
    status: str
    category: Named
    platform: str
    description: str
    reporter: Reporter
    photos: list[str]
    location: LonLat = Field(description="Where it is, WGS84 as stored")
    source: SourcePoint = Field(description="The point as sent, before conversion")
    location_quality: LocationQuality
    snap_distance_m: float | None = Field(description="Metres to the grid when snapped")
    grid: GridRef | None = Field(description="Null when the point is outside every grid")
    village: Named | None
    town: Named | None = Field(description="The town whose queue holds the case")
    county: Named | None
    unit: UnitRef | None = Field(description="Null when no unit could be assigned: see unit_note")
    unit_note: str | None = Field(description="Why no unit, or why a fallback unit")
    occurred_at: datetime | None
    reported_at: datetime
    assigned_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    cameras: list[CameraRef]
    possible_duplicates: list[DuplicateRef]

    @classmethod
    def from_detail(cls, d: IncidentDetail) -> IncidentRead:
        """The reply for an incident read by the intake service."""
        unit = None
        if d.unit_id is not None:
            unit = UnitRef(
                id=d.unit_id,
                code=d.unit_code,
                name=d.unit_name,
                type=d.unit_type,
                phone=d.unit_phone,
                distance_m=d.unit_distance_m,
            )
        # id, status, platform, description, photos, unit_note and the times: d's own fields.
        return read_from(
            cls,
            d,
            category=Named(code=d.category_code, name=d.category_name),
            reporter=Reporter(kind=d.reporter_kind, id=d.reporter_id),
            location=LonLat(lon=d.lon, lat=d.lat),
            source=SourcePoint(crs=d.source_crs, lon=d.source_lon, lat=d.source_lat),
            location_quality=LocationQuality(d.location_quality),
            **_placed(d),
            unit=unit,
            cameras=[CameraRef.model_validate(c) for c in d.cameras],
            possible_duplicates=[DuplicateRef.model_validate(p) for p in d.possible_duplicates],
        )


class IncidentProperties(IncidentListed):
    """Properties of an incident in a GeoJSON list."""


class LocateRead(BaseModel):
    """Where a point belongs as of ``at``: grid, village, town, county and grid member."""

    location: LonLat = Field(description="The point in WGS84")
    source: SourcePoint
    at: datetime = Field(description="The grid versions in force at this instant were used")
    quality: LocationQuality
    snap_distance_m: float | None
    outside_distance_m: float | None = Field(
        description="Metres to the queue's town when outside every town (0 inside a town)"
    )
    grid: GridRef | None
    village: Named | None
    town: Named | None
    county: Named | None

    @classmethod
    def from_location(
        cls, loc: Location, *, lon: float, lat: float, source: SourcePoint, at: datetime
    ) -> LocateRead:
        """The reply for a located point."""
        return cls(
            location=LonLat(lon=lon, lat=lat),
            source=source,
            at=at,
            quality=loc.quality,
            snap_distance_m=loc.snap_distance_m,
            outside_distance_m=loc.outside_distance_m,
            **_placed(loc),
        )
