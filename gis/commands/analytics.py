"""`gis analytics`: hotspots (Gi*), emerging hotspots, recurring problems and the proposals
(redistricting, camera and station siting) as tables.

Hotspots and emerging hotspots run for one town or many (``--town`` repeated, ``--county``,
``--all-towns``): one job per town (``run_per_town``), in this process one after the other, or
with ``--dask``/``--scheduler`` one task per town on a Dask cluster, each task on a database
session of its own; the results come back in town order either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from gis.commands import DaskOption, SchedulerOption, command_group
from gis.commands.stats import parse_moment as moment

if TYPE_CHECKING:
    from distributed import Client

    from gis.services.hotspots import HotspotQuery, SliceStep

analytics_app = command_group(
    "analytics", "Spatial statistics: hotspots, emerging hotspots, recurring problems."
)

TOWNS_HELP = "A town (code); repeatable"
COUNTY_HELP = "…or every town of this county (code)"
ALL_TOWNS_HELP = "…or every town"
SINCE_HELP = "Cases reported from, ISO 8601 (default: 30 days before --until; CST if no zone)"
UNTIL_HELP = "…until before, ISO 8601 (default: now)"
FORMAT_HELP = "table or json"


def _in_session(
    work: Callable[[Session], tuple[list[str], list[list[Any]]]],
    output: str,
    *,
    printer: Callable[[Sequence[str], Sequence[Sequence[Any]], str], None] | None = None,
) -> None:
    """Run ``work`` in a session and print its columns and rows; a domain error exits 2."""
    from gis.commands import command_session, fail
    from gis.errors import ValidationError

    if output not in ("table", "json"):
        raise fail(ValidationError(f"--format {output!r}: use table or json"))
    with command_session() as session:
        columns, rows = work(session)
    (printer or _print)(columns, rows, output)


def _print(columns: Sequence[str], rows: Sequence[Sequence[Any]], output: str) -> None:
    if output == "json":
        typer.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    Console(width=160).print(table)


def _query(
    town: str,
    since: str | None,
    until: str | None,
    platform: str | None,
    category: str | None,
    permutations: int,
    seed: int | None,
) -> Any:
    from gis.services.hotspots import HotspotQuery

    return HotspotQuery(
        town,
        moment(since, "since"),
        moment(until, "until"),
        platform,
        category,
        permutations=permutations,
        seed=seed,
    )


@dataclass(frozen=True)
class TownOutcome:
    """One town's result of a many-town job, or why the town was skipped."""

    town: str
    result: Any = None
    skipped: str | None = None


def town_outcome(job: Callable[[Session, str], Any], session: Session, town: str) -> TownOutcome:
    """``job(session, town)``; a town whose data do not allow it (a ``ValidationError``: too
    few grids or cases) is skipped with the reason, and the other towns still run."""
    from gis.errors import ValidationError

    try:
        return TownOutcome(town, job(session, town))
    except ValidationError as error:
        return TownOutcome(town, skipped=error.detail)


def run_per_town(
    session: Session,
    towns: Sequence[str],
    job: Callable[[Session, str], Any],
    *,
    client: Client | None = None,
    progress: bool = False,
    on_done: Callable[[int], None] | None = None,
) -> list[TownOutcome]:
    """``job`` for every town, in town order: one after the other on ``session``, or with a
    Dask ``client`` one task per town, each opening its own session on ``session``'s database
    (``gis.db.in_own_session``; ``job`` must be picklable: a module function or a partial of
    one). A progress bar on stderr if ``progress``; ``BulkJobError`` if the cluster fails."""
    from tqdm import tqdm

    work = partial(town_outcome, job)
    if client is None:
        outcomes = []
        for k, town in enumerate(tqdm(towns, desc="towns", unit="town", disable=not progress)):
            outcomes.append(work(session, town))
            if on_done is not None:
                on_done(k)
        return outcomes
    from gis.db import in_own_session
    from gis.services import bulk

    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    outcomes = bulk.run_tasks(
        client,
        in_own_session,
        [(url, work, town) for town in towns],
        progress=progress,
        desc="towns on Dask",
        unit="town",
        on_done=on_done,
    )
    return outcomes


