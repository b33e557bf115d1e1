"""`gis roads import`: load a road network (GeoJSON/GPKG/SHP, an OSM extract…) for drive times."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gis.commands import command_group

console = Console(stderr=True)
roads_app = command_group("roads", "The road network used for drive times.")


@roads_app.command("import")
def import_roads(
    file: Path = typer.Argument(..., help="GeoJSON, GeoPackage (.gpkg) or Shapefile (.shp)"),
    layer: str | None = typer.Option(None, help="Layer of a multi-layer file"),
    crs: str | None = typer.Option(
        None, help="The file's real CRS, overriding its own: EPSG:32650, GCJ-02, BD-09…"
    ),
    class_field: str | None = typer.Option(
        None, help="Field with the road class (default: road_class/highway/class/fclass…)"
    ),
    speed_field: str | None = typer.Option(
        None, help="Field with the speed in km/h (default: speed_kmh/maxspeed/speed)"
    ),
    default_speed: float | None = typer.Option(
        None, help="km/h for lines with neither a usable speed nor a known class"
    ),
    append: bool = typer.Option(False, "--append", help="Add to the network, do not replace it"),
    tolerance_m: float = typer.Option(0.5, help="Line ends closer than this share a node (m)"),
    commit: bool = typer.Option(False, "--commit", help="Write the network (default: dry run)"),
) -> None:
    """Read a road file, node it, build the routing topology and print a summary; the network
    is replaced (or, with --append, extended) only with --commit."""
    from gis.commands import command_session
    from gis.ingest.roads import import_roads as run_import

    with command_session() as session:
        report = run_import(
            session,
            file,
            layer=layer,
            crs=crs,
            class_field=class_field,
            speed_field=speed_field,
            default_speed_kmh=default_speed,
            replace=not append,
            tolerance_m=tolerance_m,
            progress=True,
        )
        if not commit:
            session.rollback()

    table = Table(title=f"roads from {file.name} ({report.source_crs})")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("features read", str(report.features))
    table.add_row("usable lines", str(report.lines))
    for reason, n in sorted(report.skipped.items()):
        table.add_row(f"skipped: {reason}", str(n))
    for source, n in sorted(report.speed_source.items()):
        table.add_row(f"speed from {source}", str(n))
    for road_class, n in report.by_class.most_common():
        table.add_row(f"segments: {road_class}", str(n))
    table.add_row("segments after noding", str(report.segments))
    table.add_row("network length (km)", f"{report.length_km:,.1f}")
    table.add_row("topology nodes", str(report.nodes))
    if not append:
        table.add_row("existing segments replaced", str(report.replaced))
    Console().print(table)
    if commit:
        console.print("[green]committed[/green]")
    else:
        console.print("dry run: nothing written; add --commit to write the network")
