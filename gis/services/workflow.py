"""The case workflow: one explicit transition table, and the one function that applies an action.

Every action appends an ``incident_events`` row (who, when, from, to, why, data) and updates the
incident in the same transaction; the caller commits. Time comes from ``now`` so tests and
replays control the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geography
from sqlalchemy.orm import Session

from gis.errors import (
    AssignedElsewhereError,
    InvalidTransitionError,
    NotFoundError,
    UnitUnavailableError,
    ValidationError,
)
from gis.layers.base import utcnow
from gis.layers.incidents import ACTIVE_STATUSES, Incident, IncidentEvent, IncidentStatus
from gis.layers.units import ResponderUnit, UnitStatus
from gis.services.media import action_photos
from gis.services.transitions import record_transition

S = IncidentStatus


class Action(StrEnum):
    """What can happen to a case. The names are fixed: intake and the demo generator write them."""

    REPORT = "report"
    ASSIGN = "assign"
    ACCEPT = "accept"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    RETURN = "return"
    REOPEN = "reopen"
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    EXTEND = "extend"
    CANCEL = "cancel"
    MARK_DUPLICATE = "mark_duplicate"
    FLAG_OVERDUE = "flag_overdue"
    # A remark on the case (a citizen's follow-up through Open311, a note): no change of state.
    COMMENT = "comment"


# The active states (gis.layers.incidents), in the enum's order so the table reads the same.
ACTIVE = tuple(state for state in S if state in ACTIVE_STATUSES)
_HAS_UNIT = (S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.RETURNED, S.ESCALATED)

# THE transition table: action → {state before → state after}. ``None`` is "no case yet".
# A state missing from an action's row means the action is not allowed from that state.
TRANSITIONS: Mapping[Action, Mapping[IncidentStatus | None, IncidentStatus]] = {
    Action.REPORT: {None: S.REPORTED},
    Action.ASSIGN: {S.REPORTED: S.ASSIGNED, S.ESCALATED: S.ASSIGNED},
    Action.ACCEPT: {S.ASSIGNED: S.ACCEPTED},
    Action.START: {
        S.ACCEPTED: S.IN_PROGRESS,
        S.RETURNED: S.IN_PROGRESS,
        S.ESCALATED: S.IN_PROGRESS,
    },
    Action.RESOLVE: {S.IN_PROGRESS: S.RESOLVED, S.ESCALATED: S.RESOLVED},
    # Verification by the command room or the grid member: accept the result or send it back.
    Action.CLOSE: {S.RESOLVED: S.CLOSED},
    Action.RETURN: {S.RESOLVED: S.RETURNED},
    # A closed case the callback (回访) finds unresolved goes back to its unit as rework, so the
    # unit's record shows it, instead of a fresh case that would hide the failed closure.
    Action.REOPEN: {S.CLOSED: S.RETURNED},
    # Another unit (of any platform) takes it over; it must accept it anew.
    Action.REASSIGN: {state: S.ASSIGNED for state in _HAS_UNIT},
    Action.ESCALATE: {state: S.ESCALATED for state in ACTIVE if state is not S.ESCALATED},
    # Extensions and the overdue flag change the deadline's bookkeeping, not the state.
    Action.EXTEND: {state: state for state in ACTIVE},
    Action.CANCEL: {state: S.CANCELLED for state in ACTIVE},
    Action.MARK_DUPLICATE: {state: S.DUPLICATE for state in ACTIVE},
    Action.FLAG_OVERDUE: {state: state for state in ACTIVE},
    Action.COMMENT: {state: state for state in S},
}

# Written only by intake (report) and by the SLA sweep (flag_overdue), never by a request.
SYSTEM_ACTIONS = frozenset({Action.REPORT, Action.FLAG_OVERDUE})
USER_ACTIONS = tuple(action for action in Action if action not in SYSTEM_ACTIONS)
# Actions that must say why.
NEEDS_REASON = frozenset(
    {
        Action.RETURN,
        Action.REOPEN,
        Action.REASSIGN,
        Action.ESCALATE,
        Action.EXTEND,
        Action.CANCEL,
        Action.COMMENT,
    }
)


def allowed_actions(status: str | None) -> list[str]:
    """The actions a person may take on a case in ``status``, in table order."""
    state = None if status is None else IncidentStatus(status)
    return [action.value for action in USER_ACTIONS if state in TRANSITIONS[action]]


def next_status(status: str | None, action: str) -> IncidentStatus:
    """The state after ``action`` from ``status``, or ``InvalidTransitionError`` (409)."""
    known = parse_action(action)
    state = None if status is None else IncidentStatus(status)
    target = TRANSITIONS[known].get(state)
    if target is None:
        allowed = allowed_actions(status)
        moves = [a for a in allowed if a != Action.COMMENT.value]
        listed = ", ".join(allowed) if moves else "only comment (the case is final)"
        raise InvalidTransitionError(
            f"cannot {known.value} a case that is {status or 'not yet reported'}; "
            f"allowed actions: {listed}",
            current_status=status,  # not "status": error_response takes that as the HTTP code
            action=known.value,
            allowed_actions=allowed,
        )
    return target


def parse_action(action: str) -> Action:
    """The action named ``action``, or a 422 listing the known names."""
    try:
        return Action(action)
    except ValueError:
        known = ", ".join(a.value for a in USER_ACTIONS)
        raise ValidationError(f"unknown action {action!r}; known actions: {known}") from None


@dataclass(frozen=True)
class ActionResult:
    """The case after an action and the event that recorded it."""

    incident: Incident
    event: IncidentEvent
    allowed_actions: list[str]


def apply_action(
    session: Session,
    incident_id: int,
    action: str,
    *,
    actor: str,
    note: str | None = None,
    reason: str | None = None,
    unit_id: int | None = None,
    due_at: datetime | None = None,
    duplicate_of: int | None = None,
    photos: Sequence[str] = (),
    uploader: int | None = None,
    expected_unit_id: int | None = None,
    now: datetime | None = None,
) -> ActionResult:
    """Apply a person's action to a case: check it against the table, update, append the event.

    ``photos`` (``media:<id>``, uploaded by ``uploader`` when given) are kept in the event.

    ``expected_unit_id`` (assign, reassign) is the unit the caller saw on the case, 0 for none:
    if someone else has (re)assigned it since, ``AssignedElsewhereError`` (409) says who."""
    now = now or utcnow()
    known = parse_action(action)
    if known in SYSTEM_ACTIONS:
        raise ValidationError(f"{known.value} is written by the system, not sent as an action")
    actor = (actor or "").strip()
    if not actor:
        raise ValidationError("actor is required: who is acting (user name or role:id)")
    # populate_existing: the route may have loaded the case before the lock; what counts is the
    # row as it stands once we hold the lock (a concurrent assignment may just have committed).
    incident = session.get(Incident, incident_id, with_for_update=True, populate_existing=True)
    if incident is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    if known in (Action.ASSIGN, Action.REASSIGN) and expected_unit_id is not None:
        _check_expected_unit(session, incident, expected_unit_id)
    before = incident.status
    after = next_status(before, known.value)
    why = _clean(reason) or _clean(note)
    if known in NEEDS_REASON and not why:
        raise ValidationError(f"{known.value} needs a reason: say why in 'reason'")
    if now < incident.updated_at:
        raise ValidationError(
            f"the action's time {now.isoformat()} is before the case's last change "
            f"{incident.updated_at.isoformat()}; events must be in time order"
        )
    data: dict[str, Any] = {}
    if _clean(reason) and _clean(note):
        data["note"] = _clean(note)
    data.update(action_photos(session, photos, uploader=uploader))

    if known in (Action.ASSIGN, Action.REASSIGN):
        data.update(_change_unit(session, incident, known, unit_id, actor, why, now))
    elif known is Action.RESOLVE:
        incident.resolved_at = now
    elif known is Action.CLOSE:
        incident.closed_at = now
    elif known in (Action.RETURN, Action.REOPEN):
        incident.return_count += 1
        incident.resolved_at = None
        incident.closed_at = None
    elif known is Action.ESCALATE:
        incident.escalation_level += 1
        incident.escalated_at = now
        data["level"] = incident.escalation_level
    elif known is Action.EXTEND:
        data.update(_extend(incident, due_at, now))
    elif known is Action.MARK_DUPLICATE:
        data.update(_mark_duplicate(session, incident, duplicate_of))

    event: IncidentEvent = record_transition(
        session,
        incident,
        IncidentEvent.incident_id,
        known.value,
        after.value,
        actor,
        why,
        data,
        now,
    )
    return ActionResult(incident, event, allowed_actions(after.value))


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _check_expected_unit(session: Session, incident: Incident, expected_unit_id: int) -> None:
    """Refuse an assignment made on a stale view of the case, naming who assigned it since."""
    if (incident.unit_id or 0) == expected_unit_id:
        return
    last = session.scalars(
        sa.select(IncidentEvent)
        .where(
            IncidentEvent.incident_id == incident.id,
            IncidentEvent.action.in_([Action.ASSIGN.value, Action.REASSIGN.value]),
        )
        .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc())
        .limit(1)
    ).first()
    unit = session.get(ResponderUnit, incident.unit_id) if incident.unit_id else None
    who = last.actor if last is not None else "intake (automatic assignment)"
    when = (last.at if last is not None else incident.assigned_at) or incident.updated_at
    target = f"unit {unit.name} (#{unit.id})" if unit is not None else "no unit"
    raise AssignedElsewhereError(
        f"case {incident.id} was meanwhile assigned to {target} by {who} at "
        f"{when.isoformat()}; reload the case before assigning it",
        assigned_by=who,
        assigned_at=when,
        unit_id=incident.unit_id,
        unit_name=unit.name if unit is not None else None,
    )


def _change_unit(
    session: Session,
    incident: Incident,
    action: Action,
    unit_id: int | None,
    actor: str,
    why: str | None,
    now: datetime,
) -> dict[str, Any]:
    if unit_id is None:
        raise ValidationError(f"{action.value} needs unit_id: the unit that takes the case")
    # Locked: a status change racing this assignment (the unit going off duty) waits for it or
    # is seen by it, never half of each.
    unit = session.get(ResponderUnit, unit_id, with_for_update=True, populate_existing=True)
    if unit is None:
        raise ValidationError(f"no responder unit with id {unit_id}; see GET /units")
    if unit.id == incident.unit_id:
        raise ValidationError(f"the case is already with unit {unit_id} ({unit.name})")
    if unit.status == UnitStatus.OFF_DUTY.value:
        raise UnitUnavailableError(
            f"unit {unit.name} (#{unit.id}) is off duty (since {unit.updated_at.isoformat()}); "
            "choose another unit",
            unit_id=unit.id,
            unit_status=unit.status,
        )
    distance = session.scalar(
        sa.select(
            sa.func.ST_Distance(
                sa.cast(ResponderUnit.geom, Geography),
                sa.cast(
                    sa.select(Incident.geom).where(Incident.id == incident.id).scalar_subquery(),
                    Geography,
                ),
            )
        ).where(ResponderUnit.id == unit.id)
    )
    data = {
        "from_unit_id": incident.unit_id,
        "unit_id": unit.id,
        "from_platform": incident.platform,
        "platform": unit.platform,
    }
    incident.unit_id = unit.id
    incident.platform = unit.platform
    incident.unit_distance_m = None if distance is None else float(distance)
    incident.unit_note = f"{action.value} by {actor}" + (f": {why}" if why else "")
    incident.assigned_at = now
    if action is Action.REASSIGN:
        incident.reassign_count += 1
    # A unit that takes a case is on its way: no longer offered as available.
    if unit.status == UnitStatus.AVAILABLE.value:
        unit.status = UnitStatus.BUSY.value
        unit.updated_at = max(now, unit.updated_at)
    return data


def _extend(incident: Incident, due_at: datetime | None, now: datetime) -> dict[str, Any]:
    if due_at is None:
        raise ValidationError("extend needs due_at: the new deadline (ISO 8601 with a zone)")
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        raise ValidationError(f"due_at {due_at.isoformat()} has no time zone; add +08:00 or Z")
    if due_at <= now:
        raise ValidationError(f"due_at {due_at.isoformat()} is not in the future")
    if incident.due_at is not None and due_at <= incident.due_at:
        raise ValidationError(
            f"due_at {due_at.isoformat()} does not extend the deadline "
            f"{incident.due_at.isoformat()}; an extension must move it later"
        )
    data = {
        "previous_due_at": None if incident.due_at is None else incident.due_at.isoformat(),
        "due_at": due_at.isoformat(),
    }
    incident.due_at = due_at
    incident.extension_count += 1
    incident.overdue_at = None  # the new deadline is in the future
    return data


def _mark_duplicate(
    session: Session, incident: Incident, duplicate_of: int | None
) -> dict[str, Any]:
    if duplicate_of is None:
        raise ValidationError("mark_duplicate needs duplicate_of: the id of the case it repeats")
    if duplicate_of == incident.id:
        raise ValidationError("a case cannot be a duplicate of itself")
    original = session.get(Incident, duplicate_of)
    if original is None:
        raise ValidationError(f"no incident with id {duplicate_of} to merge into")
    if original.status == S.DUPLICATE and original.duplicate_of_id is not None:
        raise ValidationError(
            f"incident {duplicate_of} is itself a duplicate of {original.duplicate_of_id}; "
            f"merge into {original.duplicate_of_id}"
        )
    incident.duplicate_of_id = original.id
    return {"duplicate_of": original.id}
