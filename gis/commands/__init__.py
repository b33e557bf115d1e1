"""CLI command modules, and the two helpers every command uses.

Each module here makes its command groups with ``command_group``; ``gis.cli`` mounts every
module's, in module-name order (a module with commands outside a group mounts its own with
``register(app)``). A command opens the database with
``command_session`` (or ``command_engine``) and turns a domain error into a message and exit
code 2 with ``fail``; nothing else sets up engines or exits by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from gis.errors import GisError

if TYPE_CHECKING:
    from distributed import Client
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from gis.settings import Settings

errors = Console(stderr=True)

# The options of the bulk jobs that can run on Dask (reassign, boundary import, many-town
# analytics): ``dask_cluster`` turns them into a client.
DaskOption = typer.Option(
    False,
    "--dask",
    help="Run on a Dask cluster: GIS_DASK_SCHEDULER's, else a local one (pip install '.[dask]')",
)
SchedulerOption = typer.Option(
    None, help="Dask scheduler of a real cluster, e.g. tcp://10.0.0.5:8786 (implies --dask)"
)


def register_all(app: typer.Typer) -> None:
    """Add every command module's commands to ``app``: what its ``register(app)`` adds, or
    else its command groups (``command_group``)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
            continue
        for value in list(vars(module).values()):
            if isinstance(value, typer.Typer):
                app.add_typer(value)


def command_group(
    name: str, help: str, *, no_args_is_help: bool = True, **options: Any
) -> typer.Typer:
    """A command group of a module here, mounted as `gis <name>` by ``register_all``."""
    return typer.Typer(name=name, help=help, no_args_is_help=no_args_is_help, **options)


def fail(error: GisError) -> typer.Exit:
    """Print a domain error for a person and return the exit (code 2) to raise."""
    errors.print(f"[red]error:[/red] {error.detail}")
    return typer.Exit(code=2)


@contextmanager
def command_engine(settings: Settings | None = None) -> Iterator[Engine]:
    """An engine for one command, disposed afterwards; a domain error raised inside is printed
    and exits with code 2 (``fail``)."""
    # Imported here: ``gis --help`` should not pay for SQLAlchemy.
    from gis.db import make_engine
    from gis.settings import get_settings

    engine = make_engine(settings or get_settings())
    try:
        yield engine
    except GisError as error:
        raise fail(error) from error
    finally:
        engine.dispose()


@contextmanager
def command_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session for one command: commits on success, rolls back on any error, driver errors
    translated (``gis.db.session_scope``), domain errors printed with exit code 2."""
    from gis.db import session_scope

    with command_engine(settings) as engine, session_scope(engine) as session:
        yield session


@contextmanager
def dask_cluster(
    dask: bool, scheduler: str | None, settings: Settings | None = None
) -> Iterator[Client | None]:
    """The Dask client a command runs on — the scheduler at ``scheduler``, or with ``dask`` the
    one of GIS_DASK_SCHEDULER or else a new local cluster — or ``None``: run in-process. The
    cluster's address goes to stderr; a bad or unreachable address is a ``BulkJobError``."""
    if not dask and scheduler is None:
        yield None
        return
    from gis.services import bulk
    from gis.settings import get_settings

    address = scheduler or (settings or get_settings()).dask_scheduler
    with bulk.dask_client(address) as client:
        errors.print(f"Dask: {client.scheduler_info().get('address', address)}")
        yield client


def dry_run(session: Session, commit: bool, note: str = "nothing written") -> bool:
    """Whether a command that writes only with ``--commit`` was not told to: then its session
    is rolled back and the run says so."""
    if commit:
        return False
    session.rollback()
    errors.print(f"[yellow]dry run[/yellow]: {note}; add --commit to write")
    return True


def outcome_table(
    title: str,
    codes_header: str,
    *,
    added: list[str],
    changed: list[tuple[str, list[str]]],
    unchanged: int,
    show: int,
) -> Table:
    """The table an import's dry run prints: how many rows are added, changed (code and what
    changed) and unchanged, with the first ``show`` codes of each; the caller adds its own rows
    (retired, rejected…)."""
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column(codes_header)
    table.add_row("added", str(len(added)), sample(added, show))
    changes = [f"{code} ({'+'.join(what)})" for code, what in changed]
    table.add_row("changed", str(len(changes)), sample(changes, show))
    table.add_row("unchanged", str(unchanged), "")
    return table


def sample(items: list[str], show: int) -> str:
    """The first ``show`` items, comma-separated, with an ellipsis when there are more."""
    return ", ".join(items[:show]) + (" …" if len(items) > show else "")
