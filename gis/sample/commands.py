"""`gis sample …`: load the demo county into the database, or regenerate its boundary files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="The deterministic demo county (five Quzhou towns; more synthetic ones at --scale > 1).",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _parse_end(text: str | None) -> datetime | None:
    """``--end`` as a timezone-aware datetime (a date alone means 00:00 UTC of that day)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"not an ISO date or datetime: {text!r}") from error
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@app.command("load")
def load(
    seed: int | None = typer.Option(None, help="Generator seed (default GIS_SAMPLE_SEED)."),
    scale: int = typer.Option(1, min=1, help="5×SCALE towns; >1 adds synthetic towns."),
    end: str | None = typer.Option(
        None, help="End of the year of history, ISO date or datetime (default today 00:00 UTC)."
    ),
    incidents_per_town: int | None = typer.Option(
        None, min=0, help="Incidents per town (default ~8,000 at scale 1, 2,500 above)."
    ),
    replace: bool = typer.Option(
        False, help="Empty the layer tables first (TRUNCATE … CASCADE) instead of refusing."
    ),
    progress: bool = typer.Option(True, help="Show progress bars on stderr."),
    if_empty: bool = typer.Option(
        False, help="Do nothing if the database already holds regions (for `make demo`)."
    ),
) -> None:
    """Load the demo county (regions, grids, members, units, roads, cameras, a year of cases)."""
    import sqlalchemy as sa

    from gis.commands import command_session
    from gis.sample import load_sample
    from gis.settings import get_settings

    until = _parse_end(end)
    settings = get_settings()
    with command_session(settings) as session:
        if if_empty and session.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM regions)")):
            console.print("the database already holds a county; keeping it (--replace reloads)")
            return
        summary = load_sample(
            session,
            seed=settings.sample_seed if seed is None else seed,
            scale=scale,
            end=until,
            incidents_per_town=incidents_per_town,
            progress=progress,
            replace=replace,
        )
    table = Table(title="demo county loaded")
    table.add_column("layer")
    table.add_column("rows", justify="right")
    for name, value in summary.counts().items():
        table.add_row(name, f"{value:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    Console().print(table)


@app.command("boundaries")
def boundaries(
    seed: int | None = typer.Option(None, help="Generator seed (default GIS_SAMPLE_SEED)."),
    path: Path | None = typer.Option(None, help="Output directory (default data/boundaries)."),
) -> None:
    """Regenerate data/boundaries/{towns,villages,grids}.geojson from the seed (scale 1)."""
    from gis.sample.boundaries import BOUNDARIES_DIR, write_boundaries
    from gis.settings import get_settings

    written = write_boundaries(
        path or BOUNDARIES_DIR, seed=get_settings().sample_seed if seed is None else seed
    )
    for file in written:
        console.print(f"wrote {file}")
