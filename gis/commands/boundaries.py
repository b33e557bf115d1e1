"""`gis boundaries import|export` and `gis reassign`: boundary files and bulk re-assignment."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

from gis.commands import (
    DaskOption,
    SchedulerOption,
    command_group,
    command_session,
    dask_cluster,
    dry_run,
    outcome_table,
    sample,
)

console = Console(stderr=True)
boundaries_app = command_group(
    "boundaries",
    "Import and export town, village and grid boundaries (GeoJSON, Shapefile, GeoPackage).",
)


def register(app: typer.Typer) -> None:
    """Mount `gis boundaries` and `gis reassign` (outside a group)."""
    app.add_typer(boundaries_app)
    app.command("reassign")(reassign)


@boundaries_app.command("import")
def import_boundaries(
    file: Path = typer.Argument(..., help="GeoJSON, Shapefile (.shp) or GeoPackage (.gpkg)"),
    level: str = typer.Option(..., help="county, town, village or grid"),
    parent: str | None = typer.Option(
        None, help="Parent code for every feature (default: --parent-field, else most overlap)"
    ),
    crs: str | None = typer.Option(
        None,
        help="The file's real CRS, overriding its .prj: EPSG:4549 (CGCS2000 GK CM 120E), "
        "EPSG:4490, GCJ-02 (Amap/DataV files), BD-09…",
    ),
    code_field: str | None = typer.Option(None, help="Field with the code (default: code/adcode)"),
    name_field: str | None = typer.Option(None, help="Field holding the name (default: name)"),
    parent_field: str | None = typer.Option(None, help="Field holding each feature's parent code"),
    households_field: str | None = typer.Option(None, help="Field with households (grids)"),
    population_field: str | None = typer.Option(None, help="Field with residents"),
    layer: str | None = typer.Option(None, help="Layer of a multi-layer GeoPackage"),
    encoding: str | None = typer.Option(None, help="Text encoding of a Shapefile (UTF-8, GBK…)"),
    actor: str = typer.Option("import", help="Recorded as the author of new grid versions"),
    show: int = typer.Option(20, help="Rows listed per outcome"),
    dask: bool = DaskOption,
    scheduler: str | None = SchedulerOption,
    commit: bool = typer.Option(False, "--commit", help="Write the changes (default: dry run)"),
) -> None:
    """Compare a boundary file with the database and print what would be added, changed and
    retired; write it only with --commit (grids get new dated versions; open cases follow).

    With --dask/--scheduler the file is read, converted and checked in partitions on a Dask
    cluster (whose workers must see the file at the same path); the comparison and the write
    stay in PostgreSQL, in one transaction, as without."""
    from gis.ingest.boundaries import Level, commit_import, plan_import, read_boundaries
    from gis.settings import get_settings

    try:
        chosen = Level(level)
    except ValueError:
        raise typer.BadParameter("level must be county, town, village or grid") from None
    settings = get_settings()
    with command_session(settings) as session:
        with dask_cluster(dask, scheduler, settings) as client:
            read = read_boundaries(
                file,
                crs=crs,
                code_field=code_field,
                name_field=name_field,
                parent_field=parent_field,
                households_field=households_field,
                population_field=population_field,
                layer=layer,
                encoding=encoding,
                progress=True,
                client=client,
            )
        console.print(
            f"read {len(read.features) + len(read.rejected)} features from {file} "
            f"(CRS: {read.source_crs}; the file declares {read.declared_crs or 'none'})"
        )
        plan = plan_import(session, read, level=chosen, parent=parent)
        _print_plan(read, plan, show)
        if dry_run(session, commit):
            return
        written = commit_import(
            session,
            plan,
            actor=actor,
            lock_timeout_s=settings.plan_lock_timeout_s,
            snap_m=settings.snap_meters,
        )
    console.print(f"[green]committed[/green]: {written}")


def _print_plan(read: object, plan: object, show: int) -> None:
    from gis.ingest.boundaries import ImportPlan, ReadResult

    assert isinstance(read, ReadResult) and isinstance(plan, ImportPlan)
    table = outcome_table(
        f"{plan.level.value} import",
        "examples",
        added=[f.code for f in plan.added],
        changed=[(f.code, what) for f, what in plan.changed],
        unchanged=len(plan.unchanged),
        show=show,
    )
    retire_note = (
        "retired" if plan.level.value == "grid" else "missing (kept: regions are not versioned)"
    )
    table.add_row(retire_note, str(len(plan.retired)), sample([c for c, _ in plan.retired], show))
    table.add_row("repaired", str(len(read.repaired)), "")
    table.add_row("rejected", str(len(read.rejected) + len(plan.unplaced)), "")
    console.print(table)
    for problem in [*read.repaired, *read.rejected, *plan.unplaced][: show * 3]:
        console.print(f"  feature {problem.index} ({problem.code or 'no code'}): {problem.reason}")


@boundaries_app.command("export")
def export_boundaries(
    level: str = typer.Option(..., help="county, town, village or grid"),
    output: Path = typer.Option(..., "-o", "--output", help="File to write"),
    fmt: str = typer.Option("geojson", "--format", help="geojson, gpkg or shp"),
    parent: str | None = typer.Option(None, help="Only the children of this code"),
    at: datetime | None = typer.Option(None, help="Grids in force at this instant (default now)"),
) -> None:
    """Write boundaries (WGS84) to a file; grids as of --at."""
    from gis.ingest.boundaries import Level, export_frame, write_frame

    try:
        chosen = Level(level)
    except ValueError:
        raise typer.BadParameter("level must be county, town, village or grid") from None
    with command_session() as session:
        frame = export_frame(session, chosen, parent=parent, at=at)
        write_frame(frame, output, fmt)
    console.print(f"wrote {len(frame)} {chosen.value} boundaries to {output}")


def reassign(
    town: str | None = typer.Option(None, help="Only cases of this town (default: all)"),
    historic_table: str | None = typer.Option(
        None,
        help="Also compute the grid of every closed case under today's grids, into this new "
        "table (analysis only: historic cases keep their grid)",
    ),
    actor: str = typer.Option("reassign", help="Recorded on each case event"),
    dask: bool = DaskOption,
    scheduler: str | None = SchedulerOption,
    commit: bool = typer.Option(False, "--commit", help="Write the changes (default: dry run)"),
) -> None:
    """Re-assign open cases to the grids in force now (set-based), e.g. after a county reload.

    The join runs in PostGIS, or with --dask/--scheduler on a Dask cluster (county-wide only);
    the write-back is PostgreSQL's either way, through a staging table, in one transaction."""
    import time

    from gis.layers.regions import RegionLevel, get_region
    from gis.services import reassign as service
    from gis.settings import get_settings

    settings = get_settings()
    on_dask = dask or scheduler is not None
    if on_dask and (town is not None or historic_table is not None):
        raise typer.BadParameter("--dask joins every open case: drop --town and --historic-table")
    if on_dask:
        _reassign_on_dask(scheduler, actor=actor, commit=commit)
        return
    with command_session(settings) as session:
        scope = service.CaseScope()
        if town is not None:
            from geoalchemy2.shape import to_shape
            from shapely import to_wkb

            region = get_region(session, town, level=RegionLevel.TOWN)
            scope = service.CaseScope(area_wkb=to_wkb(to_shape(region.geom)))
        started = time.perf_counter()
        with console.status("joining cases to grids…"):
            service.compute_assignments(
                session,
                scope=scope,
                include_historic=historic_table is not None,
                snap_m=settings.snap_meters,
            )
            if historic_table is not None:
                kept = service.keep_analysis_table(session, historic_table)
                console.print(f"kept {kept:,} rows in table {historic_table}")
            result = service.write_back(
                session, actor=actor, reason="bulk re-assignment to the current grids"
            )
        _print_reassigned(result, time.perf_counter() - started)
        if dry_run(session, commit, "rolled back"):
            return
    console.print("[green]committed[/green]")


def _print_reassigned(result: object, seconds: float) -> None:
    from gis.services.reassign import ReassignResult

    assert isinstance(result, ReassignResult)
    console.print(
        f"{result.considered:,} open cases: {result.moved:,} change grid, "
        f"{result.version_only:,} only the grid version (kept), {result.snapped:,} snapped, "
        f"{result.unassigned:,} outside every grid; historic cases that would change: "
        f"{result.historic_would_move:,} ({seconds:.1f} s)"
    )


def _reassign_on_dask(scheduler: str | None, *, actor: str, commit: bool) -> None:
    """The county-wide re-assignment with the join on Dask (progress bar on stderr)."""
    import time

    from gis.services import bulk
    from gis.services import reassign as service
    from gis.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    with command_session(settings) as session, dask_cluster(True, scheduler, settings) as client:
        assert client is not None
        bulk.stage_on_dask(session, client, snap_m=settings.snap_meters)
        result = service.write_back(
            session,
            actor=actor,
            reason="bulk re-assignment to the current grids",
            table=service.STAGE_PREFIX,
        )
        _print_reassigned(result, time.perf_counter() - started)
        if dry_run(session, commit, "rolled back"):
            return
    console.print("[green]committed[/green]")
