"""The live feed's rules: which events exist, the filters a subscriber gives, and the reads a
stream needs (the events after an id, the oldest kept, who is still writing, pruning).

The feed is ``live_events`` (``gis.layers.live``), written by triggers in the transaction of each
change; its ids are the events' ids on every stream and webhook. Ids are taken in insertion order
but committed in commit order, so a reader can see id 105 while 104 is still being written. Every
writer holds a shared advisory lock (``LIVE_LOCK``) until it ends: a reader that meets a gap asks
who holds it (``writers_flow``) and waits for those transactions before it passes the gap. After
that the gap is final (a rollback), and nothing is ever delivered out of order or skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import BadRequestError, UnknownCodeError
from gis.layers.live import LIVE_LOCK, EventType
from gis.queries import Flow, Query

CASE_EVENTS = frozenset(t for t in EventType if t.value.startswith("case."))


@dataclass(frozen=True)
class FeedEvent:
    """One row of the feed: what scoping needs, and the JSON a subscriber receives."""

    id: int
    type: str
    town_code: str | None
    grid_code: str | None
    unit_id: int | None
    platform: str | None
    payload: str  # {"id", "type", "town", "at", ...the fields to redraw}

    def sse(self) -> str:
        """The event as a Server-Sent Events message."""
        return f"id: {self.id}\nevent: {self.type}\ndata: {self.payload}\n\n"


def parse_types(value: str | None) -> frozenset[EventType] | None:
    """Comma-separated event types (``case.created,unit.moved``), or a 422 naming the known."""
    if value is None or not value.strip():
        return None
    types = set()
    for name in value.split(","):
        try:
            types.add(EventType(name.strip()))
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            raise UnknownCodeError(f"unknown event type {name.strip()!r}; known: {known}") from None
    return frozenset(types)


def parse_last_event_id(value: str | None) -> int | None:
    """The ``Last-Event-ID`` a reconnecting browser sends, or a 400 if it is not an id."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise BadRequestError(f"Last-Event-ID must be an event id (a number), not {value!r}")
    return int(value)


_COLUMNS = """
id, type, town_code, grid_code, unit_id, platform,
(jsonb_build_object('id', id, 'type', type, 'town', town_code, 'at', at) || data)::text
    AS payload
"""

_AFTER_SQL = sa.text(
    f"SELECT {_COLUMNS} FROM live_events WHERE id > :after ORDER BY id LIMIT :limit"  # noqa: S608
)
# ``newest`` is the last id handed out (pruned or rolled back, it still counts): a feed emptied
# by pruning does not start again from 0.
_BOUNDS_SQL = sa.text(
    """
SELECT coalesce(min(id), 0) AS oldest,
       greatest(coalesce(max(id), 0),
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END
                 FROM live_events_id_seq)) AS newest
FROM live_events
"""
)
# Transactions (other than ours) that may still commit feed rows — of this database: pg_locks
# lists the whole server's, and a writer of another database on the same server (a staging
# copy, a test worker) must not hold this feed back.
_WRITERS_SQL = sa.text(
    f"""
SELECT coalesce(array_agg(virtualtransaction ORDER BY virtualtransaction), '{{}}') AS writers
FROM pg_locks
WHERE locktype = 'advisory' AND classid = {LIVE_LOCK[0]} AND objid = {LIVE_LOCK[1]}
  AND objsubid = 2 AND pid <> pg_backend_pid()
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""  # noqa: S608 -- module constants only
)
_PRUNE_SQL = sa.text(
    "WITH gone AS (DELETE FROM live_events WHERE at < :before RETURNING 1) "
    "SELECT count(*) AS n FROM gone"
)
_TOWN_SQL = sa.text("SELECT code FROM regions WHERE code = :code AND level = 'town'")


def events_after_flow(after: int, limit: int) -> Flow[list[FeedEvent]]:
    """Up to ``limit`` feed events with ids above ``after``, oldest first."""
    rows = yield Query(_AFTER_SQL, {"after": after, "limit": limit}, many=True)
    return [FeedEvent(**row) for row in rows]


def bounds_flow() -> Flow[tuple[int, int]]:
    """The oldest and newest ids kept (0, 0 when the feed is empty)."""
    row = yield Query(_BOUNDS_SQL)
    return int(row["oldest"]), int(row["newest"])


def writers_flow() -> Flow[frozenset[str]]:
    """The transactions writing feed events right now (their virtual transaction ids)."""
    row = yield Query(_WRITERS_SQL)
    return frozenset(row["writers"])


def prune_flow(before: datetime) -> Flow[int]:
    """Delete the events older than ``before`` (the retention); returns how many."""
    row = yield Query(_PRUNE_SQL, {"before": before})
    return int(row["n"])


def check_town_flow(code: str) -> Flow[str]:
    """``code`` if it is a town, else a 422."""
    row = yield Query(_TOWN_SQL, {"code": code})
    if row is None:
        raise UnknownCodeError(f"unknown town {code!r}: give a town (乡镇) code")
    return code


_SEEN_SQL = sa.text("SELECT id FROM live_events WHERE id > :after ORDER BY id LIMIT 10000")


def feed_position(session: Session, after: int | None) -> tuple[int, tuple[int, ...]]:
    """Where a page built in ``session``'s snapshot resumes the feed: ``after`` (a settled id,
    default the newest the snapshot sees) and the ids above it the snapshot already shows."""
    if after is None:
        after = int(session.execute(_BOUNDS_SQL).mappings().one()["newest"])
    seen = tuple(int(i) for i in session.scalars(_SEEN_SQL, {"after": after}))
    return after, seen


def deliverable(
    events: Sequence[FeedEvent], after: int, settled: int
) -> tuple[list[FeedEvent], bool]:
    """The events that may be delivered now after id ``after``, and whether a gap stopped them.

    Ids at or below ``settled`` may skip gaps (no transaction that could fill them is left);
    above it, only the next id in sequence may follow."""
    out: list[FeedEvent] = []
    last = after
    for event in events:
        if event.id > max(last, settled) + 1:  # an id in between may still be committed
            return out, True
        out.append(event)
        last = event.id
    return out, False
