"""The page around every map: its own stylesheet and ES modules (``gis/web/maps/``) for the
responsive controls, the wall's kiosk mode and the basemap banner.

A page served by the API loads them from ``/web/maps/…`` (every page's files have that one home,
``gis.web``); a file the CLI writes for opening anywhere carries the same files inline. Either
way nothing of them is written in Python strings.
"""

from __future__ import annotations

import json

import folium
from branca.element import MacroElement
from folium.template import Template

from gis.web import WEB_DIR

PAGE = "maps"
STATIC_DIR = WEB_DIR / PAGE
STYLESHEET = "map-page.css"
# Module file -> the function it exports, in the order the page calls them.
CONTROLS = ("map-controls.js", "collapsibleControls")
BASEMAP = ("map-basemap.js", "watchBasemap")
KIOSK = ("map-kiosk.js", "kioskMode")


def _json(value: object) -> str:
    """JSON to embed in a <script>: no closing tag possible."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


class PageChrome(MacroElement):
    """Links (or inlines) the page's stylesheet and starts its modules on the map."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}{{ this.head() }}{% endmacro %}
        {% macro html(this, kwargs) %}{{ this.modules(this._parent.get_name()) }}{% endmacro %}
        """
    )

    def __init__(self, *, kiosk: bool) -> None:
        super().__init__()
        self._name = "PageChrome"
        self.kiosk = kiosk
        # Set by ``render``: where the files are served; None puts them inline.
        self.base_url: str | None = None

    def _modules(self) -> list[tuple[str, str, dict[str, object]]]:
        options: dict[str, object] = {"sessionUrl": "session"} if self.kiosk else {}
        first = KIOSK if self.kiosk else CONTROLS
        return [(*first, options), (*BASEMAP, {})]

    def head(self) -> str:
        """The stylesheet, and in kiosk mode the class that hides controls before they show."""
        kiosk = (
            "<script>document.documentElement.classList.add('gis-kiosk')</script>"
            if self.kiosk
            else ""
        )
        if self.base_url is None:
            css = (STATIC_DIR / STYLESHEET).read_text(encoding="utf-8")
            return f"{kiosk}<style>{css}</style>"
        return f'{kiosk}<link rel="stylesheet" href="{self.base_url}/{STYLESHEET}">'

    def modules(self, map_name: str) -> str:
        """One module script: import (or inline) each file and call it on ``map_name``."""
        calls = "".join(
            f"{function}({map_name}, {_json(options)});\n"
            for _, function, options in self._modules()
        )
        if self.base_url is None:
            # The files only export functions and import nothing, so they join into one module.
            code = "".join(
                (STATIC_DIR / name).read_text(encoding="utf-8") for name, _, _ in self._modules()
            )
        else:
            code = "".join(
                f"import {{ {function} }} from {_json(f'{self.base_url}/{name}')};\n"
                for name, function, _ in self._modules()
            )
        return f'<script type="module">\n{code}{calls}</script>'


def add_page_chrome(m: folium.Map, *, kiosk: bool) -> None:
    """Give a map page its responsive controls, basemap banner and (``kiosk``) wall mode."""
    PageChrome(kiosk=kiosk).add_to(m)


def page_chrome(m: folium.Map) -> PageChrome | None:
    """The page chrome of a map (None for a map not made by ``new_map``)."""
    for child in m._children.values():
        if isinstance(child, PageChrome):
            return child
    return None


def is_kiosk(m: folium.Map) -> bool:
    """Whether the map is built for the wall's kiosk mode (no controls)."""
    chrome = page_chrome(m)
    return chrome is not None and chrome.kiosk


def serve_page_files(m: folium.Map, pages_url: str | None) -> None:
    """Load the page files from ``pages_url`` (the service's ``/web``), or inline them when
    None."""
    chrome = page_chrome(m)
    if chrome is not None:
        chrome.base_url = None if pages_url is None else f"{pages_url.rstrip('/')}/{PAGE}"
