"""`gis stats`: the closure figures (办结率, 按期办结率…) as a table, CSV or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from gis.commands import command_group

stats_app = command_group("stats", "Closure statistics computed from the event log.")

FROM_HELP = "Cases received from, ISO 8601 (default: 1 January this year, CST)"
TO_HELP = "…until before, ISO 8601 (default: now)"
AS_OF_HELP = "Read outcomes exactly up to this time (default: the last `gis stats refresh`)"
FORMAT_HELP = "table, csv or json"
# The options every figure command takes.
FromOpt = Annotated[str | None, typer.Option("--from", help=FROM_HELP)]
ToOpt = Annotated[str | None, typer.Option("--to", help=TO_HELP)]
AsOfOpt = Annotated[str | None, typer.Option(help=AS_OF_HELP)]
TownOpt = Annotated[str | None, typer.Option(help="Only this town (code)")]
FormatOpt = Annotated[str, typer.Option("--format", help=FORMAT_HELP)]


def parse_moment(text: str | None, name: str) -> datetime | None:
    from gis.errors import ValidationError
    from gis.layers.base import LOCAL_TZ

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"--{name} {text!r} is not ISO 8601 (e.g. 2026-03-01)") from None
    # A bare date or time is read as China Standard Time, as the towns read their reports.
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def _run(
    kind: str,
    group_by: str | None,
    start: str | None,
    end: str | None,
    as_of: str | None,
    town: str | None,
    platform: str | None,
    output: str,
) -> None:
    import json

    from rich.table import Table

    from gis.commands import command_session, fail
    from gis.errors import ValidationError
    from gis.layers.base import utcnow
    from gis.services import stats
    from gis.settings import get_settings

    settings = get_settings()
    if output not in ("table", "csv", "json"):
        raise fail(ValidationError(f"--format {output!r}: use table, csv or json"))
    with command_session(settings) as session:
        now = utcnow()
        stop = parse_moment(end, "to") or now
        begin = parse_moment(start, "from") or stats.default_start(stop)
        clock = parse_moment(as_of, "as-of")
        towns = None if town is None else (town,)
        # None: the stored facts, unless they are stale (then exact as of now).
        clock = stats.choose_as_of(
            session,
            clock,
            now=now,
            stale_after=settings.stats_stale_after,
        )
        if kind == "cases":
            dims = stats.parse_group_by(group_by)
            query = stats.StatsQuery(
                begin, stop, clock, group_by=dims, town_codes=towns, platform=platform
            )
            rows = stats.case_figures(session, query)
            columns = [stats.DIMENSION_COLUMNS[d] for d in dims] + list(stats.METRICS)
        elif kind == "towns":
            rows = stats.town_summaries(
                session, stats.StatsQuery(begin, stop, clock, town_codes=towns)
            )
            columns = list(stats.TOWN_COLUMNS)
        else:
            rows = stats.errand_figures(
                session,
                start=begin,
                end=stop,
                group_by=stats.parse_errand_group_by(group_by),
                town_codes=towns,
            )
            columns = list(rows[0]) if rows else []
    out = Console()
    if output == "csv":
        typer.echo(stats.to_csv(rows, columns), nl=False)
    elif output == "json":
        typer.echo(json.dumps([{c: r.get(c) for c in columns} for r in rows], default=str))
    elif kind == "towns":
        for row in rows:
            out.print(row["summary"])
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        out.print(table)


@stats_app.command("cases")
def cases(
    group_by: str | None = typer.Option(None, help="e.g. town,month,platform"),
    start: FromOpt = None,
    end: ToOpt = None,
    as_of: AsOfOpt = None,
    town: TownOpt = None,
    platform: str | None = typer.Option(None, help="Only this platform"),
    output: FormatOpt = "table",
) -> None:
    """Received, closed, 办结率, 按期办结率, 返工率, extensions, overdue, time to close."""
    _run("cases", group_by, start, end, as_of, town, platform, output)


@stats_app.command("towns")
def towns(
    start: FromOpt = None,
    end: ToOpt = None,
    as_of: AsOfOpt = None,
    town: TownOpt = None,
    output: FormatOpt = "table",
) -> None:
    """One line per town, as the towns report it: 受理 N 件，办结率 x%."""
    _run("towns", None, start, end, as_of, town, None, output)


@stats_app.command("errands")
def errands(
    group_by: str | None = typer.Option(None, help="e.g. town,service"),
    start: FromOpt = None,
    end: ToOpt = None,
    town: TownOpt = None,
    output: FormatOpt = "table",
) -> None:
    """Errands (跑小二): requested, delivered, zero-trip share, time to delivery."""
    _run("errands", group_by, start, end, None, town, None, output)


# Exit code of `gis stats refresh` when another refresh is running and --wait is not given.
REFRESH_BUSY_EXIT = 3


@stats_app.command("refresh")
def refresh(
    full: bool = typer.Option(
        False, help="Recompute every case in sorted order (readers wait); e.g. nightly"
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        help=f"Wait for a refresh already running (default: exit {REFRESH_BUSY_EXIT})",
    ),
) -> None:
    """Bring the stored per-case facts up to now, incrementally: only the cases with events or
    reports since the last refresh (cron: every few minutes). Exit code 3: another refresh is
    running (nothing done; add --wait to queue behind it)."""
    import time

    from gis.commands import command_session
    from gis.services import stats

    started = time.perf_counter()
    try:
        with command_session() as session:
            result = stats.refresh_facts(session, full=full, wait=wait)
    except typer.Exit as stop:
        if isinstance(stop.__cause__, stats.RefreshBusyError):
            raise typer.Exit(code=REFRESH_BUSY_EXIT) from None
        raise
    Console().print(
        f"facts refreshed as of {result.refreshed_at.isoformat(timespec='seconds')} "
        f"({result.mode}: {result.cases:,} cases in {result.town_months:,} towns × months, "
        f"waited {result.waited_s:.1f} s) in {time.perf_counter() - started:.1f} s"
    )
