"""Request and response bodies of the dispatch and unit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import mapping

from gis.api.schemas.types import (
    CRS_NAMES,
    LAT_RANGE,
    LON_RANGE,
    Omittable,
    StrictFloat,
    Time,
    one_of,
    read_from,
)
from gis.layers.base import point_lonlat
from gis.layers.units import ResponderUnit, UnitStatus
from gis.services.dispatch import NearestResult, RankBy, RankedUnit


class UnitFields(BaseModel):
    """What every reply says about a responder unit."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    platform: str
    unit_type: str
    status: str
    jurisdiction_code: str
    phone: str | None


class UnitProperties(UnitFields):
    """Properties of a responder unit feature."""

    updated_at: datetime


class NearestUnit(UnitFields):
    """One unit in a nearest-units answer."""

    lon: float
    lat: float
    distance_m: float = Field(description="Geodesic (WGS84 ellipsoid) straight-line distance")
    reachable: bool | None = Field(
        None, description="by=drive_time: whether a road route was found (null: not routed)"
    )
    eta_s: float | None = Field(None, description="by=drive_time: drive time in seconds")
    route_m: float | None = Field(
        None, description="by=drive_time: route length in metres, off-road legs included"
    )
    snap_m: float | None = Field(None, description="by=drive_time: unit's distance to its road")
    route: dict[str, Any] | None = Field(
        None, description="by=drive_time&include_route=true: the route, a GeoJSON LineString"
    )

    @classmethod
    def of(cls, ranked: RankedUnit) -> NearestUnit:
        """The response item for a ranked unit."""
        unit = ranked.unit
        lon, lat = point_lonlat(unit.geom)
        return cls(
            **UnitFields.model_validate(unit).model_dump(),
            lon=lon,
            lat=lat,
            distance_m=round(ranked.distance_m, 2),
            reachable=ranked.reachable,
            eta_s=None if ranked.eta_s is None else round(ranked.eta_s, 1),
            route_m=None if ranked.route_m is None else round(ranked.route_m, 1),
            snap_m=None if ranked.snap_m is None else round(ranked.snap_m, 1),
            route=None if ranked.route is None else dict(mapping(ranked.route)),
        )


class NearestRead(BaseModel):
    """The units nearest to a place, nearest (or fastest) first."""

    lon: float = Field(description="The place in WGS84")
    lat: float
    by: RankBy
    candidates: int = Field(description="Units considered (routed, for drive_time)")
    units: list[NearestUnit]

    @classmethod
    def of(cls, result: NearestResult) -> NearestRead:
        """The response for a service result."""
        return read_from(cls, result, units=[NearestUnit.of(r) for r in result.units])


class SuggestedUnitsRead(NearestRead):
    """Units suggested for an existing case: of its category's type, nearest first."""

    incident_id: int
    category_code: str
    town_code: str | None
    current_unit_id: int | None


class UnitUpdate(BaseModel):
    """A status change and/or an AVL position fix (lon and lat together)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["lon", "lat"]},
                {"required": ["status"], "properties": {"lon": False, "lat": False}},
            ]
        },
    )

    status: Omittable[UnitStatus] = None
    lon: Omittable[StrictFloat] = Field(
        None, description="Longitude, in `crs`", json_schema_extra=LON_RANGE
    )
    lat: Omittable[StrictFloat] = Field(
        None, description="Latitude, in `crs`", json_schema_extra=LAT_RANGE
    )
    crs: Omittable[str] = Field(
        None,
        max_length=32,
        description="Default EPSG:4326",
        json_schema_extra=one_of(CRS_NAMES),
    )
    recorded_at: Omittable[Time] = Field(
        None, description="When the device took the fix (with a UTC offset; default: now)"
    )

    @model_validator(mode="after")
    def _position_is_a_pair(self) -> UnitUpdate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat for a position, or neither")
        return self


class UnitRead(UnitProperties):
    """A unit after an update, with its position in WGS84."""

    lon: float
    lat: float
    moved: bool = Field(
        description="After a PATCH: whether its fix moved the unit (older fixes are only logged)"
    )

    @classmethod
    def of(cls, unit: ResponderUnit, *, moved: bool) -> UnitRead:
        """The response for an updated unit."""
        lon, lat = point_lonlat(unit.geom)
        props = UnitProperties.model_validate(unit, from_attributes=True)
        return cls(**props.model_dump(), lon=lon, lat=lat, moved=moved)


class FixProperties(BaseModel):
    """Properties of one AVL fix of a unit's track."""

    recorded_at: datetime
    received_at: datetime
    source_crs: str
