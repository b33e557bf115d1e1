"""The SLA sweep: flag open cases past their deadline and escalate those overdue too long.

A function of the time passed in, so tests control the clock; the API and the CLI pass the
server's time, never a client's (the events it writes are the record, and the database refuses
events dated in the future: migration 0008). ``preview`` answers "what would a sweep at T do"
without writing. Set-based: two statements whatever the number of cases, each appending its
events in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.base import LOCAL_TZ_SQL
from gis.services.workflow import ACTIVE, Action

_ACTIVE = [state.value for state in ACTIVE]

# Which cases a sweep at :now takes: one home for the sweep and its preview.
# Open cases past their deadline and not yet flagged…
_DUE = "status = ANY(:active) AND due_at < :now AND overdue_at IS NULL"
# …and those overdue by more than the threshold and not already with the county.
_LATE = "status = ANY(:active) AND status <> 'escalated' AND due_at < :cutoff"


def _locked(condition: str) -> str:
    """The cases a sweep takes, locked in a fixed (id) order: concurrent sweeps wait rather
    than deadlock. ``condition``: one of the module's constants above."""
    return f"SELECT id, status, due_at FROM incidents WHERE {condition} ORDER BY id FOR UPDATE"  # noqa: S608


# Stamp overdue_at and log flag_overdue.
_FLAG_SQL = sa.text(
    f"""
WITH due AS ({_locked(_DUE)}), flagged AS (
    UPDATE incidents AS i SET overdue_at = :now, updated_at = greatest(i.updated_at, :now)
    FROM due WHERE i.id = due.id
    RETURNING i.id, due.status, due.due_at
)
INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note, data)
SELECT id, :now, :actor, :action, status, status,
       'past the deadline ' || to_char(due_at AT TIME ZONE {LOCAL_TZ_SQL}, 'YYYY-MM-DD HH24:MI'),
       jsonb_build_object('due_at', due_at)
FROM flagged ORDER BY id
RETURNING incident_id
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters
)

# Escalate the long-overdue to the county.
_ESCALATE_SQL = sa.text(
    f"""
WITH late AS ({_locked(_LATE)}), escalated AS (
    UPDATE incidents AS i
    SET status = 'escalated', escalation_level = i.escalation_level + 1, escalated_at = :now,
        updated_at = greatest(i.updated_at, :now)
    FROM late WHERE i.id = late.id
    RETURNING i.id, late.status, late.due_at, i.escalation_level
)
INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note, data)
SELECT id, :now, :actor, :action, status, 'escalated',
       'overdue by more than ' || CAST(:threshold_text AS text) || ' h (deadline '
           || to_char(due_at AT TIME ZONE {LOCAL_TZ_SQL}, 'YYYY-MM-DD HH24:MI') || ')',
       jsonb_build_object('due_at', due_at, 'threshold_hours', CAST(:threshold_h AS float8),
                          'level', escalation_level,
                          'overdue_hours',
                          round((extract(epoch FROM CAST(:now AS timestamptz) - due_at)
                                 / 3600)::numeric, 1))
FROM escalated ORDER BY id
RETURNING incident_id
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters
)


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    now: datetime
    escalate_after_hours: float
    flagged_ids: list[int] = field(default_factory=list)
    escalated_ids: list[int] = field(default_factory=list)


_PREVIEW_SQL = sa.text(
    f"""
SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE {_DUE}), '{{}}') AS flagged,
       coalesce(array_agg(id ORDER BY id) FILTER (WHERE {_LATE}), '{{}}') AS escalated
FROM incidents WHERE status = ANY(:active) AND due_at < :now
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters
)


# A preview may imagine any time, within reason: far outside, date arithmetic overflows.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _check(now: datetime, escalate_after_hours: float) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValidationError(f"now {now.isoformat()} has no time zone; add +08:00 or Z")
    if not _EARLIEST <= now < _LATEST:
        raise ValidationError(f"{now.isoformat()} is not between 1970 and 2200")
    if not 0 <= escalate_after_hours <= 24 * 365:
        raise ValidationError("escalate_after_hours must be between 0 and 8760")


def preview(session: Session, *, at: datetime, escalate_after_hours: float) -> SweepResult:
    """What a sweep at ``at`` would flag and escalate, given the cases as they stand now.
    Reads only: nothing is written, so ``at`` may be any time (a client's "what if")."""
    _check(at, escalate_after_hours)
    row = session.execute(
        _PREVIEW_SQL,
        {"active": _ACTIVE, "now": at, "cutoff": at - timedelta(hours=escalate_after_hours)},
    ).one()
    return SweepResult(at, escalate_after_hours, list(row.flagged), list(row.escalated))


def sweep(
    session: Session, *, now: datetime, escalate_after_hours: float, actor: str = "system:sla"
) -> SweepResult:
    """Flag every open case past its deadline at ``now``; escalate those overdue by more than
    ``escalate_after_hours`` to the county. Never commits. ``now`` is the server's time (a
    test's clock); the database refuses events more than 5 minutes ahead of its own."""
    _check(now, escalate_after_hours)
    flagged = session.execute(
        _FLAG_SQL,
        {"active": _ACTIVE, "now": now, "actor": actor, "action": Action.FLAG_OVERDUE.value},
    ).scalars()
    flagged_ids = sorted(flagged)
    cutoff = now - timedelta(hours=escalate_after_hours)
    escalated = session.execute(
        _ESCALATE_SQL,
        {
            "active": _ACTIVE,
            "now": now,
            "cutoff": cutoff,
            "actor": actor,
            "action": Action.ESCALATE.value,
            "threshold_h": float(escalate_after_hours),
            "threshold_text": f"{escalate_after_hours:g}",
        },
    ).scalars()
    escalated_ids = sorted(escalated)
    session.expire_all()  # loaded incidents are stale after the set-based updates
    return SweepResult(now, escalate_after_hours, flagged_ids, escalated_ids)
