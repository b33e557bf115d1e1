"""Checks and repairs of the event logs (cases and errands): the log is the record.

Three kinds of damage are found (``check``) and each has one documented repair (``repair``,
docs/workflow.md "Checking the log"), applied in this order:

1. ``future``: an event dated after the server's time. It records something that has not
   happened (a sweep run with a client's clock, say). Repair: delete it — the caller prints the
   deleted rows — and undo what it stamped on its case: the case's own times later than now are
   cleared (``updated_at`` falls back to its last remaining event), ``escalation_level`` is
   recounted from the remaining ``escalate`` events.
2. ``out_of_order``: an event dated before an event logged earlier for the same case (a
   back-dated write). Repair: move it to the time of the latest earlier event, so the log reads
   in the order it was written; the time it carried is kept in its ``data.recorded_at``.
3. ``status``: a case whose status is not the ``to_status`` of its last event. Repair: the
   status becomes the last event's (the log is the record).

Both take the session and never commit: the CLI (``gis db check``, ``gis db repair``) rolls a
repair back unless told ``--commit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


class Damage(StrEnum):
    """The kinds of damage ``check`` reports."""

    FUTURE = "future"
    OUT_OF_ORDER = "out_of_order"
    STATUS = "status"


@dataclass(frozen=True)
class Log:
    """An event log and the table of the cases it records (identifiers: constants only)."""

    name: str
    events: str
    key: str
    cases: str
    stamps: tuple[str, ...]  # the case's times that events set, cleared if in the future


LOGS = (
    Log(
        "incident",
        "incident_events",
        "incident_id",
        "incidents",
        ("assigned_at", "resolved_at", "closed_at", "overdue_at", "escalated_at"),
    ),
    Log(
        "errand",
        "errand_events",
        "errand_id",
        "errands",
        ("submitted_at", "decided_at", "delivered_at"),
    ),
)


@dataclass(frozen=True)
class Finding:
    """One damaged event or case."""

    damage: Damage
    log: str
    case_id: int
    event_id: int | None
    detail: str


@dataclass
class Repair:
    """What a repair changed: the findings it started from, the deleted events (whole rows),
    and one line per change."""

    findings: list[Finding]
    deleted: list[dict[str, Any]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def _future_sql(log: Log) -> str:
    return (
        f"SELECT id, {log.key} AS case_id, at, action FROM {log.events} "  # noqa: S608 -- constants
        f"WHERE at > :now ORDER BY {log.key}, id"
    )


def _out_of_order_sql(log: Log) -> str:
    # The latest time logged before each event of its case, in the order they were written.
    return f"""
        SELECT id, case_id, at, action, latest_before FROM (
            SELECT id, {log.key} AS case_id, at, action,
                   max(at) OVER (PARTITION BY {log.key} ORDER BY id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS latest_before
            FROM {log.events}
        ) AS e
        WHERE at < latest_before
        ORDER BY case_id, id
    """  # noqa: S608 -- only constants are interpolated


def _status_sql(log: Log) -> str:
    return f"""
        SELECT c.id AS case_id, c.status, last.to_status, last.id AS event_id
        FROM {log.cases} AS c
        JOIN (
            SELECT DISTINCT ON ({log.key}) {log.key} AS case_id, id, to_status
            FROM {log.events} WHERE to_status IS NOT NULL
            ORDER BY {log.key}, id DESC
        ) AS last ON last.case_id = c.id
        WHERE last.to_status <> c.status
        ORDER BY c.id
    """  # noqa: S608 -- only constants are interpolated


def _server_time(session: Session, now: datetime | None) -> datetime:
    if now is not None:
        return now
    stamp: datetime = session.scalar(sa.text("SELECT clock_timestamp()"))
    return stamp


def check(session: Session, *, now: datetime | None = None) -> list[Finding]:
    """Every future-dated event, out-of-order event and case whose status disagrees with its
    last event, in both logs. ``now`` defaults to the database's clock. Reads only."""
    now = _server_time(session, now)
    findings: list[Finding] = []
    for log in LOGS:
        for row in session.execute(sa.text(_future_sql(log)), {"now": now}):
            detail = f"{row.action} dated {row.at.isoformat()}, after now {now.isoformat()}"
            findings.append(Finding(Damage.FUTURE, log.name, row.case_id, row.id, detail))
        for row in session.execute(sa.text(_out_of_order_sql(log))):
            detail = (
                f"{row.action} dated {row.at.isoformat()}, before an event logged earlier at "
                f"{row.latest_before.isoformat()}"
            )
            findings.append(Finding(Damage.OUT_OF_ORDER, log.name, row.case_id, row.id, detail))
        for row in session.execute(sa.text(_status_sql(log))):
            detail = f"status {row.status}, its last event says {row.to_status}"
            findings.append(Finding(Damage.STATUS, log.name, row.case_id, row.event_id, detail))
    return findings


def repair(session: Session, *, now: datetime | None = None) -> Repair:
    """Apply the documented repair of each kind of damage (module docstring), in order; never
    commits. What is left for ``check`` afterwards is nothing."""
    now = _server_time(session, now)
    result = Repair(findings=check(session, now=now))
    for log in LOGS:
        _repair_future(session, log, now, result)
        _repair_order(session, log, result)
        _repair_status(session, log, result)
    session.expire_all()  # loaded cases are stale after the set-based updates
    return result


def _repair_future(session: Session, log: Log, now: datetime, result: Repair) -> None:
    deleted = session.execute(
        sa.text(
            f"DELETE FROM {log.events} WHERE at > :now "  # noqa: S608 -- constants only
            f"RETURNING {log.key} AS case_id, to_jsonb({log.events}) AS row"
        ),
        {"now": now},
    ).all()
    if not deleted:
        return
    touched = sorted({row.case_id for row in deleted})
    result.deleted.extend(row.row for row in deleted)
    result.changes.append(
        f"{log.name}: deleted {len(deleted)} event(s) dated after now from case(s) "
        + ", ".join(map(str, touched))
    )
    for stamp in log.stamps:
        cleared = session.execute(
            sa.text(
                f"UPDATE {log.cases} SET {stamp} = NULL "  # noqa: S608 -- constants only
                f"WHERE id = ANY(:ids) AND {stamp} > :now RETURNING id"
            ),
            {"ids": touched, "now": now},
        ).scalars()
        ids = list(cleared)
        if ids:
            result.changes.append(f"{log.name}: cleared {stamp} (in the future) of {_ids(ids)}")
    updated = session.execute(
        sa.text(
            f"""
            UPDATE {log.cases} AS c
            SET updated_at = coalesce(
                (SELECT max(at) FROM {log.events} AS e WHERE e.{log.key} = c.id), :now)
            WHERE c.id = ANY(:ids) AND c.updated_at > :now
            RETURNING c.id
            """  # noqa: S608 -- constants only
        ),
        {"ids": touched, "now": now},
    ).scalars()
    ids = list(updated)
    if ids:
        result.changes.append(f"{log.name}: updated_at set to the last event of {_ids(ids)}")
    if log.name == "incident":
        recounted = session.execute(
            sa.text(
                """
                WITH counts AS (
                    SELECT i.id, (SELECT count(*) FROM incident_events AS e
                                  WHERE e.incident_id = i.id AND e.action = 'escalate') AS n
                    FROM incidents AS i WHERE i.id = ANY(:ids)
                )
                UPDATE incidents AS i SET escalation_level = counts.n
                FROM counts WHERE i.id = counts.id AND i.escalation_level <> counts.n
                RETURNING i.id
                """
            ),
            {"ids": touched},
        ).scalars()
        ids = list(recounted)
        if ids:
            result.changes.append(f"incident: escalation_level recounted for {_ids(ids)}")


def _repair_order(session: Session, log: Log, result: Repair) -> None:
    moved = session.execute(
        sa.text(
            f"""
            WITH late AS ({_out_of_order_sql(log)})
            UPDATE {log.events} AS e
            SET at = late.latest_before,
                data = e.data || jsonb_build_object('recorded_at', late.at)
            FROM late WHERE e.id = late.id
            RETURNING e.id, late.case_id, late.at AS was, e.at
            """  # noqa: S608 -- constants only
        )
    ).all()
    for row in moved:
        result.changes.append(
            f"{log.name} {row.case_id}: event {row.id} moved from {row.was.isoformat()} to "
            f"{row.at.isoformat()} (the latest earlier event); data.recorded_at keeps the old time"
        )


def _repair_status(session: Session, log: Log, result: Repair) -> None:
    fixed = session.execute(
        sa.text(
            f"""
            WITH wrong AS ({_status_sql(log)})
            UPDATE {log.cases} AS c SET status = wrong.to_status
            FROM wrong WHERE c.id = wrong.case_id
            RETURNING c.id, wrong.status AS was, c.status
            """  # noqa: S608 -- constants only
        )
    ).all()
    for row in fixed:
        result.changes.append(
            f"{log.name} {row.id}: status {row.was} → {row.status} (its last event)"
        )


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:20]))
    return f"{len(ids)} case(s): {shown}" + (" …" if len(ids) > 20 else "")
