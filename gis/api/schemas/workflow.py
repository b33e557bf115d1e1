"""Request and reply bodies of the case workflow and the SLA sweep."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gis.api.schemas.types import MAX_ID, StrictInt, Time, one_of
from gis.services.intake import MediaRef
from gis.services.workflow import USER_ACTIONS


class ActionCreate(BaseModel):
    """An action on a case; which extra fields it needs depends on the action."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        ...,
        max_length=30,
        description="One of: " + ", ".join(a.value for a in USER_ACTIONS),
        examples=["accept"],
        json_schema_extra=one_of([a.value for a in USER_ACTIONS]),
    )
    actor: str | None = Field(
        None,
        max_length=100,
        description="Who acts (required without a token; with one, the token's user is recorded)",
        examples=["张三"],
    )
    note: str | None = Field(None, max_length=2_000, description="Free text for the log")
    reason: str | None = Field(
        None,
        max_length=2_000,
        description="Why; required for return, reopen, reassign, escalate, extend and cancel",
    )
    unit_id: StrictInt | None = Field(
        None, ge=1, le=2**31 - 1, description="assign / reassign: the unit taking over"
    )
    due_at: Time | None = Field(
        None, description="extend: the new deadline, in the future, with a time zone"
    )
    duplicate_of: StrictInt | None = Field(
        None, ge=1, le=MAX_ID, description="mark_duplicate: the id of the case this one repeats"
    )
    photos: list[MediaRef] = Field(
        default_factory=list,
        max_length=10,
        description="media:<id> of photos you uploaded (POST /media): the work done, the scene",
    )
    expected_unit_id: StrictInt | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="assign / reassign: the unit the caller saw on the case (0: none); if "
        "another assignment came first, 409 `assigned_elsewhere` says who made it",
    )


class LogEntry(BaseModel):
    """One entry of a workflow's log (a case's or an errand's): who moved it, how, when."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: dict[str, Any]


class EventRead(LogEntry):
    """One entry of a case's log."""

    id: int
    incident_id: int


class CaseState(BaseModel):
    """The workflow fields of a case."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    platform: str
    unit_id: int | None
    due_at: datetime | None
    overdue_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    escalation_level: int
    extension_count: int
    reassign_count: int
    return_count: int
    duplicate_of_id: int | None


class ActionRead(BaseModel):
    """The case after an action, the event that recorded it, and what may happen next."""

    incident: CaseState
    event: EventRead
    allowed_actions: list[str]


class EventsRead(BaseModel):
    """A case's log, oldest first, with its state and the actions allowed now."""

    incident: CaseState
    allowed_actions: list[str]
    events: list[EventRead]


class SweepCreate(BaseModel):
    """Parameters of an SLA sweep. It runs on the server's clock: there is no time field, and
    unknown fields (such as ``now``) are refused."""

    model_config = ConfigDict(extra="forbid")

    # Strict: JSON true/false or a numeric string is not a number of hours.
    escalate_after_hours: float | None = Field(
        None,
        ge=0,
        le=24 * 365,
        strict=True,
        description="Escalate cases overdue by more than this many hours, 0 to 8760 "
        "(default GIS_SLA_ESCALATE_AFTER_H)",
        examples=[24],
    )


class SweepRead(BaseModel):
    """What a sweep flagged and escalated (or, for a preview, would)."""

    now: datetime = Field(description="The sweep's time: the server's (a preview: the one asked)")
    escalate_after_hours: float
    flagged: int
    escalated: int
    flagged_ids: list[int]
    escalated_ids: list[int]
