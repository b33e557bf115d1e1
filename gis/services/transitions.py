"""What every state machine here does once an action is allowed: move the record's state and
append the event that says who moved it, when, from where, to where and why.

The tables themselves (which action is allowed from which state) stay with their domain:
``gis.services.workflow`` for cases, ``gis.services.errands`` for errands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

EventT = TypeVar("EventT")


class Tracked(Protocol):
    """A record with a state and a time of last change (an incident, an errand)."""

    id: Any
    status: Any
    updated_at: Any


def record_transition(
    session: Session,
    record: Tracked,
    make_event: Callable[..., EventT],
    *,
    owner: str,
    action: str,
    before: str | None,
    after: str,
    actor: str,
    note: str | None,
    data: dict[str, Any],
    now: datetime,
) -> EventT:
    """Move ``record`` to ``after`` at ``now`` and append its event (``make_event`` is the event
    model, ``owner`` its column naming the record); flushes, never commits."""
    record.status = after
    record.updated_at = now
    event = make_event(
        **{owner: record.id},
        at=now,
        actor=actor,
        action=action,
        from_status=before,
        to_status=after,
        note=note,
        data=data,
    )
    session.add(event)
    session.flush()
    return event
