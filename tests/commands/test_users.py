"""`gis users`: add prints a working token; demo prints one full token per role; revoke works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gis.cli import app
from gis.layers.users import Role, User
from gis.services import access
from gis.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli_on_test_database(
    database_url: str, demo: dict[str, object], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The CLI pointed at the test database; the users it makes are removed afterwards."""
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    with Session(engine) as session:
        session.execute(sa.delete(User).where(User.name.like("demo-%") | (User.name == "cli-user")))
        session.commit()


def test_demo_prints_a_full_working_token_for_every_role(
    cli_on_test_database: None, engine: Engine
) -> None:
    result = runner.invoke(app, ["users", "demo"])
    assert result.exit_code == 0, result.output
    tokens = {
        line.split()[0]: line.split()[-1]
        for line in result.output.splitlines()
        if line.split() and line.split()[-1].startswith(access.TOKEN_PREFIX)
    }
    assert set(tokens) == {role.value for role in Role}
    with Session(engine) as session:
        for role, token in tokens.items():
            assert access.authenticate(session, token).role.value == role


def test_add_then_revoke(cli_on_test_database: None, engine: Engine) -> None:
    added = runner.invoke(app, ["users", "add", "cli-user", "--role", "county"])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    bad_role = runner.invoke(app, ["users", "add", "x", "--role", "mayor"])
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    revoked = runner.invoke(app, ["users", "revoke", "cli-user"])
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output
    with Session(engine) as session, pytest.raises(Exception, match="revoked"):
        access.authenticate(session, token)