@dataclass(frozen=True)
class Towns:
    """The towns a command was asked for: ``--town`` (repeatable), ``--county`` or
    ``--all-towns``."""

    codes: list[str]
    county: str | None
    every: bool

    @property
    def many(self) -> bool:
        """Whether the answer names each row's town (all but a single ``--town``)."""
        return self.county is not None or self.every or len(self.codes) > 1

    def resolve(self, session: Session) -> list[str]:
        """The town codes, in the order given (``--town``) or in code order; ``NotFoundError``
        for an unknown town or county."""
        from gis.errors import ValidationError
        from gis.layers.regions import RegionLevel, get_region, list_regions, region_code

        if sum((bool(self.codes), self.county is not None, self.every)) != 1:
            raise ValidationError("give --town (repeatable), --county or --all-towns")
        if self.codes:
            # A real file's 9-digit town code (330803110) is our 330803110000.
            codes = list(dict.fromkeys(region_code(code, "town") for code in self.codes))
            for code in codes:
                get_region(session, code, level=RegionLevel.TOWN)
            return codes
        county = None if self.county is None else region_code(self.county, "county")
        if county is not None:
            get_region(session, county, level=RegionLevel.COUNTY)
        towns = list_regions(session, level=RegionLevel.TOWN, parent_code=county)
        if not towns:
            raise ValidationError(f"no town in {county or 'the database'}")
        return [town.code for town in towns]


def _for_towns(
    session: Session,
    towns: Towns,
    query: HotspotQuery,
    job: Callable[[Session, str], Any],
    table: Callable[[Any], tuple[list[str], list[list[Any]], str | None]],
    *,
    dask: bool,
    scheduler: str | None,
) -> tuple[list[str], list[list[Any]]]:
    """Check the towns and ``query`` (bad parameters and unknown towns fail here, before any
    town runs), run ``job`` for the towns (on Dask if asked) and join the ``table`` of each
    result (columns, rows, a summary line for stderr), with a town column when there are many."""
    from dataclasses import replace

    from gis.commands import dask_cluster
    from gis.errors import ValidationError
    from gis.services import hotspots

    codes = towns.resolve(session)
    # Every town exists (resolve); the other parameters are the same for each: checked once.
    hotspots.check_query(session, replace(query, town_code=codes[0]))
    with dask_cluster(dask, scheduler) as client:
        outcomes = run_per_town(session, codes, job, client=client, progress=len(codes) > 1)
    done = [outcome for outcome in outcomes if outcome.skipped is None]
    if not done:
        if not towns.many:
            raise ValidationError(outcomes[0].skipped or "")
        reasons = "; ".join(f"{o.town}: {o.skipped}" for o in outcomes)
        raise ValidationError(f"no town could be analysed: {reasons}")
    notes = Console(stderr=True)
    columns: list[str] = []
    rows: list[list[Any]] = []
    for outcome in outcomes:
        if outcome.skipped is not None:
            notes.print(f"town {outcome.town} skipped: {outcome.skipped}", highlight=False)
            continue
        columns, town_rows, summary = table(outcome.result)
        prefix = f"town {outcome.town}: " if towns.many else ""
        if summary is not None:
            notes.print(prefix + summary, highlight=False)
        if towns.many:
            rows.extend([outcome.town, *row] for row in town_rows)
        else:
            rows = town_rows
    return (["town", *columns] if towns.many else columns), rows


def hotspots_of_town(query: HotspotQuery, session: Session, town: str) -> Any:
    """The hotspots of ``query`` for ``town`` (a many-town job)."""
    from dataclasses import replace

    from gis.services import hotspots

    return hotspots.find_hotspots(session, replace(query, town_code=town))


