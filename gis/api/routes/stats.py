"""Closure statistics (办结率, 按期办结率, 返工率…) as JSON or CSV, computed from the event log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gis.api.deps import PlatformDep, SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import WINDOW, domain_errors
from gis.api.hot import fast_path
from gis.api.openapi import comma_separated
from gis.api.pages import Page, PageCache
from gis.api.schemas.stats import StatsTable
from gis.api.schemas.types import Time
from gis.api.security import WATCH, Watcher, allow, authorize
from gis.errors import NotFoundError
from gis.layers.base import utcnow
from gis.layers.users import Role
from gis.services import stats
from gis.services.access import Principal

router = APIRouter(prefix="/stats", tags=["statistics"], dependencies=[StaleReadOk])

Format = Literal["json", "csv"]
_CSV = "text/csv"


class Window:
    """The cohort window, the outcome clock and the reply format of a statistics request."""

    def __init__(
        self,
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        start: Annotated[
            Time | None,
            Query(alias="from", description="Cases received from (default: 1 January, CST)"),
        ] = None,
        end: Annotated[
            Time | None, Query(alias="to", description="…until before (default: now)")
        ] = None,
        as_of: Annotated[
            Time | None,
            Query(
                description="Read outcomes exactly from the events up to this time; without it, "
                "from the stored facts as of their last refresh (fast; POST /stats/refresh), or "
                "exactly as of now when those are older than GIS_STATS_STALE_AFTER_S"
            ),
        ] = None,
        format: Annotated[
            Format | None, Query(description="json (default) or csv; or send Accept: text/csv")
        ] = None,
    ) -> None:
        now = utcnow()
        self.end = end or now
        self.start = start or stats.default_start(self.end)
        self._as_of = as_of
        self._now = now
        self._session = session
        self._stale_after = settings.stats_stale_after
        self.format = _reply_format(request, format)

    @cached_property
    def as_of(self) -> datetime | None:
        """What the outcomes are read as of (``stats.choose_as_of``); asked of the database
        only when the reply is built, not when it comes from the cache."""
        return stats.choose_as_of(
            self._session, self._as_of, now=self._now, stale_after=self._stale_after
        )


WindowDep = Annotated[Window, Depends(Window)]


def towns_in_scope(principal: Principal | None, town: str | None) -> tuple[str, ...] | None:
    """The towns a request may count: the asked one, within the caller's jurisdiction."""
    if principal is None or principal.town_codes is None:
        return None if town is None else (town,)
    if town is None:
        return tuple(sorted(principal.town_codes))
    if town not in principal.town_codes:
        raise NotFoundError(f"no town {town!r} in your jurisdiction")
    return (town,)


def _reply(
    window: Window,
    as_of: datetime,
    group_by: Sequence[str],
    columns: Sequence[str],
    rows: list[dict[str, Any]],
) -> StatsTable | Response:
    if window.format == "csv":
        # A byte-order mark so that spreadsheet programs read the Chinese text as UTF-8.
        body = "\ufeff" + stats.to_csv(rows, columns)
        return Response(body, media_type="text/csv; charset=utf-8")
    return StatsTable(
        start=window.start,
        end=window.end,
        as_of=as_of,
        group_by=list(group_by),
        columns=list(columns),
        rows=[{key: row.get(key) for key in columns} for row in rows],
    )


def _reply_format(request: Request, format: str | None) -> str:
    """The reply's format: ``?format=``, else CSV when the caller accepts it, else JSON."""
    return format or ("csv" if _CSV in request.headers.get("accept", "") else "json")


def _cache_key(request: Request, towns: tuple[str, ...] | None, format: str) -> tuple[object, ...]:
    """What a statistics reply is kept by: the path, the parameters as given, the towns in the
    caller's scope (access is checked first) and the format."""
    return (request.url.path, tuple(sorted(request.query_params.multi_items())), towns, format)


def _cached_response(page: Page, format: str) -> Response:
    if format == "csv":
        return Response(page.html, media_type="text/csv; charset=utf-8")
    return Response(page.html, media_type="application/json")


def _cached(
    request: Request,
    window: Window,
    towns: tuple[str, ...] | None,
    build: Callable[[], StatsTable | Response],
) -> Response:
    """The reply of this request as built at most ``GIS_STATS_CACHE_S`` ago for the same
    parameters and the same towns in scope (access is checked before; the towns are part of the
    key). Figures come from the stored facts, refreshed every few minutes, so a few seconds of
    caching changes nothing a reader can see but the work: under load, one build per period
    instead of one per request (bench/load)."""
    cache: PageCache = request.app.state.stats_cache

    def render() -> Page:
        reply = build()
        if isinstance(reply, Response):
            return Page(bytes(reply.body).decode())
        return Page(reply.model_dump_json())

    page = cache.get_or_build(_cache_key(request, towns, window.format), render)
    return _cached_response(page, window.format)


_WATCHERS = frozenset(WATCH)


async def _fast_cached(request: Request) -> Response | None:
    """A reply still in the cache, answered before the router (``gis.api.hot``) in the event
    loop: no worker thread, no session, no parameter analysis (the same parameters built it, so
    they were valid). Anything else — a miss, a town outside the caller's scope — is declined
    to the route, which answers as usual."""
    principal = await authorize(request, _WATCHERS)
    params = request.query_params
    format = params.get("format")
    if format not in (None, "json", "csv"):
        return None
    try:
        towns = towns_in_scope(principal, params.get("town"))
    except NotFoundError:
        return None
    format = _reply_format(request, format)
    cache: PageCache = request.app.state.stats_cache
    page = cache.peek(_cache_key(request, towns, format))
    return None if page is None else _cached_response(page, format)


