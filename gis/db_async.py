"""The API's hot paths on asyncpg: flows (``gis.queries``) run on a pool, in the event loop.

FastAPI runs a sync endpoint in a worker thread, and the ORM session, the thread hand-off and the
GIL contention between 40 such threads cost several times the ~1 ms of SQL behind a report
(measured: docs/architecture.md, "The three endpoint styles"). So intake, locate and the token
check run their flows here instead: the SAME statements (SQLAlchemy ``text()`` constants,
compiled once to asyncpg's ``$n`` placeholders), no transaction around single statements (each
is atomic on its own; the intake inserts the incident and its events in ONE statement), prepared
plans kept per connection by asyncpg.

``SessionDatabase`` runs the same flows on a sync session: the tests hand the app their
rolled-back session through it, so the API answers from data the test has not committed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from gis.db import session_settings, translate_db_errors, translate_state, translating
from gis.errors import DatabaseUnavailableError, GisError
from gis.queries import Flow, Query, run
from gis.settings import Settings

T = TypeVar("T")

_DIALECT = asyncpg_dialect.dialect()


class Database(Protocol):
    """Where the API runs its flows."""

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end and return its value (or raise its error)."""
        ...


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the SQLAlchemy URL of the settings."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def compile_for_asyncpg(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """The statement with ``$n`` placeholders, and the parameter names in their order."""
    compiled = statement.compile(dialect=_DIALECT)
    return str(compiled), tuple(compiled.positiontup or ())


# Compiled Core statements kept per process (by shape).
SHAPED_CACHE_SIZE = 256

# Seconds between attempts to (re)open a listening connection, and between checks that it lives.
RELISTEN_S = 2.0

# Errors after which a connection is not to be trusted, and those that mean "the database is not
# there" (connecting refused or timed out, the pool exhausted, a connection cut or broken).
_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
_UNAVAILABLE = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)


class AsyncDatabase:
    """An asyncpg pool sized and timed like the sync engine (``GIS_DB_*`` settings)."""

    def __init__(self, settings: Settings, *, url: str | None = None) -> None:
        self._settings = settings
        # The primary's, or a read replica's (gis.replicas).
        self._url = url or settings.database_url
        self._pool: asyncpg.Pool | None = None
        # Keyed by the statement's identity (they are module constants); the statement itself
        # is kept too, so an id is never reused while its entry lives.
        self._compiled: dict[int, tuple[TextClause, str, tuple[str, ...]]] = {}
        # Core statements by their cache key (the statement's shape; values are extracted from
        # each request's statement), bounded: filters can take many shapes.
        self._shaped: OrderedDict[Any, Any] = OrderedDict()
        # Core statements built once (``Query.reused``), by identity.
        self._reused: dict[int, tuple[Any, Any]] = {}
        self._listeners: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Create the pool. No connection is made yet: the service starts with the database
        down and answers 503 until it is back."""
        s = self._settings
        self._pool = await asyncpg.create_pool(
            asyncpg_dsn(self._url),
            min_size=0,
            max_size=s.db_pool_size,
            timeout=s.db_connect_timeout_s,
            reset=_keep_session,
            server_settings={**session_settings(s), "application_name": "gis"},
        )

    def listen(self, channels: Mapping[str, Callable[[], None]]) -> None:
        """Call ``channels[c]`` on every NOTIFY on channel ``c``, all on ONE connection of its
        own kept open in the background (checked and, after an outage, reopened every
        ``RELISTEN_S``). Each callback is also called after each (re)connection: notifications
        sent while nobody listened are lost, so a listener catches up then. The payload is not
        passed on: it says at most which thing changed, the callback reads what it needs."""
        self._listeners.append(asyncio.create_task(self._listen(dict(channels))))

    async def _listen(self, channels: dict[str, Callable[[], None]]) -> None:
        s = self._settings
        while True:
            try:
                conn = await asyncpg.connect(
                    asyncpg_dsn(self._url),
                    timeout=s.db_connect_timeout_s,
                    server_settings={"application_name": "gis-listen"},
                )
            except (*_UNAVAILABLE, asyncpg.PostgresError):
                await asyncio.sleep(RELISTEN_S)
                continue
            try:
                for channel, callback in channels.items():
                    await conn.add_listener(channel, _notified(callback))
                for callback in channels.values():
                    callback()
                while not conn.is_closed():
                    await asyncio.sleep(RELISTEN_S)
                    # A round trip, so a connection lost without a word (a network partition
                    # leaves no FIN) is noticed too, and replaced.
                    await conn.execute("SELECT 1", timeout=s.db_connect_timeout_s)
            except (*_UNAVAILABLE, asyncpg.PostgresError):
                pass
            finally:
                conn.terminate()

    async def close(self) -> None:
        """Stop listening and close the pool (waits for connections in use)."""
        for task in self._listeners:
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _sql(self, statement: Any) -> tuple[str, tuple[str, ...]]:
        entry = self._compiled.get(id(statement))
        if entry is None:
            entry = (statement, *compile_for_asyncpg(statement))
            self._compiled[id(statement)] = entry
        return entry[1], entry[2]

    def _prepare(self, query: Query) -> tuple[str, list[Any]]:
        """The SQL and the positional arguments of ``query`` for asyncpg."""
        if isinstance(query.statement, TextClause):
            sql, names = self._sql(query.statement)
            return sql, [query.params[name] for name in names]
        if query.reused:
            reused = self._reused_sql(query.statement)
            if reused is not None:
                sql, names, defaults, processors = reused
                params = query.params
                args = []
                for name in names:
                    value = params[name] if name in params else defaults[name]
                    process = processors.get(name)
                    args.append(value if process is None else process(value))
                return sql, args
        return self._shaped_sql(query.statement, query.params)

    def _reused_sql(self, statement: Any) -> Any:
        """(SQL, parameter names, default values, processors) of a Core statement built once,
        compiled on its first use and kept by identity; ``None`` for one with IN lists (their
        placeholders depend on each request's values: the shaped path expands them)."""
        entry = self._reused.get(id(statement))
        if entry is not None and entry[0] is statement:
            return entry[1]
        compiled = statement.compile(dialect=_DIALECT)
        prepared = None
        if not compiled.post_compile_params:
            defaults = compiled.construct_params(_check=False)
            state = compiled._process_parameters_for_postcompile(defaults)
            names = tuple(state.positiontup or ())
            prepared = (state.statement, names, dict(state.parameters), dict(state.processors))
        if len(self._reused) >= SHAPED_CACHE_SIZE:
            self._reused.clear()
        # The statement is kept too, so its id is not reused while the entry lives.
        self._reused[id(statement)] = (statement, prepared)
        return prepared

    def _shaped_sql(self, statement: Any, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        key = statement._generate_cache_key()
        # The hashable part of a cache key is its .key (the structure); .bindparams are the
        # values of this statement.
        shape = None if key is None else key.key
        compiled = None if shape is None else self._shaped.get(shape)
        if compiled is None:
            compiled = statement.compile(dialect=_DIALECT, cache_key=key)
            if shape is not None:
                self._shaped[shape] = compiled
                if len(self._shaped) > SHAPED_CACHE_SIZE:
                    self._shaped.popitem(last=False)
        else:
            self._shaped.move_to_end(shape)
        values = compiled.construct_params(
            params=dict(params),
            extracted_parameters=None if key is None else key.bindparams,
            _no_postcompile=True,
        )
        # IN lists become one placeholder per value here (SQLAlchemy's "post-compile" step,
        # as its engine does on each execution).
        state = compiled._process_parameters_for_postcompile(values)
        processors = state.processors
        args = [
            processors[name](state.parameters[name])
            if name in processors
            else state.parameters[name]
            for name in state.positiontup or ()
        ]
        return state.statement, args

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` on one pooled connection; driver errors become domain errors."""
        if self._pool is None:
            raise RuntimeError("AsyncDatabase.open() was not called")
        try:
            with translating(asyncpg.PostgresError, translate_asyncpg):
                async with self._pool.acquire(timeout=self._settings.db_pool_timeout_s) as conn:
                    try:
                        value = await self._run_on(conn, flow)
                    except _BROKEN:
                        # A connection cut under a statement can be left mid-protocol (asyncpg's
                        # "cannot switch to state …"): never hand it back to the pool for reuse.
                        conn.terminate()
                        raise
        except GisError:
            raise
        except _UNAVAILABLE as error:
            # Refused, reset or timed out connecting, a closed or broken connection, an
            # exhausted pool.
            raise DatabaseUnavailableError(
                "the database is unavailable; retry in a few seconds"
            ) from error
        return value

    async def _run_on(self, conn: asyncpg.Connection, flow: Flow[T]) -> T:
        query, done, value = _advance(flow, None)
        while not done:
            assert query is not None
            sql, args = self._prepare(query)
            reply: Any
            if query.many:
                reply = [dict(row) for row in await conn.fetch(sql, *args)]
            else:
                row = await conn.fetchrow(sql, *args)
                reply = None if row is None else dict(row)
            query, done, value = _advance(flow, reply)
        return value  # type: ignore[return-value]


def _notified(callback: Callable[[], None]) -> Callable[..., None]:
    """An asyncpg listener (connection, pid, channel, payload) calling ``callback()``."""
    return lambda *_: callback()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection to the pool as it is.

    asyncpg's default reset sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release, a round trip per request. The flows run single statements and never take
    advisory locks, open cursors, LISTEN or SET anything, so there is nothing to reset; an open
    transaction (there is none) would still be rolled back by the pool before this is called.
    """


def _advance(flow: Flow[T], reply: Any) -> tuple[Query | None, bool, T | None]:
    """Send ``reply`` into ``flow``: its next query, or that it is done and its value."""
    try:
        return flow.send(reply), False, None
    except StopIteration as stop:
        return None, True, stop.value


def translate_asyncpg(error: asyncpg.PostgresError) -> GisError | None:
    """The domain error for an asyncpg server error (``gis.db.translate_state`` decides)."""
    state = getattr(error, "sqlstate", None)
    lost = isinstance(
        error,
        asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.CannotConnectNowError,
    )
    message = getattr(error, "message", None) or str(error)
    return translate_state(state, message.strip(), connection_lost=lost)


class SessionDatabase:
    """The same flows on a sync session (in the event loop's thread, so for tests and tools):
    the flow runs in the session's transaction, which is committed after it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` on the session and commit."""
        with translate_db_errors():
            value = run(self.session, flow)
            self.session.commit()
        return value
