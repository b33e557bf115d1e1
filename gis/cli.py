"""The `gis` command: the same services as the API, from the shell."""

from __future__ import annotations

import typer
from rich.console import Console

from gis.commands import command_session, fail
from gis.errors import GisError
from gis.settings import get_settings

app = typer.Typer(
    help="Grid-management GIS for grassroots-governance command rooms (全科网格 · 四个平台).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Provision and migrate the PostGIS database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


@db_app.command("up")
def db_up() -> None:
    """Make GIS_DATABASE_URL reachable: install PostgreSQL/PostGIS/pgRouting if local, create
    the database and its extensions."""
    from gis import provision

    try:
        provision.up(get_settings().database_url, log=console.print)
    except GisError as error:
        raise fail(error) from error


@db_app.command("migrate")
def db_migrate(revision: str = typer.Option("heads", help="Target revision")) -> None:
    """Apply the schema migrations and sync the catalogs from data/ (categories, services)."""
    from gis.layers.categories import load_catalog
    from gis.layers.errands import load_services
    from gis.migrations.api import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    with command_session(settings) as session:
        categories = load_catalog(session)
        services = load_services(session)
    console.print(
        f"migrated to {revision}; {categories} categories and {services} errand services "
        "in the catalogs"
    )


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base")) -> None:
    """Revert the schema to an earlier revision (``base`` drops every table)."""
    from gis.migrations.api import downgrade

    downgrade(get_settings().database_url, revision)
    console.print(f"downgraded to {revision}")


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="Address (default GIS_HOST)"),
    port: int | None = typer.Option(None, help="Port (default GIS_PORT)"),
    workers: int | None = typer.Option(None, help="Worker processes (default GIS_WORKERS)"),
) -> None:
    """Serve the API and the command-room maps (OpenAPI docs at /docs)."""
    import uvicorn

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    console.print(f"serving on http://{host}:{port} (API docs at http://{host}:{port}/docs)")
    uvicorn.run(
        "gis.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level="info",
        # Event streams never end by themselves: on shutdown they are cut after this, and
        # browsers reconnect (with Last-Event-ID) to the next process.
        timeout_graceful_shutdown=5,
    )


def _mount_commands() -> None:
    """Sub-commands owned by their packages and by the modules of ``gis.commands``."""
    from gis.commands import register_all
    from gis.sample.commands import app as sample_app

    app.add_typer(sample_app, name="sample")
    register_all(app)


_mount_commands()


if __name__ == "__main__":
    app()
