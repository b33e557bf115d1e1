"""Request and reply bodies of the errand runners (跑小二) and the service catalog."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gis.api.schemas.types import CRS_NAMES, Latitude, Longitude, StrictInt, one_of
from gis.api.schemas.workflow import LogEntry
from gis.services.errands import USER_ACTIONS
from gis.services.intake import MediaRef


class ServiceRead(BaseModel):
    """A service a grid member may (or may not) run for a resident."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name_zh: str
    name_en: str
    approving_level: str = Field(description="village, town or county")
    approver: str
    proxy_allowed: bool = Field(description="Whether a grid member may run it for the resident")
    proxy_note: str | None = Field(description="Why not, when a runner may not")
    time_limit_days: int = Field(description="Working days from request to delivery")
    materials: list[str]
    description: str | None


class HomeLocation(BaseModel):
    """The applicant's home; lon/lat in ``crs`` (WGS84 unless said)."""

    model_config = ConfigDict(extra="forbid")

    lon: Longitude = Field(description="Longitude", examples=[118.87])
    lat: Latitude = Field(description="Latitude", examples=[28.94])
    crs: str | None = Field(
        None,
        max_length=16,
        description="EPSG:4326, EPSG:4490, GCJ-02, BD-09",
        json_schema_extra=one_of(CRS_NAMES, nullable=True),
    )


class ErrandCreate(BaseModel):
    """A resident's request for an errand."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(max_length=50, description="Service code (GET /services)")
    applicant_name: str = Field(min_length=1, max_length=100)
    applicant_phone: str = Field(max_length=32, examples=["13812345678"])
    home: HomeLocation
    note: str | None = Field(None, max_length=2_000)


class ErrandActionCreate(BaseModel):
    """An action on an errand."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        max_length=30,
        description="assign, collect, submit, approve, reject, deliver or cancel",
        json_schema_extra=one_of([a.value for a in USER_ACTIONS]),
    )
    actor: str | None = Field(None, max_length=100, description="Who acts (without a token)")
    note: str | None = Field(None, max_length=2_000, description="Required for reject, cancel")
    applicant_trips: StrictInt | None = Field(
        None, ge=0, le=50, description="deliver: trips the applicant made in person (0 = 零跑腿)"
    )
    member_id: StrictInt | None = Field(
        None, ge=1, le=2**31 - 1, description="assign: the grid member taking it"
    )
    photos: list[MediaRef] = Field(
        default_factory=list,
        max_length=10,
        description="media:<id> of photos you uploaded (POST /media): papers collected, "
        "the result handed over",
    )


class Member(BaseModel):
    """The grid member running the errand."""

    id: int
    name: str
    phone: str


class ErrandEventRead(LogEntry):
    """One entry of an errand's log."""


class ErrandRead(BaseModel):
    """An errand: what, for whom, who runs it, by when, and where it stands."""

    id: int
    service: str
    service_name: str
    status: str
    applicant_name: str
    applicant_phone: str
    home: dict[str, float] = Field(description="WGS84 lon/lat as stored")
    location_quality: str
    grid_code: str | None
    village_code: str | None
    town_code: str | None
    member: Member | None = Field(description="Null: the errand waits in the town's queue")
    requested_at: datetime
    due_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    delivered_at: datetime | None
    applicant_trips: int | None
    allowed_actions: list[str]
    events: list[ErrandEventRead]
