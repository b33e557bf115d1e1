"""Migrations apply to an empty database, downgrade to nothing, and apply again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis import provision
from gis.layers import Base
from gis.migrations.api import downgrade, upgrade
from tests.conftest import Cli


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def scratch_url(database_url: str) -> Iterator[str]:
    """An empty database beside the test database, dropped afterwards."""
    url = make_url(database_url).set(database=make_url(database_url).database + "_migrations")
    text = url.render_as_string(hide_password=False)
    provision.drop_database(text, log=_quiet)
    provision.up(text, log=_quiet)
    yield text
    provision.drop_database(text, log=_quiet)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names()) - {"spatial_ref_sys"}
    finally:
        engine.dispose()


def test_migrations_apply_from_empty_and_downgrade_to_nothing(scratch_url: str) -> None:
    upgrade(scratch_url)
    assert set(Base.metadata.tables) <= _tables(scratch_url)
    downgrade(scratch_url, "base")
    assert _tables(scratch_url) == {"alembic_version"}
    upgrade(scratch_url)
    assert set(Base.metadata.tables) <= _tables(scratch_url)


def test_every_geometry_column_is_4326_with_a_gist_index(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        columns = connection.execute(
            sa.text(
                "SELECT f_table_name, f_geometry_column, srid FROM geometry_columns "
                "WHERE f_table_schema = 'public'"
            )
        ).all()
        indexed = {
            (row.tablename, row.indexdef)
            for row in connection.execute(
                sa.text("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            )
        }
    assert columns, "no geometry columns"
    for table, column, srid in columns:
        # The one exception: a generated Web Mercator copy of ``geom`` that tiles draw.
        assert srid == 4326 or (column == "geom_3857" and srid == 3857), (table, column)
        assert any(t == table and "USING gist" in d and f"({column})" in d for t, d in indexed), (
            f"{table}.{column} has no GiST index"
        )


def test_distance_ordered_layers_have_a_geography_index(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        definitions = connection.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%geography%'")
        ).scalars()
        # A partitioned table's index reads "ON ONLY public.incidents".
        tables = {
            d.split(" ON ")[1].removeprefix("ONLY ").split()[0].removeprefix("public.")
            for d in definitions
        }
    assert {"responder_units", "incidents", "grids"} <= tables


def test_models_and_migrations_agree(engine: sa.Engine) -> None:
    """Autogenerate against the migrated database finds nothing to change."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gis.migrations.env_helpers import include_object

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], diff


def _snapshot(url: str, columns: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row (the given columns, in a fixed order) of each table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            out = {}
            for table, names in columns.items():
                row = ", ".join(f'"{name}"' for name in names)
                out[table] = tuple(
                    connection.execute(
                        sa.text(
                            f"SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) "
                            f"FROM (SELECT {row} FROM {table}) AS r"
                        )
                    ).one()
                )
            return out
    finally:
        engine.dispose()


def _columns_at(url: str, revision: str) -> dict[str, list[str]]:
    """The tables and columns of ``revision``, from an empty database beside ``url``."""
    other = make_url(url).set(database=make_url(url).database + "_at")
    text = other.render_as_string(hide_password=False)
    provision.drop_database(text, log=_quiet)
    provision.up(text, log=_quiet)
    try:
        upgrade(text, revision)
        return _columns(text)
    finally:
        provision.drop_database(text, log=_quiet)


def _columns(url: str) -> dict[str, list[str]]:
    """Every table of ours (and the statistics' view) with its columns, in order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT c.relname, a.attname FROM pg_class AS c "
                    "JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = 'public' "
                    "JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 "
                    "AND NOT a.attisdropped "
                    "WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition "
                    "AND c.relname NOT IN ('spatial_ref_sys', 'alembic_version') "
                    "ORDER BY c.relname, a.attnum"
                )
            ).all()
    finally:
        engine.dispose()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def _cases_layout(url: str) -> tuple[bool, int, int]:
    """Whether ``incidents`` has a year of monthly partitions, the rows its default partition
    holds, and the cases whose keys are missing or differ (and keys without a case)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            months = connection.scalar(
                sa.text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'incidents'::regclass")
            )
            in_default = connection.scalar(sa.text("SELECT count(*) FROM incidents_default"))
            differ = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM ("
                    "(SELECT id, reported_at, idempotency_key FROM incidents "
                    " EXCEPT ALL SELECT id, reported_at, idempotency_key FROM incident_keys) "
                    "UNION ALL "
                    "(SELECT id, reported_at, idempotency_key FROM incident_keys "
                    " EXCEPT ALL SELECT id, reported_at, idempotency_key FROM incidents)) AS d"
                )
            )
    finally:
        engine.dispose()
    return bool(months and months >= 13), int(in_default or 0), int(differ or 0)


