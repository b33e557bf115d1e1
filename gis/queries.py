"""Services as sans-I/O flows: one implementation, run on a sync session or on an asyncpg pool.

A *flow* is a generator that yields the statements it needs (``Query``) and is sent back their
rows; whatever it returns is the service's answer, whatever it raises its error. It never touches
a connection itself, so the same rules run behind the CLI and the jobs (``run`` on a SQLAlchemy
session, inside the caller's transaction) and behind the API's hot paths (``gis.db_async``, on
asyncpg, with no worker thread and no ORM in the way). This is how ``h11`` and ``hyper-h2`` keep
protocol logic apart from I/O.

    def greet_flow(code: str) -> Flow[str]:
        row = yield Query(_NAME_SQL, {"code": code})
        if row is None:
            raise NotFoundError(f"no town {code!r}")
        return f"hello {row['name']}"

    run(session, greet_flow("330803110000"))          # sync
    await database.run(greet_flow("330803110000"))    # async
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import TextClause

T = TypeVar("T")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Query:
    """One statement and its parameters; a flow is sent back its first row (or ``None``), or
    with ``many`` the list of all rows."""

    # A text() constant, or a SQLAlchemy Core statement whose shape varies (an OGC items page):
    # gis.db_async caches the latter's compiled SQL by its cache key (its shape, not its
    # values), as SQLAlchemy's own engine does.
    statement: TextClause | Executable
    params: Mapping[str, Any] = field(default_factory=dict)
    many: bool = False
    # The Core statement is built once and reused (a module constant or a cached shape):
    # gis.db_async then keeps its compiled SQL by identity and skips computing its cache key
    # on every request (~0.1-0.2 ms of Python for an OGC page).
    reused: bool = False


Flow = Generator[Query, Any, T]


def run(session: Session, flow: Flow[T]) -> T:
    """Run ``flow`` on ``session`` (in its transaction; the caller commits)."""
    try:
        query = next(flow)
        while True:
            result = session.execute(query.statement, query.params)
            if query.many:
                reply: Any = [dict(r) for r in result.mappings()]
            else:
                first = result.mappings().first()
                reply = None if first is None else dict(first)
            query = flow.send(reply)
    except StopIteration as stop:
        value: T = stop.value
        return value
