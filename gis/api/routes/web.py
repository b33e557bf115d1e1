"""The web pages' own files (``gis/web``): ``GET /web/<page>/<name>``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from string import Template
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gis.errors import NotFoundError
from gis.maps.assets import asset_url
from gis.web import MEDIA_TYPES, URL_PREFIX, WEB_DIR, web_file, web_url

router = APIRouter(prefix=URL_PREFIX, tags=["web"])
LEAFLET = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist"


def web_page(
    root: str,
    page: str,
    *,
    assets_url: str | None,
    css: str,
    js: str,
    config: dict[str, Any],
    scripts: Sequence[str] = (),
    **values: str,
) -> str:
    """The HTML of ``gis/web/<page>/page.html`` for a request under ``root``: its ``$head``
    is the common one (``gis/web/common/head.html``: Leaflet from ``assets_url`` or its CDN,
    the page's stylesheet ``css``, library ``scripts``, its ``config`` as JSON and its module
    ``js``); ``values`` fill in the page's own placeholders."""
    head = Template((WEB_DIR / "common" / "head.html").read_text(encoding="utf-8")).substitute(
        leaflet_css=asset_url(f"{LEAFLET}/leaflet.css", assets_url),
        leaflet_js=asset_url(f"{LEAFLET}/leaflet.js", assets_url),
        page_css=web_url(root, page, css),
        scripts="".join(f'<script src="{url}"></script>\n' for url in scripts),
        # "</" cannot end the script element early: json.dumps leaves no "<" unescaped here.
        config=json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
        page_js=web_url(root, page, js),
    )
    page_html = (WEB_DIR / page / "page.html").read_text(encoding="utf-8")
    return Template(page_html).substitute(head=head.rstrip("\n"), **values)


@router.get("/{page}/{name}", include_in_schema=False)
def page_file(page: str, name: str) -> FileResponse:
    """One file of a page; revalidated on every load, so a new version takes effect at once."""
    target = web_file(page, name)
    if target is None:
        raise NotFoundError(f"no web file {page}/{name}")
    return FileResponse(
        target, media_type=MEDIA_TYPES[target.suffix], headers={"Cache-Control": "no-cache"}
    )