@analytics_app.command("hotspots")
def hotspots_command(
    town: list[str] = typer.Option([], help=TOWNS_HELP),
    county: str | None = typer.Option(None, help=COUNTY_HELP),
    all_towns: bool = typer.Option(False, "--all-towns", help=ALL_TOWNS_HELP),
    since: str | None = typer.Option(None, help=SINCE_HELP),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    platform: str | None = typer.Option(None, help="Only this platform"),
    category: str | None = typer.Option(None, help="Only this category"),
    permutations: int = typer.Option(999, help="Random permutations for the p-values"),
    seed: int | None = typer.Option(None, help="Fix the permutations (repeatable results)"),
    significant: bool = typer.Option(False, help="Only the hot and cold grids"),
    cell_m: float | None = typer.Option(None, help="Square cells of this size (m), not grids"),
    weights: str | None = typer.Option(
        None, help="queen (default for grids) or distance (default for cells)"
    ),
    band_m: float | None = typer.Option(None, help="Distance band (m; default 1.5 cells)"),
    dask: bool = DaskOption,
    scheduler: str | None = SchedulerOption,
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """Getis-Ord Gi* hot and cold spots of a town's grids (or square cells), FDR-corrected
    (热点); for many towns one job per town, on Dask with --dask/--scheduler."""
    from dataclasses import replace

    def table(result: Any) -> tuple[list[str], list[list[Any]], str | None]:
        grids = sorted(result.grids, key=lambda g: (-g.confidence, -g.z))
        rows = [
            [g.code, g.name, g.count, g.z, g.p, g.spot.value]
            for g in grids
            if g.confidence or not significant
        ]
        counts = ", ".join(f"{k} {v}" for k, v in result.summary.items() if v)
        summary = (
            f"{result.cases} cases in {len(result.grids)} {result.unit}s ({result.weights}), "
            f"{result.period.since:%Y-%m-%d}–{result.period.until:%Y-%m-%d}: {counts}"
        )
        return [result.unit, "name", "cases", "z", "p", "class"], rows, summary

    def work(session: Session) -> tuple[list[str], list[list[Any]]]:
        query = replace(
            _query("", since, until, platform, category, permutations, seed),
            cell_m=cell_m,
            weights=weights,
            band_m=band_m,
        )
        job = partial(hotspots_of_town, query)
        towns = Towns(town, county, all_towns)
        return _for_towns(session, towns, query, job, table, dask=dask, scheduler=scheduler)

    _in_session(work, output)


def emerging_of_town(
    query: HotspotQuery, step: SliceStep, level: int, session: Session, town: str
) -> Any:
    """The emerging hotspots of ``query`` for ``town`` (a many-town job)."""
    from dataclasses import replace

    from gis.services import hotspots

    return hotspots.find_emerging(session, replace(query, town_code=town), step=step, level=level)


@analytics_app.command("emerging")
def emerging_command(
    town: list[str] = typer.Option([], help=TOWNS_HELP),
    county: str | None = typer.Option(None, help=COUNTY_HELP),
    all_towns: bool = typer.Option(False, "--all-towns", help=ALL_TOWNS_HELP),
    since: str | None = typer.Option(None, help=SINCE_HELP),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    step: str = typer.Option("week", help="week or month"),
    level: int = typer.Option(90, help="90, 95 or 99: when a slice counts as hot/cold"),
    platform: str | None = typer.Option(None, help="Only this platform"),
    category: str | None = typer.Option(None, help="Only this category"),
    permutations: int = typer.Option(999, help="Random permutations for the p-values"),
    seed: int | None = typer.Option(None, help="Fix the permutations (repeatable results)"),
    dask: bool = DaskOption,
    scheduler: str | None = SchedulerOption,
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """Emerging hotspots: Gi* per week or month and a Mann–Kendall trend per grid; for many
    towns one job per town, on Dask with --dask/--scheduler."""
    from gis.errors import ValidationError
    from gis.services import hotspots

    def table(result: Any) -> tuple[list[str], list[list[Any]], str | None]:
        rows = [
            [g.code, g.name, g.category.value, sum(g.counts), g.trend_tau, g.trend_p]
            for g in sorted(result.grids, key=lambda g: (g.category.value, g.code))
        ]
        return ["grid", "name", "category", "cases", "trend_tau", "trend_p"], rows, None

    def work(session: Session) -> tuple[list[str], list[list[Any]]]:
        try:
            slice_step = hotspots.SliceStep(step)
        except ValueError:
            raise ValidationError(f"--step {step!r}: use week or month") from None
        query = _query("", since, until, platform, category, permutations, seed)
        job = partial(emerging_of_town, query, slice_step, level)
        towns = Towns(town, county, all_towns)
        return _for_towns(session, towns, query, job, table, dask=dask, scheduler=scheduler)

    _in_session(work, output)


@analytics_app.command("recurring")
def recurring_command(
    town: str | None = typer.Option(None, help="Only this town (code)"),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    weeks: int = typer.Option(8, help="Look back this many weeks"),
    radius_m: float = typer.Option(100.0, help="The same place: within this many metres"),
    min_cases: int = typer.Option(3, help="At least this many closed cases"),
    category: str | None = typer.Option(None, help="Only this category"),
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """Recurring problems (治标不治本): one category, one place, closed again and again."""
    from gis.services import recurring

    def work(session: Session) -> tuple[list[str], list[list[Any]]]:
        query = recurring.RecurringQuery(
            until=moment(until, "until"),
            weeks=weeks,
            radius_m=radius_m,
            min_cases=min_cases,
            town_codes=None if town is None else (town,),
            category=category,
        )
        result = recurring.find_recurring(session, query)
        rows = [
            [
                g.category_name,
                g.town_code,
                ",".join(g.grid_codes),
                g.cases,
                " ".join(map(str, g.case_ids)),
                f"{g.first_reported_at:%Y-%m-%d}–{g.last_reported_at:%Y-%m-%d}",
            ]
            for g in result.groups
        ]
        return ["category", "town", "grids", "cases", "case ids", "reported"], rows

    _in_session(work, output)


def _progress(fraction: float, message: str) -> None:
    Console(stderr=True).print(f"[{fraction:4.0%}] {message}", highlight=False)


@analytics_app.command("redistrict")
def redistrict_command(
    village: str | None = typer.Option(None, help="The village (code) to redraw"),
    town: str | None = typer.Option(None, help="…or every village of this town"),
    grids: int | None = typer.Option(None, help="Grids per village (default: as many as now)"),
    weight: list[str] = typer.Option(
        [], help="column=weight, repeatable: households, population, incidents_12m (default 1)"
    ),
    cell_m: float | None = typer.Option(None, help="Building-block cell size, m (default auto)"),
    method: str = typer.Option("balance", help="balance, azp, maxp or skater"),
    seed: int = typer.Option(0, help="Seed of the random starts"),
    actor: str = typer.Option("cli", help="Recorded as the plan's author"),
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """Suggest balanced contiguous grids and store them as a DRAFT plan (apply it with the
    plan tools after review)."""
    from gis.errors import ValidationError
    from gis.services import redistricting

    def work(session: Session) -> tuple[list[str], list[list[Any]]]:
        if (village is None) == (town is None):
            raise ValidationError("give exactly one of --village or --town")
        weights: dict[str, float] = {}
        for item in weight:
            name, sep, value = item.partition("=")
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise ValidationError(f"--weight {item!r}: use column=number") from None
            if not sep:
                raise ValidationError(f"--weight {item!r}: use column=number")
        query = redistricting.RedistrictQuery.from_params(
            {
                "level": "village" if village else "town",
                "code": village or town,
                "grids": grids,
                "weights": weights or None,
                "cell_m": cell_m,
                "method": method,
                "seed": seed,
            }
        )
        suggestion = redistricting.suggest(session, query, actor=actor, progress=_progress)
        Console(stderr=True).print(
            f"draft plan {suggestion.plan_id} ({'valid' if suggestion.valid else 'INVALID'})"
        )
        rows = [
            [
                v.village_code,
                v.method.value,
                v.blocks,
                len(v.grids),
                v.before["cv"],
                v.after["cv"],
                suggestion.plan_id,
            ]
            for v in suggestion.villages
        ]
        return ["village", "method", "blocks", "grids", "cv_now", "cv_suggested", "plan"], rows

    _in_session(work, output)


def _csv_or(work: Callable[[Session], tuple[list[str], list[list[Any]]]], output: str) -> None:
    """Print ``work``'s table as CSV (``--format csv``) or as ``_in_session`` prints it."""
    if output != "csv":
        _in_session(work, output)
        return
    import csv
    import sys

    def as_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], _: str) -> None:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)

    _in_session(work, "table", printer=as_csv)


def _when(since: str | None, until: str | None, time_limit_s: float) -> dict[str, Any]:
    """A siting command's period and time limit, as its query's keyword arguments."""
    return {
        "since": moment(since, "since"),
        "until": moment(until, "until"),
        "time_limit_s": time_limit_s,
    }


def _site(
    answer: Callable[[Session], Any], headline: Callable[[dict[str, Any]], str], geojson: str | None
) -> Callable[[Session], tuple[list[str], list[list[Any]]]]:
    """The work of a siting command: solve (``answer``: the siting, with ``result()``), print
    the summary's ``headline`` on stderr, write the sites as GeoJSON when asked, and give the
    table of the sites."""

    def work(session: Session) -> tuple[list[str], list[list[Any]]]:
        result = answer(session).result()
        Console(stderr=True).print(headline(result["summary"]), highlight=False)
        if geojson:
            layer = {"type": "FeatureCollection", "features": result["features"]}
            with open(geojson, "w", encoding="utf-8") as out:
                json.dump(layer, out, ensure_ascii=False)
        return result["table"]["columns"], result["table"]["rows"]

    return work


@analytics_app.command("camera-siting")
def camera_siting_command(
    town: str = typer.Option(..., help="The town (code)"),
    k: int = typer.Option(..., help="New cameras"),
    range_m: float = typer.Option(100.0, help="How far a new camera sees (m)"),
    spacing_m: float = typer.Option(50.0, help="Candidate sites every … m of road"),
    since: str | None = typer.Option(None, help="Cases from (default: a year before --until)"),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    time_limit_s: float = typer.Option(50.0, help="Solver time limit (s)"),
    geojson: str | None = typer.Option(None, help="Also write the sites as GeoJSON here"),
    output: str = typer.Option("table", "--format", help=FORMAT_HELP + " (csv too)"),
) -> None:
    """Where k new cameras would see the most cases today's cameras miss (MCLP, HiGHS)."""
    from gis.services import siting

    def answer(session: Session) -> siting.CameraSiting:
        query = siting.CameraSitingQuery(
            town, k, range_m, spacing_m, **_when(since, until, time_limit_s)
        )
        return siting.site_cameras(session, query, progress=_progress)

    def headline(summary: dict[str, Any]) -> str:
        return (
            f"{summary['added_by_new_cameras']} more cases seen (of {summary['cases']}; "
            f"{summary['seen_by_current_cameras']} seen now); optimality gap "
            f"{summary['optimality_gap']:.2%}, {summary['solver_status']}"
        )

    _csv_or(_site(answer, headline, geojson), output)


@analytics_app.command("station-siting")
def station_siting_command(
    town: str = typer.Option(..., help="The town (code)"),
    platform: str = typer.Option(..., help="The platform whose units are sited"),
    k: int = typer.Option(..., help="Units to place"),
    since: str | None = typer.Option(None, help="Cases from (default: a year before --until)"),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
    max_candidates: int = typer.Option(300, help="Road nodes kept as candidate sites"),
    time_limit_s: float = typer.Option(50.0, help="Solver time limit (s)"),
    geojson: str | None = typer.Option(None, help="Also write the sites as GeoJSON here"),
    output: str = typer.Option("table", "--format", help=FORMAT_HELP + " (csv too)"),
) -> None:
    """Where k units of a platform should stand for the shortest drives to its cases of the
    year (p-median by drive time on the road network, HiGHS)."""
    from gis.services import stations

    def answer(session: Session) -> stations.StationSiting:
        query = stations.StationSitingQuery(
            town, platform, k, max_candidates, **_when(since, until, time_limit_s)
        )
        return stations.site_stations(session, query, progress=_progress)

    def headline(summary: dict[str, Any]) -> str:
        before, after = summary["before"], summary["after"]
        return (
            f"{summary['cases']} cases; drive time mean {before['mean_s']} s → "
            f"{after['mean_s']} s, 90th percentile {before['p90_s']} s → {after['p90_s']} s "
            f"({len(summary['current_units'])} current units → {k}); optimality gap "
            f"{summary['optimality_gap']:.2%}, {summary['solver_status']}"
        )

    _csv_or(_site(answer, headline, geojson), output)
