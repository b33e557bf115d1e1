"""`gis users`: add prints a working token; demo prints one full token per role; revoke works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.users import Role, User
from gis.services import access
from tests.conftest import Cli


@pytest.fixture
def cli_users_removed(demo: dict[str, object], engine: Engine) -> Iterator[None]:
    """The demo county loaded; the users the CLI makes are removed afterwards."""
    yield
    with Session(engine) as session:
        session.execute(sa.delete(User).where(User.name.like("demo-%") | (User.name == "cli-user")))
        session.commit()


def test_demo_prints_a_full_working_token_for_every_role(
    cli: Cli, cli_users_removed: None, engine: Engine
) -> None:
    result = cli("users", "demo")
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


def test_add_then_revoke(cli: Cli, cli_users_removed: None, engine: Engine) -> None:
    added = cli("users", "add", "cli-user", "--role", "county")
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    bad_role = cli("users", "add", "x", "--role", "mayor")
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    revoked = cli("users", "revoke", "cli-user")
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output
    with Session(engine) as session, pytest.raises(Exception, match="revoked"):
        access.authenticate(session, token)
