"""Map pages for the command room (HTML), and the Leaflet files they load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import folium
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.api.deps import PlatformDep, SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import CATEGORY, ERROR_RESPONSES, WINDOW, domain_errors
from gis.api.hot import fast_path
from gis.api.pages import Page, PageCache
from gis.api.schemas.maps import (
    DEFAULTS,
    BasemapQuery,
    CategoryQuery,
    CellQuery,
    KioskQuery,
    MapSession,
    MaxMarkersQuery,
    MetricQuery,
    SinceQuery,
    StepQuery,
    TileXY,
    TileZ,
    TownQuery,
    UntilQuery,
    VillageQuery,
)
from gis.api.security import WATCH, Watcher, allow, authorize, check_town, token_of
from gis.errors import BasemapUnavailableError, GisError, NotFoundError, ValidationError
from gis.layers.regions import RegionLevel, get_region
from gis.maps import Basemap, GridMetric, build_command_room_map, build_village_grids_map, render
from gis.maps.assets import assets_dir_for, choose_assets_url
from gis.maps.base import TileSource
from gis.maps.live import LIVE_MODULE, LiveFeed
from gis.maps.tiles import TileArchive, archive_tile, open_archive, page_basemap
from gis.services import live, mapdata
from gis.services.access import Principal, token_expiry
from gis.settings import Settings
from gis.web import URL_PREFIX, web_url

router = APIRouter(prefix="/maps", tags=["maps"], dependencies=[StaleReadOk])
TIANDITU = (ValidationError, "a Tianditu basemap is asked for but GIS_TIANDITU_KEY is not set")
# A town's own basemap asked for where none is configured, or configured but unusable.
CONFIGURED_BASEMAP = (
    ValidationError,
    "basemap intranet or local is asked for but GIS_BASEMAP_URL / GIS_BASEMAP_FILE is not set",
)
BASEMAP_UNUSABLE = (
    BasemapUnavailableError,
    "the configured basemap cannot be used (archive missing, not raster tiles, bad URL template)",
)
BASEMAP_ERRORS = (TIANDITU, CONFIGURED_BASEMAP, BASEMAP_UNUSABLE)
# Basemap tiles are reference data, like the public layers (GIS_PUBLIC_LAYERS).
TilesDep = Annotated[Principal | None, Depends(allow(*WATCH, public=True))]
# Library files never change under a versioned folder name, so browsers may keep them a day.
ASSET_CACHE = "public, max-age=86400"
# A town may replace its archive: an hour is short enough, and spares the service the refetches.
TILE_CACHE = "public, max-age=3600"


def page_assets_url(request: Request, settings: Settings) -> str | None:
    """Where a map page of this request loads Leaflet and its plugins (None: CDNs)."""
    local = request.scope.get("root_path", "") + "/maps/assets"
    return choose_assets_url(settings.map_assets, assets_dir_for(settings.map_assets_dir), local)


def render_page(m: folium.Map, request: Request, assets_url: str | None) -> str:
    """A map page as this service serves it: its own files from ``/web`` (gis.web)."""
    pages_url = request.scope.get("root_path", "") + URL_PREFIX
    return render(m, assets_url=assets_url, pages_url=pages_url)


def request_basemap(
    request: Request, settings: Settings, basemap: Basemap | None
) -> Basemap | TileSource:
    """The basemap a page of this request draws (a local archive's tiles come from here)."""
    tiles_url = request.scope.get("root_path", "") + "/maps/tiles"
    return page_basemap(basemap, settings, tiles_url=tiles_url)


def _page(html: str) -> HTMLResponse:
    # Live data: the command room reloads, it must not see a cached page.
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@dataclass
class MapPage:
    """A map page's request: its session and settings, the caller (one who watches), and
    where the page loads Leaflet from; it draws the page on a basemap, renders and caches it."""

    request: Request
    session: SessionDep
    settings: SettingsDep
    principal: Watcher

    @cached_property
    def assets_url(self) -> str | None:
        """Where the page loads Leaflet from (``page_assets_url``): asked once access is
        checked, so a caller without it gets its 404 rather than a missing-assets error."""
        return page_assets_url(self.request, self.settings)

    def basemap(self, chosen: Basemap | None) -> Basemap | TileSource:
        """The basemap the page draws (``request_basemap``)."""
        return request_basemap(self.request, self.settings, chosen)

    def render(self, m: folium.Map) -> str:
        """The page's HTML (``render_page``)."""
        return render_page(m, self.request, self.assets_url)

    def reply(
        self, key: tuple[object, ...], build: Callable[[], Page], **cache: Any
    ) -> HTMLResponse:
        """The page built by ``build``, or as built a moment ago for the same ``key``."""
        return _page(_pages(self.request).get_or_build(key, build, **cache).html)


MapPageDep = Annotated[MapPage, Depends(MapPage)]


def _command_room_key(request: Request, assets_url: str | None) -> tuple[object, ...]:
    """What a command-room page is kept by: its parameters as given (they shape everything on
    it; access is checked first — the town is one of them) and where it loads Leaflet from."""
    return ("command-room", tuple(sorted(request.query_params.multi_items())), assets_url)


def _feed(request: Request) -> dict[str, Any]:
    """How far the live feed is, and how far behind it a page may be served: its live updates
    replay at most ``GIS_LIVE_MAX_REPLAY`` events, half of that leaves room for a rebuild; and
    no page built before the newest ``cases.moved``, which would only reload it."""
    hub = getattr(request.app.state, "hub", None)
    settings: Settings = request.app.state.settings
    return {
        "newest": hub.cursor if hub is not None else None,
        "max_behind": settings.live_max_replay // 2,
        "reset_after": hub.reset_after if hub is not None else 0,
    }


_WATCHERS = frozenset(WATCH)


async def _fast_command_room(request: Request) -> HTMLResponse | None:
    """A command-room page still in the cache, answered before the router (``gis.api.hot``) in
    the event loop: a wall of screens reloading costs no worker thread and no session. A miss,
    or a town outside the caller's scope, is declined to ``command_room``, which answers."""
    principal = await authorize(request, _WATCHERS)
    town = request.query_params.get("town")
    if town is None or (principal is not None and not principal.sees_town(town)):
        return None
    settings: Settings = request.app.state.settings
    try:
        assets_url = page_assets_url(request, settings)
    except GisError:
        return None
    page = _pages(request).peek(_command_room_key(request, assets_url), **_feed(request))
    return None if page is None else _page(page.html)


@router.get(
    "/command-room",
    response_class=HTMLResponse,
    responses={**ERROR_RESPONSES, **domain_errors(CATEGORY, WINDOW, *BASEMAP_ERRORS)},
)
@fast_path(_fast_command_room)
def command_room(
    page: MapPageDep,
    town: TownQuery,
    since: SinceQuery = None,
    until: UntilQuery = None,
    platform: PlatformDep = None,
    category: CategoryQuery = None,
    basemap: BasemapQuery = None,
    metric: MetricQuery = GridMetric.LOAD,
    cell_m: CellQuery = DEFAULTS["cell_m"],
    step: StepQuery = mapdata.TimeStep.AUTO,
    max_markers: MaxMarkersQuery = int(DEFAULTS["max_markers"]),
    kiosk: KioskQuery = False,
) -> HTMLResponse:
    """The command-room map of a town: heat, time view, grids, open/overdue cases, units,
    cameras (高家镇 综合信息指挥室)."""
    check_town(page.principal, town, f"town with code {town!r}")
    tiles = page.basemap(basemap)
    settings = page.settings

    def build() -> Page:
        feed = _live_feed(page.request, page.session, town)
        data = mapdata.command_room_data(
            page.session,
            town_code=town,
            since=since,
            until=until,
            cases=mapdata.CaseFilter(platform.value if platform else None, category),
            cell_m=cell_m,
            step=step,
            max_markers=max_markers,
            # The figures as /stats reads them (stored facts while fresh): one number on both.
            stale_after=settings.stats_stale_after,
        )
        m = build_command_room_map(
            data,
            basemap=tiles,
            metric=metric,
            tianditu_key=settings.tianditu_key,
            live=feed,
            kiosk=kiosk,
        )
        return Page(page.render(m), feed.after)

    return page.reply(
        _command_room_key(page.request, page.assets_url), build, **_feed(page.request)
    )


@router.get(
    "/grids",
    response_class=HTMLResponse,
    responses={**ERROR_RESPONSES, **domain_errors(*BASEMAP_ERRORS)},
)
def village_grids(
    page: MapPageDep, village: VillageQuery, basemap: BasemapQuery = None, kiosk: KioskQuery = False
) -> HTMLResponse:
    """A village's grids with labels and members: the printable planner's map."""
    region = get_region(page.session, village, level=RegionLevel.VILLAGE)
    check_town(page.principal, region.parent_code, f"village with code {village!r}")
    tiles = page.basemap(basemap)

    def build() -> Page:
        data = mapdata.village_grids_data(page.session, village_code=village)
        m = build_village_grids_map(
            data, basemap=tiles, tianditu_key=page.settings.tianditu_key, kiosk=kiosk
        )
        return Page(page.render(m))

    return page.reply(("grids", village, basemap, page.assets_url, kiosk), build)


def _pages(request: Request) -> PageCache:
    cache: PageCache = request.app.state.page_cache
    return cache


def _live_feed(request: Request, session: Session, town: str) -> LiveFeed:
    """Where the page listens, and the feed id its data is as of.

    The data and the ids are read in ONE snapshot (repeatable read): events up to the hub's
    cursor (read before it) are all in it, and those after it that the snapshot already shows
    are listed, so the page replays from the cursor and skips them: nothing is missed between
    the build and the connection, and nothing is counted twice."""
    # (The tests hand in a session bound to their connection, already under way.)
    if isinstance(session.get_bind(), Engine) and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    hub = getattr(request.app.state, "hub", None)
    after = hub.cursor if hub is not None and hub.ready.is_set() else None
    after, seen = live.feed_position(session, after)
    root = request.scope.get("root_path", "")
    return LiveFeed(
        stream_url=f"{root}/events/stream?{urlencode({'town': town})}",
        module_url=web_url(root, *LIVE_MODULE),
        after=after,
        seen=seen,
    )


@router.get("/session", response_model=MapSession, responses=ERROR_RESPONSES)
def map_session(request: Request, session: SessionDep, principal: Watcher) -> MapSession:
    """Who the page's login is and until when: the kiosk asks, and says on screen when its
    login has expired (401) instead of turning into an error page at the next reload."""
    token = token_of(request)
    return MapSession(
        user=principal.name if principal else None,
        role=principal.role.value if principal else None,
        expires_at=token_expiry(session, token) if principal and token else None,
    )


@router.get("/tiles/file", include_in_schema=False)
def tile_archive(settings: SettingsDep, principal: TilesDep) -> FileResponse:
    """The local basemap archive itself (GIS_BASEMAP_FILE), with range requests, for clients
    that read PMTiles or MBTiles directly."""
    archive = _archive(settings)
    return FileResponse(
        archive.path,
        media_type=archive.media_type,
        filename=archive.path.name,
        headers={"Cache-Control": TILE_CACHE},
    )


@router.get("/tiles/{z}/{x}/{y}", include_in_schema=False)
def tile(z: TileZ, x: TileXY, y: TileXY, settings: SettingsDep, principal: TilesDep) -> Response:
    """One tile of the local basemap archive: 204 where the archive has none."""
    archive = _archive(settings)
    data = archive_tile(archive, z, x, y)
    headers = {"Cache-Control": TILE_CACHE}
    if data is None:
        return Response(status_code=204, headers=headers)
    if archive.content_encoding:
        headers["Content-Encoding"] = archive.content_encoding
    return Response(data, media_type=archive.info.media_type, headers=headers)


def _archive(settings: Settings) -> TileArchive:
    if not settings.basemap_file:
        raise NotFoundError(
            "no local basemap: set GIS_BASEMAP_FILE to an .mbtiles or .pmtiles file"
        )
    return open_archive(settings.basemap_file)


@router.get("/assets/{path:path}", include_in_schema=False)
def asset(path: str, settings: SettingsDep) -> FileResponse:
    """A Leaflet or plugin file fetched by `gis map assets` (the page's own files: /web)."""
    base = assets_dir_for(settings.map_assets_dir).resolve()
    target = (base / path).resolve()
    # resolve() follows "..": anything that lands outside the folder does not exist here.
    if not target.is_relative_to(base) or not target.is_file():
        raise NotFoundError(f"no map asset {path!r}")
    return FileResponse(Path(target), headers={"Cache-Control": ASSET_CACHE})
