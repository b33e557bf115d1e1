"""Run Alembic programmatically, so the CLI and the tests need no alembic.ini."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's head revision and every revision it knows (read once from the scripts)."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    head = script.get_current_head()
    assert head is not None
    return head, frozenset(r.revision for r in script.walk_revisions())


def schema_revision(connection: sa.Connection) -> tuple[str, bool]:
    """The database's schema revision, and whether it is older than this code's head (a
    revision this code does not know is newer: a later version migrated it, as in a rolling
    upgrade, and this one still serves). A database without our tables raises the driver's
    undefined-table error (translated: "not migrated … run `gis db migrate`")."""
    head, known = _revisions()
    current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if current is None:
        return "none", True
    return str(current), current != head and current in known


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision``."""
    command.downgrade(alembic_config(url), revision)
