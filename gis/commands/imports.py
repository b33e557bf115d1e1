"""`gis import units|cameras|members|template` and `gis export units|cameras|members`: a town's
own ledgers (spreadsheets, CSV, point layers) in and out, dry run unless --commit."""

from __future__ import annotations

import getpass
import hashlib
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gis.commands import command_group, dry_run, fail, outcome_table, sample
from gis.errors import GisError

console = Console(stderr=True)
import_app = command_group(
    "import",
    "Import units, cameras and grid members from a town's ledgers (dry run unless --commit).",
)
export_app = command_group(
    "export", "Export units, cameras and grid members in the import's column layout."
)


FileArg = typer.Argument(..., help="CSV (UTF-8/GBK), .xlsx, GeoPackage, GeoJSON or Shapefile")
CrsOpt = typer.Option(
    None,
    help="The coordinates' CRS when the file has no 坐标系/crs column: WGS84 (default), GCJ-02 "
    "(Amap, phone maps), BD-09, CGCS2000, CGCS2000-GK (eastings with the zone), EPSG:4549…",
)
SheetOpt = typer.Option(None, help="Sheet of an .xlsx (default: the first) or layer of a GPKG")
EncodingOpt = typer.Option(None, help="Text encoding of a CSV (default: detect UTF-8 or GBK)")
CommitOpt = typer.Option(False, "--commit", help="Write the changes (default: dry run)")
RetireOpt = typer.Option(
    False, "--retire-missing", help="Retire what the file no longer lists (off duty / offline)"
)
ShowOpt = typer.Option(20, help="Codes listed per outcome")


def _run(
    kind: str,
    file: Path,
    *,
    crs: str | None,
    sheet: str | None,
    encoding: str | None,
    commit: bool,
    retire_missing: bool,
    with_users: bool,
    show: int,
) -> None:
    from gis.commands import command_engine
    from gis.db import session_scope
    from gis.services.ledger_tables import read_table_file
    from gis.services.ledgers import commit_import, parse_kind, plan_import
    from gis.settings import get_settings

    settings = get_settings()
    with command_engine(settings) as engine:
        chosen = parse_kind(kind)
        table = read_table_file(
            file, encoding=encoding, sheet=sheet, max_bytes=settings.import_max_bytes
        )
        console.print(f"read {len(table.rows)} rows from {file} ({table.source})")
        with session_scope(engine) as session:
            with console.status(f"checking {len(table.rows)} rows against the database"):
                plan = plan_import(session, chosen, table, crs=crs, retire_missing=retire_missing)
            print_plan(plan, show)
            if plan.errors:
                session.rollback()
                console.print(f"[red]{len(plan.errors)} error(s)[/red]: nothing written")
                raise typer.Exit(code=1)
            if dry_run(session, commit):
                return
            with console.status(f"writing {len(plan.added) + len(plan.changed)} {chosen.value}"):
                result = commit_import(
                    session,
                    plan,
                    actor=getpass.getuser(),
                    filename=file.name,
                    sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
                    with_users=with_users,
                )
    console.print(
        "[green]committed[/green]: " + ", ".join(f"{n} {k}" for k, n in result.summary.items())
    )
    if result.tokens:
        console.print("users and tokens (shown once: only their hashes are kept):")
        for name, token in result.tokens:
            print(f"{name}\t{token}")


def print_plan(plan: object, show: int) -> None:
    """The outcome table and every row-level error of an import plan."""
    from gis.services.ledgers import ImportPlan

    assert isinstance(plan, ImportPlan)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    table = outcome_table(
        f"{plan.kind.value} from {plan.source}",
        "codes",
        added=[r.key for r in plan.added],
        changed=[(r.key, what) for r, what in plan.changed],
        unchanged=len(plan.unchanged),
        show=show,
    )
    retired = "retired" if plan.retire_missing else "not in file (kept; --retire-missing)"
    table.add_row(retired, str(len(plan.retired)), sample(plan.retired, show))
    out.print(table)
    for note in plan.notes:
        console.print(f"note: {note}")
    if plan.errors:
        errors = Table(title=f"{len(plan.errors)} error(s)")
        for column in ("row", "column", "value", "reason"):
            errors.add_column(column, overflow="fold")
        for error in plan.errors:
            errors.add_row(
                "file" if error.row is None else str(error.row),
                error.column or "",
                error.value or "",
                error.reason,
            )
        out.print(errors)