def _group_by(dimensions: Sequence[str], example: str) -> Any:
    """The ``group_by`` query parameter over ``dimensions``."""
    return Query(
        max_length=200,
        description="Comma-separated, each once: " + ", ".join(dimensions),
        examples=[example],
        json_schema_extra=comma_separated(list(dimensions)),
    )


TownDep = Annotated[str | None, Query(max_length=12, description="Only this town")]
CaseGroupBy = Annotated[str | None, _group_by(list(stats.DIMENSIONS), "town,month,platform")]
ErrandGroupBy = Annotated[str | None, _group_by(list(stats.ERRAND_DIMENSIONS), "town,service")]

# CSV besides JSON, and the 422 of an empty window.
_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {_CSV: {}}, "description": "JSON, or CSV with ?format=csv"},
    **domain_errors(WINDOW),
}


@router.get("/cases", response_model=StatsTable, responses=_CSV_RESPONSE)
@fast_path(_fast_cached)
def case_stats(
    request: Request,
    session: SessionDep,
    window: WindowDep,
    principal: Watcher,
    platform: PlatformDep,
    group_by: CaseGroupBy = None,
    town: TownDep = None,
    category: Annotated[str | None, Query(max_length=50, description="Only this category")] = None,
) -> StatsTable | Response:
    """Received, closed, 办结率, 按期办结率, 返工率, extensions, overdue, time to close."""
    dims = stats.parse_group_by(group_by)
    towns = towns_in_scope(principal, town)

    def build() -> StatsTable | Response:
        query = stats.StatsQuery(
            window.start,
            window.end,
            window.as_of,
            group_by=dims,
            town_codes=towns,
            platform=platform,
            category=category,
        )
        as_of = stats.figures_as_of(session, query)
        rows = stats.case_figures(session, query)
        columns = [stats.DIMENSION_COLUMNS[d] for d in dims] + list(stats.METRICS)
        return _reply(window, as_of, dims, columns, rows)

    return _cached(request, window, towns, build)


def _as_of(session: Session, window: Window) -> datetime:
    return stats.figures_as_of(session, stats.StatsQuery(window.start, window.end, window.as_of))


@dataclass
class TownScope:
    """A per-town or per-grid statistics request: its window and the towns in the caller's
    scope (the asked one, within the caller's jurisdiction)."""

    request: Request
    session: SessionDep
    window: WindowDep
    principal: Watcher
    town: TownDep = None

    def __post_init__(self) -> None:
        self.towns = towns_in_scope(self.principal, self.town)

    def table(
        self,
        figures: Callable[[Session, stats.StatsQuery], list[dict[str, Any]]],
        group_by: str,
        columns: Sequence[str],
    ) -> StatsTable | Response:
        """One row per town or grid (``figures``) of the towns in scope, cached."""
        session, window = self.session, self.window

        def build() -> StatsTable | Response:
            query = stats.StatsQuery(window.start, window.end, window.as_of, town_codes=self.towns)
            rows = figures(session, query)
            return _reply(window, _as_of(session, window), [group_by], columns, rows)

        return _cached(self.request, window, self.towns, build)


TownScopeDep = Annotated[TownScope, Depends(TownScope)]


@router.get("/towns", response_model=StatsTable, responses=_CSV_RESPONSE)
@fast_path(_fast_cached)
def town_stats(scope: TownScopeDep) -> StatsTable | Response:
    """Per-town figures with the sentence towns publish (受理 N 件，办结率 x%)."""
    return scope.table(stats.town_summaries, "town", stats.TOWN_COLUMNS)


@router.get("/grids", response_model=StatsTable, responses=_CSV_RESPONSE)
@fast_path(_fast_cached)
def grid_stats(scope: TownScopeDep) -> StatsTable | Response:
    """Per-grid figures for the command-room choropleth (closure and on-time rates)."""
    return scope.table(stats.grid_figures, "grid", stats.GRID_COLUMNS)


@router.get("/errands", response_model=StatsTable, responses=_CSV_RESPONSE)
def errand_stats(
    session: SessionDep,
    window: WindowDep,
    principal: Watcher,
    group_by: ErrandGroupBy = None,
    town: TownDep = None,
) -> StatsTable | Response:
    """Errands (跑小二): requested, delivered, zero-trip share (零跑腿), time to delivery."""
    dims = stats.parse_errand_group_by(group_by)
    rows = stats.errand_figures(
        session,
        start=window.start,
        end=window.end,
        group_by=dims,
        town_codes=towns_in_scope(principal, town),
    )
    columns = [stats.ERRAND_DIMENSIONS[d][1] for d in dims] + list(stats.ERRAND_METRICS)
    return _reply(window, window.end, dims, columns, rows)


class RefreshRead(BaseModel):
    """When the stored facts are now as of, and what the refresh recomputed."""

    refreshed_at: datetime
    mode: str = Field(description="incremental, or full (the first refresh)")
    cases: int = Field(description="cases whose facts were recomputed")
    town_months: int = Field(description="towns × months those cases fall in")


@router.post(
    "/refresh",
    response_model=RefreshRead,
    responses=domain_errors(
        (stats.RefreshBusyError, "another refresh is running (this one does not wait)")
    ),
)
def refresh(
    session: SessionDep, _: Annotated[Principal | None, Depends(allow(Role.COUNTY))]
) -> RefreshRead:
    """Bring the stored per-case facts up to now, incrementally (run it every few minutes)."""
    result = stats.refresh_facts(session, wait=False)
    session.commit()
    return RefreshRead(
        refreshed_at=result.refreshed_at,
        mode=result.mode,
        cases=result.cases,
        town_months=result.town_months,
    )
