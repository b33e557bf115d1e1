"""Request and reply bodies of the boundary-plan endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from gis.api.geojson import FeatureCollection
from gis.api.schemas.types import Omittable, StrictBool, StrictInt
from gis.layers.plans import PlanScope, PlanStatus

MemberId = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


class ProposedGridProperties(BaseModel):
    """Properties of one proposed grid."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(min_length=1, max_length=20, description="Grid code (unique county-wide)")
    name: str | None = Field(None, max_length=100, description="Display name (default: code)")
    households: StrictInt | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Households; omitted = estimated from the current grids by area",
    )
    population: StrictInt | None = Field(
        None, ge=0, le=2**31 - 1, description="Residents; omitted = estimated"
    )
    member: MemberId | list[MemberId] | None = Field(
        None, description="Grid-member id(s) who will serve it; omitted = keep current links"
    )
    village: str | None = Field(
        None, max_length=12, description="Village code (town plans; default: most overlap)"
    )
    allow_multipart: StrictBool = Field(False, description="This grid may have several pieces")


# GeoJSON positions and rings (RFC 7946): lon, lat (and an ignored altitude); a ring closes, so
# it has at least four positions. The planning service reads the geometry itself (422
# ``invalid_geometry`` for anything else, as for the CLI); whether the shape is valid is the
# plan's validation report.
_POSITION: dict[str, Any] = {
    "type": "array",
    "minItems": 2,
    "maxItems": 3,
    "items": {"type": "number"},
}
_RING: dict[str, Any] = {"type": "array", "minItems": 4, "items": _POSITION}
_POLYGON: dict[str, Any] = {"type": "array", "minItems": 1, "items": _RING}
_GEOMETRY: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {"type": {"const": "Polygon"}, "coordinates": _POLYGON},
        },
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "MultiPolygon"},
                "coordinates": {"type": "array", "minItems": 1, "items": _POLYGON},
            },
        },
    ]
}


class ProposedFeature(BaseModel):
    """A proposed grid: a Polygon or MultiPolygon in WGS84 lon/lat."""

    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: Annotated[dict[str, Any], WithJsonSchema(_GEOMETRY)]
    properties: ProposedGridProperties


class ProposedCollection(BaseModel):
    """The proposed grids of the scope, as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ProposedFeature] = Field(min_length=1, max_length=2_000)


class PlanCreate(BaseModel):
    """A proposed redraw of one village's (or one town's) grids."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["village"]}, {"required": ["town"]}],
            "example": {
                "village": "330803114001",
                "based_on_version": "3f2a9c0d41b7e6a8",
                "title": "Split the east grid after the new estate",
                "proposed": {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [
                                    [
                                        [118.80, 28.90],
                                        [118.805, 28.90],
                                        [118.805, 28.91],
                                        [118.80, 28.91],
                                        [118.80, 28.90],
                                    ]
                                ],
                            },
                            "properties": {
                                "code": "330803114001-01",
                                "households": 210,
                                "member": 12,
                            },
                        }
                    ],
                },
            },
        }
    )

    # Exactly one of the two, and not null (the ``oneOf`` in the model's schema).
    village: Omittable[str] = Field(None, max_length=12, description="Village code to redraw")
    town: Omittable[str] = Field(
        None, max_length=12, description="Town code (redraw every village)"
    )
    title: str | None = Field(None, max_length=200)
    based_on_version: str = Field(
        min_length=1,
        max_length=40,
        description="The version token from GET /plans/base/{code} the plan was drawn on",
    )
    allow_multipart: StrictBool = Field(False, description="Every grid may have several pieces")
    proposed: ProposedCollection

    @model_validator(mode="after")
    def _one_scope(self) -> PlanCreate:
        if (self.village is None) == (self.town is None):
            raise ValueError("give exactly one of village or town")
        return self

    @property
    def scope(self) -> tuple[PlanScope, str]:
        """The scope level and code."""
        if self.village is not None:
            return PlanScope.VILLAGE, self.village
        assert self.town is not None
        return PlanScope.TOWN, self.town


class PlanSummary(BaseModel):
    """A plan in a list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    scope_level: PlanScope
    scope_code: str
    title: str | None
    status: PlanStatus
    based_on_version: str
    created_by: str
    created_at: datetime
    submitted_by: str | None = Field(None, description="Who submitted it for review")
    submitted_at: datetime | None = None
    applied_by: str | None
    applied_at: datetime | None


class PlanRead(PlanSummary):
    """A plan with its report: validation (with geometries), balance, impact, and what apply did."""

    valid: bool = Field(description="No validation errors: the plan can be applied")
    validation: dict[str, Any]
    balance: dict[str, Any]
    impact: dict[str, Any]
    result: dict[str, Any] | None
    proposed: dict[str, Any]


class BaseGridProperties(BaseModel):
    """A current grid as a planner starts from it."""

    code: str
    version: int
    name: str
    village: str
    households: int
    population: int
    valid_from: datetime


class PlanBase(BaseModel):
    """The scope's current grids and the version token to send back as ``based_on_version``."""

    scope_level: PlanScope
    scope_code: str
    based_on_version: str
    grids: FeatureCollection[BaseGridProperties]


class GridColumns(BaseModel):
    """A grid version's own columns, as grid features and the grid history show them."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    name: str
    village_code: str
    town_code: str
    households: int
    population: int
    valid_from: datetime
    valid_to: datetime | None


class GridVersionRead(GridColumns):
    """One version of a grid, with who brought it into force and who retired it."""

    area_m2: float
    created_by: str
    created_at: datetime
    retired_by: str | None
    plan_id: int | None = Field(None, description="The plan that created this version")
    retired_by_plan_id: int | None = None
    note: str | None
    geometry: dict[str, Any] | None = None
