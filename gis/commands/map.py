"""`gis map`: the command-room and village maps written to HTML files, and the Leaflet files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from gis.commands import command_group, command_session, fail
from gis.errors import GisError

if TYPE_CHECKING:
    from gis.maps.base import Basemap, TileSource
    from gis.settings import Settings

console = Console(stderr=True)
map_app = command_group("map", "Command-room maps as HTML files (Folium).")


BASEMAP_HELP = "osm, tianditu, tianditu_satellite, amap, intranet, local (default GIS_BASEMAP)"
TILES_HELP = (
    "Where the service serves basemap=local's tiles (default http://GIS_HOST:GIS_PORT/maps/tiles)"
)


def _basemap(name: str | None, settings: Settings, tiles_url: str | None) -> Basemap | TileSource:
    """The basemap of a page the CLI writes (a local archive's tiles come from the service)."""
    from gis.maps import parse_basemap
    from gis.maps.tiles import page_basemap

    tiles = tiles_url or f"http://{settings.host}:{settings.port}/maps/tiles"
    return page_basemap(parse_basemap(name) if name else None, settings, tiles_url=tiles)


def _write(html: str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    console.print(f"wrote {output} ({len(html.encode()) / 1024:,.0f} kB)")


@map_app.command("command-room")
def command_room(
    town: str = typer.Option(..., help="Town code (乡镇)"),
    output: Path = typer.Option(Path("command-room.html"), "-o", "--output", help="HTML file"),
    since: datetime | None = typer.Option(None, help="Period start (no zone = China time)"),
    until: datetime | None = typer.Option(None, help="Period end, exclusive (default now)"),
    platform: str | None = typer.Option(None, help="governance, market, enforcement, service"),
    category: str | None = typer.Option(None, help="A category code from the catalog"),
    basemap: str | None = typer.Option(None, help=BASEMAP_HELP),
    metric: str = typer.Option("load", help="Grid colour: load, closure or on_time"),
    cell_m: float = typer.Option(250.0, help="Heatmap cell size (m)"),
    step: str = typer.Option("auto", help="Time view frames: auto, day, week"),
    max_markers: int = typer.Option(2000, help="Most open (and overdue) cases drawn"),
    assets_url: str | None = typer.Option(
        None, help="Load Leaflet from here (e.g. http://host:8000/maps/assets) instead of CDNs"
    ),
    tiles_url: str | None = typer.Option(None, help=TILES_HELP),
) -> None:
    """Write the command-room map of a town (heat, grids, open cases, units, cameras)."""
    from gis.errors import ValidationError
    from gis.maps import GridMetric, build_command_room_map, render
    from gis.services.mapdata import CaseFilter, TimeStep, command_room_data
    from gis.settings import get_settings

    settings = get_settings()
    with command_session(settings) as session:
        chosen = _basemap(basemap, settings, tiles_url)
        try:
            grid_metric, time_step = GridMetric(metric), TimeStep(step)
        except ValueError as error:
            raise ValidationError(
                f"{error}; metric: load, closure, on_time; step: auto, day, week"
            ) from None
        data = command_room_data(
            session,
            town_code=town,
            since=since,
            until=until,
            cases=CaseFilter(platform, category),
            cell_m=cell_m,
            step=time_step,
            max_markers=max_markers,
            # The figures as /stats reads them (stored facts while fresh).
            stale_after=settings.stats_stale_after,
        )
        m = build_command_room_map(
            data, basemap=chosen, metric=grid_metric, tianditu_key=settings.tianditu_key
        )
        _write(render(m, assets_url=assets_url), output)


@map_app.command("grids")
def grids(
    village: str = typer.Option(..., help="Village code (行政村/社区)"),
    output: Path = typer.Option(Path("grids.html"), "-o", "--output", help="HTML file"),
    basemap: str | None = typer.Option(None, help=BASEMAP_HELP),
    assets_url: str | None = typer.Option(None, help="Load Leaflet from here instead of CDNs"),
    tiles_url: str | None = typer.Option(None, help=TILES_HELP),
) -> None:
    """Write a village's grid map with labels and members (for printing)."""
    from gis.maps import build_village_grids_map, render
    from gis.services.mapdata import village_grids_data
    from gis.settings import get_settings

    settings = get_settings()
    with command_session(settings) as session:
        chosen = _basemap(basemap, settings, tiles_url)
        data = village_grids_data(session, village_code=village)
        m = build_village_grids_map(data, basemap=chosen, tianditu_key=settings.tianditu_key)
        _write(render(m, assets_url=assets_url), output)


@map_app.command("assets")
def assets(
    force: bool = typer.Option(False, help="Fetch again even when present"),
    directory: Path | None = typer.Option(None, "--dir", help="Default: GIS_MAP_ASSETS_DIR"),
) -> None:
    """Fetch Leaflet and the plugins the maps use from the npm registry, for /maps/assets."""
    from gis.maps.assets import assets_dir_for, fetch_assets
    from gis.settings import get_settings

    target = directory or assets_dir_for(get_settings().map_assets_dir)
    try:
        fetched = fetch_assets(target, force=force, log=console.print)
    except GisError as error:
        raise fail(error) from error
    console.print(f"map assets ready in {target} ({len(fetched)} packages fetched now)")
