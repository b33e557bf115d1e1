"""Live updates on a map page: the ``#gis-live`` indicator and the call of the ES module
``gis/web/common/live.js`` that listens to ``GET /events/stream`` (docs/live.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import folium
from branca.element import Element, MacroElement
from jinja2 import Template

from gis.layers.live import EventType
from gis.maps.base import Projector

# The ES module that listens (gis/web/common/live.js, served at /web/common/live.js).
LIVE_MODULE = ("common", "live.js")


@dataclass(frozen=True)
class LiveFeed:
    """Where a page listens and from which event on: the feed id its data is as of, and the
    ids after it that the data already shows (they are skipped, not counted twice)."""

    stream_url: str
    module_url: str
    after: int
    seen: tuple[int, ...] = ()


class _LiveUpdates(MacroElement):
    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="gis-live" data-state="offline" role="status" aria-live="polite"
             style="position:fixed;z-index:1000;right:10px;bottom:24px;padding:2px 8px;
                    border-radius:10px;background:rgba(255,255,255,.92);
                    font:12px/1.5 -apple-system,'PingFang SC','Microsoft YaHei',sans-serif;
                    box-shadow:0 1px 3px rgba(0,0,0,.3)">○ 离线 offline</div>
        <script type="module">
        import { startLive } from {{ this.module_url }};
        startLive({{ this.options }}, {
            open: {{ this.layers[0].get_name() }}, overdue: {{ this.layers[1].get_name() }},
            units: {{ this.layers[2].get_name() }}, cameras: {{ this.layers[3].get_name() }},
            grids: {{ this.layers[4].get_name() }}
        });
        </script>
        {% endmacro %}
        """
    )

    def __init__(self, module_url: str, options: dict[str, object], layers: tuple) -> None:
        super().__init__()
        self._name = "LiveUpdates"
        self.module_url = _script_json(module_url)
        self.options = _script_json(options)
        self.layers = layers


def _script_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def add_live_updates(
    m: folium.Map,
    feed: LiveFeed,
    *,
    layers: tuple[Element, Element, Element, Element, Element],
    centre: tuple[float, float],
    project: Projector,
    platform: str | None,
    category: str | None,
    styles: dict[str, object],
) -> None:
    """Make ``m`` listen to the feed: ``layers`` are its open-case, overdue-case, unit, camera
    and grid layers; ``centre`` (lon, lat) gives the basemap's local offset for new points."""
    lat, lon = project.point(*centre)
    options = {
        "stream": feed.stream_url,
        "after": feed.after,
        "seen": list(feed.seen),
        "types": [t.value for t in EventType],
        "shift": [round(lat - centre[1], 7), round(lon - centre[0], 7)],
        "platform": platform,
        "category": category,
        **styles,
    }
    _LiveUpdates(feed.module_url, options, layers).add_to(m)
