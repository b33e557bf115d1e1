"""The vector-tile map page (/maps/tiles): Leaflet draws a town's grids, camera views and
cases from the OGC API's vector tiles in the browser; the page and its module are static
files in ``gis/web/tiles``, served at ``/web/tiles/…``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from gis.api.deps import SessionDep, SettingsDep, StaleReadOk
from gis.api.errors import ERROR_RESPONSES
from gis.api.routes.web import web_page
from gis.api.schemas.maps import TownQuery
from gis.api.security import allow, check_town
from gis.layers.regions import RegionLevel, get_region
from gis.layers.users import Role
from gis.maps.assets import VECTORGRID, asset_url, assets_dir_for, choose_assets_url
from gis.services.access import Principal

router = APIRouter(prefix="/maps", tags=["maps"], dependencies=[StaleReadOk])
PAGE = "tiles"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"
# Readable by whoever may read the public layers; each tile layer then follows its own rules.
Reader = Annotated[Principal | None, Depends(allow(*Role, public=True))]


@router.get("/tiles", response_class=HTMLResponse, responses=ERROR_RESPONSES)
def tiles_page(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Reader, town: TownQuery
) -> HTMLResponse:
    """A town's vector-tile map (矢量瓦片地图): grids, camera views and cases as the caller may
    see them, drawn by Leaflet from /ogc tiles."""
    region = get_region(session, town, level=RegionLevel.TOWN)
    check_town(principal, region.code, f"town with code {town!r}")
    root = request.scope.get("root_path", "")
    base = choose_assets_url(
        settings.map_assets, assets_dir_for(settings.map_assets_dir), root + "/maps/assets"
    )
    html = web_page(
        root,
        PAGE,
        assets_url=base,
        css="tiles.css",
        js="tiles.js",
        config={"ogc": f"{root}/ogc", "town": region.code},
        scripts=[
            asset_url(
                f"{_JSDELIVR}/{VECTORGRID.name}@{VECTORGRID.version}"
                "/dist/Leaflet.VectorGrid.bundled.min.js",
                base,
            )
        ],
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
