"""The grid member's phone app (网格员 App, ``/app``): one page, an installable PWA.

The page and its modules are static files in ``gis/web/app`` (served at ``/web/app/…``); this
module serves the page's HTML with its configuration, and the service worker at ``/app/sw.js``
so that its scope covers ``/app`` (a worker's scope cannot reach above its own folder without
``Service-Worker-Allowed``). Every action the app takes goes through the public API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gis.api.deps import SettingsDep
from gis.api.routes.web import web_page
from gis.api.security import get_principal
from gis.maps.assets import assets_dir_for, choose_assets_url
from gis.maps.base import tile_layer_spec
from gis.maps.tiles import page_basemap
from gis.services.access import Principal
from gis.web import WEB_DIR, web_url

router = APIRouter(prefix="/app", tags=["field app"])
PAGE = "app"
APP_SCOPE = "/app"


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def app_page(
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal | None, Depends(get_principal)],
) -> Response:
    """The phone app (网格员): report with GPS and photos, offline outbox, my cases and errands.

    Without a login it sends the phone to /login once; the token then lives in an HttpOnly
    cookie the page's script cannot read."""
    root = request.scope.get("root_path", "")
    if principal is None and settings.auth_required:
        return RedirectResponse(f"{root}/login?next={APP_SCOPE}", status_code=303)
    base = choose_assets_url(
        settings.map_assets, assets_dir_for(settings.map_assets_dir), root + "/maps/assets"
    )
    basemap = tile_layer_spec(
        page_basemap(None, settings, tiles_url=root + "/maps/tiles"), settings.tianditu_key
    )
    config = {
        "root": root,
        "user": None
        if principal is None
        else {"name": principal.name, "role": principal.role.value},
        "basemap": basemap,
        "sw": f"{root}{APP_SCOPE}/sw.js",
        "scope": f"{root}{APP_SCOPE}",
    }
    html = web_page(
        root,
        PAGE,
        assets_url=base,
        css="app.css",
        js="app.js",
        config=config,
        manifest=web_url(root, PAGE, "manifest.webmanifest"),
        icon=web_url(root, PAGE, "icon-192.png"),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    """The app's service worker (gis/web/app/sw.js), allowed to control ``/app``."""
    return FileResponse(
        WEB_DIR / PAGE / "sw.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": APP_SCOPE},
    )