def test_partitioning_the_demo_county_keeps_every_row_both_ways(scratch_url: str) -> None:
    """0012 and 0023 on the loaded demo county: every row of every table (and the statistics'
    view) is the same after the downgrades to 0022 and to 0011 and the upgrades back, counted
    and checksummed; the cases sit in their months with one keys row each.

    The county is the demo's with a tenth of its cases (a year of them still, so every month
    has its partition): the suite's budget, the rows' kinds are the same."""
    from sqlalchemy.orm import Session

    from gis.layers.categories import load_catalog
    from gis.sample import load_sample
    from gis.services.stats import refresh_facts
    from tests.conftest import SAMPLE_END, SAMPLE_SEED

    upgrade(scratch_url)
    engine = sa.create_engine(scratch_url)
    try:
        with Session(engine) as session:
            load_catalog(session)
            load_sample(
                session, seed=SAMPLE_SEED, end=SAMPLE_END, incidents_per_town=800, progress=False
            )
            # An Open311 update names an event: its key is carried across both ways.
            session.execute(
                sa.text(
                    "INSERT INTO open311_updates (client_update_id, incident_id, event_id, "
                    "event_at, received_at) SELECT 'm-1', incident_id, id, at, now() "
                    "FROM incident_events ORDER BY id DESC LIMIT 1"
                )
            )
            session.commit()
        with Session(engine) as session:
            # The stored facts as of now: the view is re-created as of its last refresh.
            refresh_facts(session, full=True)
            session.commit()
        with engine.connect() as connection:
            months = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'incident_events'::regclass"
                )
            )
            in_default = connection.scalar(sa.text("SELECT count(*) FROM incident_events_default"))
    finally:
        engine.dispose()
    assert months and months >= 13  # a year of history's months, and the default
    assert in_default == 0  # the loader made its months first

    head = _columns(scratch_url)
    assert _cases_layout(scratch_url) == (True, 0, 0)
    # 0023 (the cases partitioned, and their keys) down and up: every other table's rows stay.
    at_0022 = {table: names for table, names in head.items() if table != "incident_keys"}
    before_0022 = _snapshot(scratch_url, at_0022)
    downgrade(scratch_url, "0022_writeback_moved")
    assert _columns(scratch_url) == at_0022
    assert _snapshot(scratch_url, at_0022) == before_0022
    upgrade(scratch_url)
    assert _snapshot(scratch_url, at_0022) == before_0022
    assert _cases_layout(scratch_url) == (True, 0, 0)

    # The tables and columns of 0011 (before partitioning) and of 0012, read off an empty
    # database migrated to each: later revisions add tables of their own, compared elsewhere.
    low, mid = _columns_at(scratch_url, "0011_onboard"), _columns_at(scratch_url, "0012_partition")
    for table, names in mid.items():
        assert set(names) <= set(head[table]), table
    before_low, before_mid = _snapshot(scratch_url, low), _snapshot(scratch_url, mid)
    downgrade(scratch_url, "0011_onboard")
    assert _columns(scratch_url) == low
    assert _snapshot(scratch_url, low) == before_low
    upgrade(scratch_url)
    assert _columns(scratch_url) == head
    assert _snapshot(scratch_url, mid) == before_mid
    before = before_mid
    assert before["incident_events"][0] > 5_000
    assert before["open311_updates"][0] == 1


def test_an_unmigrated_database_says_to_migrate_in_the_cli_and_the_api(
    scratch_url: str, cli: Cli
) -> None:
    # A command or a server started before `gis db migrate`: here the database has PostGIS and
    # no table of ours. Both say what to do, in their own error format, instead of a traceback
    # or a 500.
    from fastapi.testclient import TestClient

    from gis.api import create_app
    from gis.settings import Settings

    result = cli("sample", "load", database_url=scratch_url)
    assert result.exit_code == 2, result.output
    assert "not migrated" in result.output and "gis db migrate" in result.output
    assert "Traceback" not in result.output

    settings = Settings(  # type: ignore[call-arg]
        database_url=scratch_url, analytics_warmup=False, _env_file=None
    )
    with TestClient(create_app(settings)) as client:
        for path in ("/categories", "/health"):
            reply = client.get(path)
            assert reply.status_code == 503, reply.text
            assert reply.json()["code"] == "database_unavailable"
            assert "gis db migrate" in reply.json()["detail"]
    assert _tables(scratch_url) == set()  # nothing was half-written on the way


def test_health_refuses_a_schema_older_than_the_code_and_serves_a_newer_one(
    scratch_url: str,
) -> None:
    # A load balancer asks /health: an instance whose database is behind its code (deployed
    # before `gis db migrate`) is taken out; one whose database a later version already migrated
    # (a rolling upgrade) keeps serving.
    from fastapi.testclient import TestClient

    from gis.api import create_app
    from gis.migrations.api import upgrade
    from gis.settings import Settings

    settings = Settings(  # type: ignore[call-arg]
        database_url=scratch_url, analytics_warmup=False, _env_file=None
    )
    engine = sa.create_engine(scratch_url)
    try:
        upgrade(scratch_url, "0001")
        with TestClient(create_app(settings)) as client:
            reply = client.get("/health")
            assert reply.status_code == 503, reply.text
            assert "revision 0001, older than this version" in reply.json()["detail"]
            with engine.begin() as connection:
                connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_next'"))
            reply = client.get("/health")
            assert reply.status_code == 200, reply.text
            assert reply.json()["schema_revision"] == "9999_next"
    finally:
        engine.dispose()
