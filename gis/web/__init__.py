"""Every web page's own files — HTML, stylesheets and ES modules, no bundler — in one place:
one folder per page (``maps``, ``tiles``, …) and ``common`` for modules several pages share.

They are served at ``/web/<page>/<name>`` (``gis.api.routes.web``); the Folium map pages link
their files from there, or inline them in a file the CLI writes (``gis.maps.page``). Browser
libraries from the npm registry are not here: ``gis map assets`` fetches them (docs/maps.md).
"""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).parent
URL_PREFIX = "/web"
# What a page may load from here, by suffix; anything else (Python, hidden files) is not served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def web_file(page: str, name: str) -> Path | None:
    """The file ``name`` of ``page`` (None for anything else: no path games, no Python)."""
    for part in (page, name):
        if not part or "/" in part or "\\" in part or part.startswith((".", "_")):
            return None
    target = WEB_DIR / page / name
    if target.suffix not in MEDIA_TYPES or not target.is_file():
        return None
    return target


def web_url(root: str, page: str, name: str = "") -> str:
    """The URL of a page's file (or, without ``name``, of its folder) under the API's root."""
    folder = f"{root}{URL_PREFIX}/{page}"
    return f"{folder}/{name}" if name else folder
