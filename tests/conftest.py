"""Test fixtures: a real PostGIS database per test session, a rolled-back transaction per test.

The database named by ``GIS_TEST_DATABASE_URL`` (default: ``gis_test`` on the local server) is
dropped, re-created and migrated at the start of every session. In CI (``CI=true``) a database
that cannot be provided fails the run; elsewhere the database tests are skipped with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from gis import provision
from gis.db import make_engine
from gis.errors import GisError
from gis.migrations.api import upgrade
from gis.settings import Settings

if TYPE_CHECKING:
    from typer.testing import Result

# The headless-Chromium fixtures (browser, assets_dir), shared by tests/maps and tests/ogc; the
# Dask clusters (local_client, scheduler) of the bulk-job tests.
pytest_plugins = ("tests.browser", "tests.dask_fixtures")

TEST_DATABASE_URL = os.environ.get(
    "GIS_TEST_DATABASE_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_test"
)
# Under pytest-xdist (`make test` runs two workers) each worker has a database of its own:
# gis_test_gw0, gis_test_gw1, … Everything a test creates is named after it.
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    _url = sa.engine.make_url(TEST_DATABASE_URL)
    TEST_DATABASE_URL = _url.set(database=f"{_url.database}_{_worker}").render_as_string(
        hide_password=False
    )
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The whole suite's time budget (the CI allows 90 minutes; the suite keeps to 15): the summary
# says how much of it a run used, and which tests took longest (--durations in `make test`).
SUITE_BUDGET_S = float(os.environ.get("GIS_SUITE_BUDGET_S", "900"))
_SUITE_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: the run's wall-clock time against the suite's budget."""
    if hasattr(terminalreporter.config, "workerinput"):
        return  # an xdist worker: the controller reports
    spent = time.monotonic() - _SUITE_STARTED
    verdict = "within" if spent <= SUITE_BUDGET_S else "OVER"
    terminalreporter.write_line(
        f"suite time: {spent:.0f} s, {verdict} the budget of {SUITE_BUDGET_S:.0f} s "
        "(GIS_SUITE_BUDGET_S; `make test` lists the slowest tests above)"
    )


# The demo history ends here in tests, so figures do not depend on the day the suite runs.
SAMPLE_END = datetime(2026, 11, 1, tzinfo=UTC)
SAMPLE_SEED = 20261127


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def database_url() -> str:
    """A freshly created, migrated PostGIS database for this test session."""
    try:
        provision.up(TEST_DATABASE_URL, log=_quiet)
        provision.drop_database(TEST_DATABASE_URL, log=_quiet)
        provision.up(TEST_DATABASE_URL, log=_quiet)
    except GisError as error:
        if IN_CI:
            pytest.fail(f"CI needs a PostGIS database: {error.detail}", pytrace=False)
        pytest.skip(f"no PostGIS database: {error.detail}")
    upgrade(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database."""
    # Tokens are checked on every request here, so revocation tests see it at once; the cache
    # has a test of its own.
    # Event streams end after 0.2 s, so a client that reads a whole response (schemathesis,
    # TestClient) gets one back; the live-feed tests lift the bound. No numba warm-up thread in
    # every test app: the analytics tests compile on first use.
    return Settings(  # type: ignore[call-arg]
        database_url=database_url,
        token_cache_s=0,
        sse_max_s=0.2,
        analytics_warmup=False,
        _env_file=None,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The engine of the test database."""
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo(engine: Engine, catalog: int) -> dict[str, object]:
    """The demo county, loaded and committed once per session; returns the load summary."""
    from gis.sample import load_sample

    with Session(engine) as session:
        summary = load_sample(session, seed=SAMPLE_SEED, scale=1, end=SAMPLE_END, progress=False)
        session.commit()
    return dict(summary) if isinstance(summary, dict) else vars(summary)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        if transaction.is_active:
            transaction.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session whose commits only release savepoints: nothing outlives the test."""
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session


class Cli(Protocol):
    """What the ``cli`` fixture gives: ``cli("users", "add", "x")`` runs ``gis users add x``."""

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
        database_url: str | None = None,
    ) -> Result: ...


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run the `gis` command in-process (``gis.cli.app`` under typer's ``CliRunner``) against the
    test database, and return its ``Result`` (exit code, output) for the test to check.

    ``GIS_DATABASE_URL`` names the test database from the fixture's start; each call points it
    at its ``database_url`` instead if given (another database, e.g. a scratch one), and clears
    ``gis.settings.get_settings``'s cache before and after, so the command reads its settings
    afresh and leaves none cached. ``env`` is set for that call only (None
    unsets a variable; ``{"COLUMNS": "200"}`` keeps rich's tables on one line); ``input`` is fed
    to the command's stdin."""
    from typer.testing import CliRunner

    from gis.cli import app
    from gis.settings import get_settings

    test_database = database_url

    def run(
        *args: str,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
        database_url: str | None = None,
    ) -> Result:
        monkeypatch.setenv("GIS_DATABASE_URL", database_url or test_database)
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), input=input, env=env)
        finally:
            get_settings.cache_clear()

    monkeypatch.setenv("GIS_DATABASE_URL", test_database)
    get_settings.cache_clear()
    yield run
    get_settings.cache_clear()


def count(session: Session, table: str) -> int:
    """Rows in a table (names come from tests, never from input)."""
    return int(session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture(scope="session", autouse=False)
def catalog(engine: Engine) -> int:
    """The category catalog from data/, committed once per session."""
    from gis.layers.categories import load_catalog

    with Session(engine) as session:
        written = load_catalog(session)
        session.commit()
    return written


def use_session(app: Any, session: Session) -> Any:
    """Make ``app`` answer from ``session`` (the test's rolled-back transaction): its sync
    sessions and the flows it otherwise runs on asyncpg (``gis.db_async``)."""
    from gis.api.deps import get_session
    from gis.db_async import SessionDatabase

    app.dependency_overrides[get_session] = lambda: session
    app.state.database = SessionDatabase(session)
    return app


@pytest.fixture
def app(settings: Settings, session: Session, catalog: int) -> Iterator[object]:
    """The API app, its sessions replaced by the test's rolled-back session."""
    from gis.api import create_app

    yield use_session(create_app(settings), session)


@pytest.fixture
def client(app: object) -> Iterator[object]:
    """An HTTP client for the API (lifespan run, so the engine exists)."""
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:  # type: ignore[arg-type]
        yield test_client


@pytest.fixture
def admin_headers(session: Session) -> dict[str, str]:
    """An Authorization header of a fresh admin user (rolled back with the test)."""
    from gis.layers.users import Role
    from gis.services import access

    user = access.add_user(session, name="test-admin", role=Role.ADMIN)
    return {"Authorization": f"Bearer {access.issue_token(session, user)}"}
