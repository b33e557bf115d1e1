"""Engine, sessions and the one place where driver errors become domain errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gis.errors import (
    ConflictError,
    DatabaseUnavailableError,
    FutureEventError,
    GisError,
    ValidationError,
)
from gis.settings import Settings, get_settings

DriverErrorT = TypeVar("DriverErrorT", bound=Exception)
A = TypeVar("A")
T = TypeVar("T")


def session_settings(settings: Settings) -> dict[str, str]:
    """The server settings of every connection the service opens (SQLAlchemy's and asyncpg's)."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "jit": "on" if settings.db_jit else "off",
    }


def make_engine(settings: Settings | None = None, *, url: str | None = None) -> Engine:
    """One engine per process, with timeouts that make an outage fail fast instead of hang."""
    settings = settings or get_settings()
    return sa.create_engine(
        url or settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout_s,
        # A ping is a round trip on every checkout (~15 % of a locate's time). Without it, a
        # connection that died with the server fails its first statement (a 503 to that one
        # request) and SQLAlchemy then discards the whole pool, so the service still recovers
        # by itself (bench/outage checks this).
        pool_pre_ping=settings.db_pre_ping,
        # Roll back whatever a returned connection still holds: cheap insurance against a
        # transaction left open by a bug (the hot paths run in autocommit and skip it).
        pool_reset_on_return="rollback",
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "options": " ".join(f"-c {k}={v}" for k, v in session_settings(settings).items()),
            "application_name": "gis",
        },
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay usable after commit (routes shape replies)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error (driver errors,
    the commit's too, raised as domain errors)."""
    with make_sessionmaker(engine)() as session, translate_db_errors(), committing(session):
        yield session


def in_own_session(url: str, work: Callable[[Session, A], T], arg: A) -> T:
    """``work(session, arg)`` on a session of a new engine on ``url``, rolled back and the engine
    disposed afterwards: how a task on a Dask worker reads the database (a session is never
    shipped to a worker; each task opens its own connection)."""
    engine = make_engine(url=url)
    try:
        with make_sessionmaker(engine)() as session, translate_db_errors():
            return work(session, arg)  # closing the session rolls back: the task only reads
    finally:
        engine.dispose()


@contextmanager
def committing(session: Session) -> Iterator[Session]:
    """Commit what the block wrote; on any error roll it back (locks released now) and re-raise."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


_PG_UNIQUE_VIOLATION = "23505"
_PG_FK_VIOLATION = "23503"
_PG_CHECK_VIOLATION = "23514"
_PG_NOT_NULL = "23502"
_PG_EXCLUSION = "23P01"
_PG_SERIALIZATION = "40001"
_PG_QUERY_CANCELED = "57014"
_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_UNDEFINED_TABLE = "42P01"
# Raised by the trigger of migration 0008 on an event dated ahead of the database clock.
_GIS_FUTURE_EVENT = "GIS01"


def translate(error: Exception) -> GisError | None:
    """The domain error for a driver error, or ``None`` when it is a bug (a 500)."""
    if isinstance(error, GisError):
        return error
    if isinstance(error, sa_exc.TimeoutError):  # pool exhausted: the server is slow or gone
        return DatabaseUnavailableError(
            "the database is overloaded or unreachable; retry in a few seconds"
        )
    if isinstance(error, psycopg.Error):  # raised by a raw cursor (COPY and the bulk paths)
        return translate_state(
            error.sqlstate,
            str(error.diag.message_primary or error).strip(),
            connection_lost=isinstance(error, psycopg.OperationalError),
            data_error=isinstance(error, psycopg.DataError),
        )
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    connection_lost = error.connection_invalidated or isinstance(error, sa_exc.OperationalError)
    return translate_state(
        _sqlstate(error),
        _primary_message(error),
        connection_lost=connection_lost,
        data_error=isinstance(error, sa_exc.DataError),
    )


def translate_state(
    state: str | None, message: str, *, connection_lost: bool, data_error: bool = False
) -> GisError | None:
    """The domain error for a SQLSTATE (whichever driver raised it), or ``None`` for a bug."""
    if state == _PG_SERIALIZATION:
        return ConflictError("a concurrent change won; retry the request")
    if state == _PG_LOCK_NOT_AVAILABLE:
        return ConflictError(
            "another change to the same records is being written right now; retry in a moment"
        )
    if state == _GIS_FUTURE_EVENT:
        return FutureEventError(f"refused by the database: {message}")
    if state == _PG_UNDEFINED_TABLE:
        # Every table the code names is made by a migration: one missing means the database is
        # empty or older than this version (a server started before `gis db migrate`).
        return DatabaseUnavailableError(
            f"{message}: the database is not migrated to this version of gis; run `gis db migrate`"
        )
    if state == _PG_QUERY_CANCELED:
        return DatabaseUnavailableError("the query took too long and was cancelled; retry later")
    # Connection exceptions (08…) and operator intervention such as a shutdown (57…).
    if connection_lost and (state is None or state.startswith(("08", "57"))):
        return DatabaseUnavailableError("the database is unavailable; retry in a few seconds")
    if state == _PG_UNIQUE_VIOLATION:
        return ConflictError(f"already exists: {message}")
    if state in (_PG_FK_VIOLATION, _PG_CHECK_VIOLATION, _PG_NOT_NULL, _PG_EXCLUSION):
        return ValidationError(f"rejected by the database: {message}")
    if data_error or (state or "").startswith("22"):
        # Class 22 (data exception) and the driver's own refusals, such as a NUL character in
        # text, are always about the values the client sent.
        return ValidationError(f"invalid value: {message}")
    return None


@contextmanager
def translating(
    errors: type[DriverErrorT] | tuple[type[DriverErrorT], ...],
    translate: Callable[[DriverErrorT], GisError | None],
) -> Iterator[None]:
    """Re-raise ``errors`` as the domain error ``translate`` finds for them (as they are when it
    finds none): the one boundary for SQLAlchemy's errors and raw psycopg cursors' here, and
    asyncpg's in ``gis.db_async``.
    """
    try:
        yield
    except errors as error:
        domain = translate(error)
        if domain is None:
            raise
        raise domain from error


def translate_db_errors() -> AbstractContextManager[None]:
    """Re-raise driver errors as domain errors; the only place that knows SQLSTATE codes."""
    return translating((sa_exc.SQLAlchemyError, psycopg.Error), translate)


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def _primary_message(error: sa_exc.DBAPIError) -> str:
    diag = getattr(error.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or error.orig).strip()