def _ledger_command(kind: str, summary: str) -> None:
    """Mount `gis import <kind>` for a ledger of positions (units, cameras)."""

    def command(
        file: Path = FileArg,
        crs: str | None = CrsOpt,
        sheet: str | None = SheetOpt,
        encoding: str | None = EncodingOpt,
        commit: bool = CommitOpt,
        retire_missing: bool = RetireOpt,
        show: int = ShowOpt,
    ) -> None:
        _run(
            kind,
            file,
            crs=crs,
            sheet=sheet,
            encoding=encoding,
            commit=commit,
            retire_missing=retire_missing,
            with_users=False,
            show=show,
        )

    command.__doc__ = summary
    import_app.command(kind)(command)


_ledger_command(
    "units",
    "Responder units (派出所, 市场监管所…): code, name, type, position; jurisdiction by town.",
)
_ledger_command(
    "cameras", "A camera ledger (天眼台账): code, name, type, bearing, fov, range, position."
)


@import_app.command("members")
def import_members(
    file: Path = FileArg,
    sheet: str | None = SheetOpt,
    encoding: str | None = EncodingOpt,
    commit: bool = CommitOpt,
    retire_missing: bool = RetireOpt,
    with_users: bool = typer.Option(
        False, "--with-users", help="Make a grid_member user and token for each new member"
    ),
    show: int = ShowOpt,
) -> None:
    """Grid members (网格员): name, phone, grid codes or names (with village)."""
    _run(
        "members",
        file,
        crs=None,
        sheet=sheet,
        encoding=encoding,
        commit=commit,
        retire_missing=retire_missing,
        with_users=with_users,
        show=show,
    )


@import_app.command("template")
def template(
    kind: str = typer.Argument(..., help="units, cameras or members"),
    out: Path | None = typer.Option(None, help="Where to write (default: <kind>-template.xlsx)"),
) -> None:
    """Write an .xlsx with the kind's headers, one example row and a notes sheet."""
    from gis.services.ledger_tables import write_table
    from gis.services.ledgers import COLUMNS, EXAMPLES, NOTES, parse_kind

    try:
        chosen = parse_kind(kind)
        path = out or Path(f"{chosen.value}-template.xlsx")
        write_table([EXAMPLES[chosen]], COLUMNS[chosen], path, notes=NOTES, sheet=chosen.value)
    except GisError as error:
        raise fail(error) from error
    console.print(f"wrote {path}")


def _export(kind: str, out: Path) -> None:
    from gis.commands import command_session
    from gis.services.ledger_tables import write_table
    from gis.services.ledgers import COLUMNS, export_rows, parse_kind

    with command_session() as session:
        chosen = parse_kind(kind)
        rows = export_rows(session, chosen)
        write_table(rows, COLUMNS[chosen], out, sheet=chosen.value)
    console.print(f"wrote {len(rows)} {chosen.value} to {out}")


OutArg = typer.Argument(..., help="File to write: .xlsx, .csv or .gpkg")


@export_app.command("units")
def export_units(out: Path = OutArg) -> None:
    """Responder units in the import's layout."""
    _export("units", out)


@export_app.command("cameras")
def export_cameras(out: Path = OutArg) -> None:
    """Cameras in the import's layout."""
    _export("cameras", out)


@export_app.command("members")
def export_members(out: Path = OutArg) -> None:
    """Active grid members in the import's layout."""
    _export("members", out)
