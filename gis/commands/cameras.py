"""`gis cameras coverage`: how much of each grid the online cameras see, worst first."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from gis.commands import command_group, command_session

console = Console(stderr=True)
cameras_app = command_group("cameras", "Surveillance cameras (天眼).")


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


@cameras_app.command("coverage")
def coverage(
    town: str | None = typer.Option(None, help="Only the grids of this town (code)"),
    limit: int = typer.Option(0, min=0, help="Rows to print (0: all)"),
) -> None:
    """Print each current grid's share of area and of road length inside an online camera
    view, worst covered first (areas and lengths in metres, in each grid's UTM zone)."""
    from rich.progress import Progress

    from gis.services.cameras import coverage_by_grid

    with command_session() as session, Progress(console=console, transient=True) as bar:
        task = bar.add_task("grids", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        rows = coverage_by_grid(session, town_code=town, progress=advance)

    table = Table(title=f"camera coverage{f' of town {town}' if town else ''}, worst first")
    table.add_column("grid", no_wrap=True)
    table.add_column("name", max_width=20, overflow="ellipsis", no_wrap=True)
    table.add_column("town", no_wrap=True)
    for column in ("cameras", "area km²", "area seen", "road km", "road seen"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows[:limit] if limit else rows:
        table.add_row(
            row.grid_code,
            row.grid_name,
            row.town_code,
            str(row.cameras),
            f"{row.area_m2 / 1e6:.3f}",
            _share(row.area_share),
            f"{row.road_m / 1000:.2f}",
            _share(row.road_share),
        )
    # Codes must not be cut: when piped (no terminal width), print wide enough for them.
    out = Console() if sys.stdout.isatty() else Console(width=140)
    out.print(table)
    if rows:
        mean = sum(r.area_share for r in rows) / len(rows)
        console.print(f"{len(rows)} grids; mean area seen {mean:.1%}")
