"""The case workflow over HTTP: actions on a case, its event log, and the SLA sweep."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from gis.api.deps import ClockDep, SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import domain_errors
from gis.api.schemas.types import MAX_ID, Time
from gis.api.schemas.workflow import (
    ActionCreate,
    ActionRead,
    CaseState,
    EventRead,
    EventsRead,
    SweepCreate,
    SweepRead,
)
from gis.api.security import (
    CaseActor,
    CaseReader,
    acted_by,
    allow,
    check_case,
)
from gis.errors import ValidationError
from gis.layers.incidents import get_incident, list_events
from gis.layers.users import Role
from gis.services import sla, workflow
from gis.services.access import Principal

router = APIRouter(tags=["workflow"], dependencies=[StaleReadOk])

IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident id")]


@router.post(
    "/incidents/{incident_id}/actions",
    response_model=ActionRead,
    responses=domain_errors(
        (
            ValidationError,
            "a field the action needs is missing (reason: return, reopen, reassign, escalate, "
            "extend, cancel; unit_id: assign, reassign; due_at: extend; duplicate_of: "
            "mark_duplicate), names no unit or case, repeats the current unit or the case "
            "itself, or due_at is not in the future; an action the system writes; a photo not "
            "uploaded by the caller",
        )
    ),
)
def act(
    session: SessionDep,
    incident_id: IncidentId,
    body: ActionCreate,
    principal: CaseActor,
    now: ClockDep,
) -> ActionRead:
    """Apply a workflow action (accept, start, resolve, close, return, reassign, extend…).

    An action the case's state does not allow is 409 `invalid_transition` with
    `allowed_actions`; an assignment to an off-duty unit is 409 `unit_unavailable`, one made on
    a stale view (`expected_unit_id`) 409 `assigned_elsewhere` naming who assigned it; a unit
    that takes a case turns busy. Missing or bad fields for the action are 422; nothing is
    written.
    """
    check_case(principal, get_incident(session, incident_id))
    result = workflow.apply_action(
        session,
        incident_id,
        body.action,
        **body.model_dump(exclude={"action", "actor"}),
        **acted_by(principal, body.actor),
        now=now,
    )
    reply = ActionRead(
        incident=CaseState.model_validate(result.incident),
        event=EventRead.model_validate(result.event),
        allowed_actions=result.allowed_actions,
    )
    session.commit()
    return reply


@router.get("/incidents/{incident_id}/events", response_model=EventsRead)
def events(
    session: SessionDep,
    incident_id: IncidentId,
    principal: CaseReader,
) -> EventsRead:
    """The case's log, oldest first, with its state and the actions allowed now."""
    incident = get_incident(session, incident_id)
    check_case(principal, incident)
    return EventsRead(
        incident=CaseState.model_validate(incident),
        allowed_actions=workflow.allowed_actions(incident.status),
        events=[EventRead.model_validate(e) for e in list_events(session, incident_id)],
    )


Hours = Annotated[
    float | None,
    Query(
        ge=0,
        le=24 * 365,
        description="Escalate cases overdue by more than this many hours, 0 to 8760 "
        "(default GIS_SLA_ESCALATE_AFTER_H)",
    ),
]


@router.post("/sla/sweep", response_model=SweepRead)
def sla_sweep(
    session: SessionDep,
    settings: SettingsDep,
    body: SweepCreate,
    _: Annotated[Principal | None, Depends(allow(Role.COUNTY))],
    now: ClockDep,
) -> SweepRead:
    """Flag open cases past their deadline and escalate those overdue too long (county-wide),
    at the server's time: a client cannot date the events it causes."""
    threshold = (
        settings.sla_escalate_after_h
        if body.escalate_after_hours is None
        else body.escalate_after_hours
    )
    result = sla.sweep(session, now=now, escalate_after_hours=threshold)
    session.commit()
    return _sweep_read(result)


@router.get(
    "/sla/preview",
    response_model=SweepRead,
    responses=domain_errors((ValidationError, "the time is not between 1970 and 2200")),
)
def sla_preview(
    session: SessionDep,
    settings: SettingsDep,
    _: Annotated[Principal | None, Depends(allow(Role.COUNTY))],
    now: ClockDep,
    at: Annotated[
        Time | None,
        Query(description="The time to imagine the sweep at, with a zone (default: now)"),
    ] = None,
    escalate_after_hours: Hours = None,
) -> SweepRead:
    """What a sweep at ``at`` would flag and escalate, given the cases as they stand; reads only
    (the reply lists ids, nothing is written)."""
    threshold = (
        settings.sla_escalate_after_h if escalate_after_hours is None else escalate_after_hours
    )
    return _sweep_read(sla.preview(session, at=at or now, escalate_after_hours=threshold))


def _sweep_read(result: sla.SweepResult) -> SweepRead:
    return SweepRead(
        now=result.now,
        escalate_after_hours=result.escalate_after_hours,
        flagged=len(result.flagged_ids),
        escalated=len(result.escalated_ids),
        flagged_ids=result.flagged_ids,
        escalated_ids=result.escalated_ids,
    )
