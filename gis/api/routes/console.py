"""The dispatcher's console (调度台, /console?town=…): the queue, the map, the responders and the
unit board of a town. The page and its modules are static files in ``gis/web/console`` (served
at /web/console/…); everything it shows and does goes through the public API (docs/console.md).
"""

from __future__ import annotations

import json
from html import escape
from string import Template
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from gis.api.deps import SessionDep, SettingsDep
from gis.api.errors import ERROR_RESPONSES
from gis.api.schemas.maps import TownQuery
from gis.api.security import DISPATCH, allow, check_town
from gis.layers.regions import RegionLevel, get_region
from gis.maps.assets import asset_url, assets_dir_for, choose_assets_url
from gis.services.access import Principal
from gis.web import WEB_DIR, web_url

router = APIRouter(tags=["console"])
PAGE = "console"
# Every module of the page, fetched at once rather than level by level of the import graph.
MODULES = ("console.js", "api.js", "board.js", "format.js", "map.js", "queue.js", "responders.js")
_JSDELIVR = "https://cdn.jsdelivr.net/npm"
Dispatcher = Annotated[Principal | None, Depends(allow(*DISPATCH))]


@router.get("/console", response_class=HTMLResponse, responses=ERROR_RESPONSES)
def console_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Dispatcher,
    town: TownQuery,
) -> HTMLResponse:
    """A town's dispatcher console (调度台): the queue of cases needing a person, the map, the
    nearest responders by drive time, and the unit board (dispatcher, command room, county)."""
    region = get_region(session, town, level=RegionLevel.TOWN)
    check_town(principal, region.code, f"town with code {town!r}")
    root = request.scope.get("root_path", "")
    base = choose_assets_url(
        settings.map_assets, assets_dir_for(settings.map_assets_dir), root + "/maps/assets"
    )
    leaflet_css = asset_url(f"{_JSDELIVR}/leaflet@1.9.3/dist/leaflet.css", base)
    leaflet_js = asset_url(f"{_JSDELIVR}/leaflet@1.9.3/dist/leaflet.js", base)
    config = {
        "root": root,
        "town": region.code,
        "townName": region.name,
        "townNameEn": region.name_en,
        "user": principal.name if principal is not None else None,
        "modules": web_url(root, PAGE),
        "stream": f"{root}/events/stream",
        "leafletCss": leaflet_css,
        "leafletJs": leaflet_js,
    }
    # What the first paint needs and nothing else, in that order: the style sheet (above), the
    # queue and the board (console.js's own requests for the same URLs are answered from
    # these), then the modules. A browser opens at most six connections to the service over
    # HTTP/1.1 and sends its requests in the order it finds them, and the one worker serves
    # them all: Leaflet, the category list and the event stream's module are asked for after
    # the first paint.
    data = [
        f"{root}/dispatch/queue?{urlencode({'town': region.code, 'sort': 'deadline'})}",
        f"{root}/dispatch/board?{urlencode({'town': region.code})}",
    ]
    preload = [
        f'<link rel="preload" as="fetch" crossorigin="anonymous" href="{escape(url)}">'
        for url in data
    ] + [f'<link rel="modulepreload" href="{web_url(root, PAGE, name)}">' for name in MODULES]
    html = Template((WEB_DIR / PAGE / "console.html").read_text(encoding="utf-8")).substitute(
        page_css=web_url(root, PAGE, "console.css"),
        page_js=web_url(root, PAGE, "console.js"),
        preload="\n".join(preload),
        # "</" cannot end the script element early: json.dumps leaves no "<" unescaped here.
        config=json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
