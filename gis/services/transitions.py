"""What every state machine here does once an action is allowed: move the record's state and
append the event that says who moved it, when, from where, to where and why.

The tables themselves (which action is allowed from which state) stay with their domain:
``gis.services.workflow`` for cases, ``gis.services.errands`` for errands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import InstrumentedAttribute, Session


class Tracked(Protocol):
    """A record with a state and a time of last change (an incident, an errand)."""

    id: Any
    status: Any
    updated_at: Any


def record_transition(
    session: Session,
    record: Tracked,
    owner: InstrumentedAttribute[Any],
    action: str,
    after: str,
    actor: str,
    note: str | None,
    data: dict[str, Any],
    now: datetime,
) -> Any:
    """Move ``record`` to ``after`` at ``now`` and append its event: a row of the model whose
    column ``owner`` (e.g. ``IncidentEvent.incident_id``) names the record. Flushes, never
    commits; returns the event."""
    model: Any = owner.class_
    event = model(
        **{owner.key: record.id},
        at=now,
        actor=actor,
        action=action,
        from_status=record.status,
        to_status=after,
        note=note,
        data=data,
    )
    record.status = after
    record.updated_at = now
    session.add(event)
    session.flush()
    return event
