"""The JSON shapes of GeoReport v2 replies, for the OpenAPI document (XML has the same fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Open311Error(BaseModel):
    """One entry of the spec's error list."""

    code: int
    description: str


class Open311Service(BaseModel):
    """A category as a GeoReport service."""

    service_code: str
    service_name: str = Field(description="Chinese name, then English")
    description: str
    metadata: bool = Field(description="Whether services/{code} lists extra attributes")
    type: str = Field(description="Always realtime: intake assigns at once")
    keywords: str
    group: str = Field(description="The platform (四个平台): governance, market…")


class Open311Attribute(BaseModel):
    """An extra attribute of a service definition."""

    variable: bool
    code: str
    datatype: str
    required: bool
    description: str
    order: int


class Open311ServiceDefinition(BaseModel):
    """``services/{code}``: the service's extra attributes (none yet for our categories)."""

    service_code: str
    attributes: list[Open311Attribute]


class Open311Created(BaseModel):
    """The reply to ``POST requests``, with our assignment as extension fields."""

    service_request_id: int
    service_notice: str
    account_id: str | None = None
    grid_code: str | None = Field(None, description="Extension: the grid it was assigned to")
    agency_responsible: str | None = Field(None, description="Extension: the unit")
    expected_datetime: str | None = Field(None, description="Extension: the deadline")


class Open311Request(BaseModel):
    """A service request as ``GET requests`` shows it."""

    service_request_id: int
    status: str = Field(description="open or closed")
    extended_status: str = Field(description="Extension: OPEN, IN_PROGRESS, FIXED…")
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None
    grid_code: str | None = Field(None, description="Extension")
    jurisdiction_id: str | None = Field(None, description="Extension: the town")
    contact: dict[str, Any] | None = Field(
        None, description="Extension, staff tokens only: the reporter's contacts"
    )


class Open311Update(BaseModel):
    """One change of a case (the updates extension)."""

    update_id: int
    service_request_id: int
    status: str
    updated_datetime: str
    description: str | None
    media_url: str | None
    external_status_code: str


class Open311UpdateCreated(BaseModel):
    """The reply to ``POST servicerequestupdates``."""

    update_id: int


class Open311Endpoint(BaseModel):
    """One endpoint of the discovery document."""

    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Open311Discovery(BaseModel):
    """Where this GeoReport endpoint is and what it speaks."""

    changeset: str
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]
    version: str
