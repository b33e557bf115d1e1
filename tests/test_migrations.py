"""Migrations apply to an empty database, downgrade to nothing, and apply again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gis import provision
from gis.layers import Base
from gis.migrations.api import downgrade, upgrade


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
        assert srid == 4326, (table, column)
        assert any(t == table and "USING gist" in d and f"({column})" in d for t, d in indexed), (
            f"{table}.{column} has no GiST index"
        )


def test_distance_ordered_layers_have_a_geography_index(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        definitions = connection.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%geography%'")
        ).scalars()
        tables = {d.split(" ON ")[1].split()[0].removeprefix("public.") for d in definitions}
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
