"""`gis partitions`: the monthly partitions of the cases and the event log (ensure ahead from a
timer, list);
`gis archive`: detach old months into the archive schema, and restore one.
See docs/partitioning.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from gis.commands import command_group

if TYPE_CHECKING:
    from gis.services.partitions import Partition

partitions_app = command_group(
    "partitions", "Monthly partitions of the cases and the event log (docs/partitioning.md)."
)
archive_app = command_group(
    "archive",
    "Old months of the cases and the event log: `gis archive --before 2024-01` detaches every "
    "month before January 2024 into the `archive` schema; `gis archive restore 2023-12` "
    "attaches one again; `gis archive list` shows them.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _table(partitions: Sequence[Partition], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("month", "table", "rows (estimate)"):
        table.add_column(column)
    for part in partitions:
        month = "default" if part.month is None else str(part.month)
        rows = "not analyzed" if part.rows < 0 else f"{part.rows:,}"
        table.add_row(month, f"{part.schema}.{part.name}", rows)
    Console().print(table)


@partitions_app.command("ensure")
def ensure_command(
    months_ahead: int = typer.Option(
        3, min=0, max=120, help="Create this month and this many months after it"
    ),
    since: str | None = typer.Option(
        None, "--from", help="Start at this month instead, YYYY-MM (back-filling history)"
    ),
) -> None:
    """Create the missing monthly partitions (idempotent: run it daily from cron or a systemd
    timer). Cases and events a month has caught in a default partition move into it."""
    from gis.commands import command_session
    from gis.layers.base import utcnow
    from gis.services import partitions

    with command_session() as session:
        first, last = partitions.months_ahead(utcnow(), months_ahead)
        if since is not None:
            first = partitions.Month.parse(since)
        created = partitions.ensure_partitions(session, first=first, last=last)
    names = ", ".join(str(month) for month in created) or "none (all present)"
    Console().print(f"partitions {first}…{last}: created {names}")


@partitions_app.command("list")
def list_command() -> None:
    """Every partition of the cases and the event log, attached and archived, with its row
    estimate."""
    from gis.commands import command_session
    from gis.services import partitions

    with command_session() as session:
        found = partitions.list_partitions(session)
    _table([p for p in found if not p.archived], "attached partitions")
    archived = [p for p in found if p.archived]
    if archived:
        _table(archived, "archived (gis archive restore YYYY-MM attaches one)")


@archive_app.callback()
def archive_command(
    context: typer.Context,
    before: str | None = typer.Option(
        None, help="Archive every month before this one, YYYY-MM (e.g. 2024-01)"
    ),
) -> None:
    """Detach old months of the cases and the event log into the `archive` schema."""
    if context.invoked_subcommand is not None:
        return
    from gis.commands import command_session, fail
    from gis.errors import ValidationError
    from gis.services import partitions

    if before is None:
        raise fail(ValidationError("give --before YYYY-MM, or a command (restore, list)"))
    with command_session() as session:
        moved = partitions.archive_before(session, partitions.Month.parse(before))
    if not moved:
        Console().print(f"nothing to archive before {before}")
        return
    _table(moved, f"archived: every month before {before}")


@archive_app.command("restore")
def restore_command(
    month: str = typer.Argument(..., help="The archived month to attach again, YYYY-MM"),
) -> None:
    """Attach an archived month of the cases and the event log again."""
    from gis.commands import command_session
    from gis.services import partitions

    with command_session() as session:
        restored = partitions.restore_month(session, partitions.Month.parse(month))
    for part in restored:
        Console().print(f"restored {part.month}: {part.name}, {part.rows:,} rows")


@archive_app.command("list")
def archive_list_command() -> None:
    """The archived months."""
    from gis.commands import command_session
    from gis.services import partitions

    with command_session() as session:
        archived = [p for p in partitions.list_partitions(session) if p.archived]
    if not archived:
        Console().print("no archived months")
        return
    _table(archived, "archived months")
