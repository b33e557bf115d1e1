"""What every map shares: basemaps, the shift to GCJ-02, stable element ids, panels, rendering."""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

import folium
import numpy as np
import shapely
from branca.element import Element
from folium import plugins
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from gis.errors import ValidationError
from gis.geo import Crs, from_wgs84_fn
from gis.maps.assets import use_local_assets
from gis.maps.page import add_page_chrome, is_kiosk, serve_page_files


class Basemap(StrEnum):
    """Background tiles. Tianditu is CGCS2000 (= WGS84 at map scale); AMap tiles are GCJ-02.
    ``intranet`` and ``local`` are configured by the town (``gis.maps.tiles``): tiles from a
    server on its own network, or from an archive file the service serves itself."""

    OSM = "osm"
    TIANDITU = "tianditu"
    TIANDITU_SATELLITE = "tianditu_satellite"
    AMAP = "amap"
    INTRANET = "intranet"
    LOCAL = "local"


@dataclass(frozen=True)
class TileSource:
    """A configured basemap: Leaflet URL template(s), the coordinates its tiles are drawn in
    (overlays are shifted into them), and where and at which zooms it has tiles."""

    url: str
    crs: Crs
    attribution: str
    name: str
    labels_url: str | None = None
    subdomains: str = "abc"
    min_zoom: int = 0
    max_zoom: int = 18
    # (west, south, east, north) in WGS84: outside it no tile is asked for.
    bounds: tuple[float, float, float, float] | None = None


# What the basemap's own coordinates are: overlays are shifted into it so that they line up.
BASEMAP_CRS = {
    Basemap.OSM: Crs.WGS84,
    Basemap.TIANDITU: Crs.WGS84,
    Basemap.TIANDITU_SATELLITE: Crs.WGS84,
    Basemap.AMAP: Crs.GCJ02,
}

_TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_TIANDITU_ATTR = '&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>'
_AMAP_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
_AMAP_ATTR = '&copy; <a href="https://www.amap.com/">高德地图 AMap</a> (GCJ-02)'


def parse_basemap(value: str | Basemap) -> Basemap:
    """A basemap by name, or a ValidationError listing the known ones."""
    try:
        return Basemap(value)
    except ValueError:
        known = ", ".join(b.value for b in Basemap)
        raise ValidationError(f"unknown basemap {value!r}; choose one of: {known}") from None


def check_basemap(basemap: Basemap | TileSource, tianditu_key: str | None) -> None:
    """Raise a ValidationError when the basemap cannot be shown (Tianditu without a key, a
    configured basemap not resolved to its tile source by ``gis.maps.tiles``)."""
    if basemap in (Basemap.INTRANET, Basemap.LOCAL):
        raise ValidationError(
            f"basemap {basemap.value!r} is configured by the service "
            "(GIS_BASEMAP_URL or GIS_BASEMAP_FILE): resolve it with gis.maps.tiles.resolve_basemap"
        )
    if basemap in (Basemap.TIANDITU, Basemap.TIANDITU_SATELLITE) and not tianditu_key:
        raise ValidationError(
            "the Tianditu basemap needs a key: set GIS_TIANDITU_KEY (a browser key from "
            "console.tianditu.gov.cn), or choose basemap=osm"
        )


def add_basemap(m: folium.Map, basemap: Basemap | TileSource, *, tianditu_key: str | None) -> None:
    """Add the chosen background tiles (and Tianditu's label layer) to a map."""
    check_basemap(basemap, tianditu_key)
    if isinstance(basemap, TileSource):
        _add_tile_source(m, basemap)
        return
    if basemap is Basemap.OSM:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", control=False).add_to(m)
        return
    if basemap is Basemap.AMAP:
        folium.TileLayer(
            _AMAP_URL, attr=_AMAP_ATTR, name="高德 AMap", subdomains="1234", control=False
        ).add_to(m)
        return
    layer = "vec" if basemap is Basemap.TIANDITU else "img"
    labels = "cva" if basemap is Basemap.TIANDITU else "cia"
    for name, code, overlay in ((f"天地图 {layer}", layer, False), ("注记 labels", labels, True)):
        folium.TileLayer(
            _TIANDITU_URL.format(layer=code, key=tianditu_key, s="{s}"),
            attr=_TIANDITU_ATTR,
            name=name,
            subdomains="01234567",
            overlay=overlay,
            control=False,
            max_zoom=18,
        ).add_to(m)


def tile_layer_spec(basemap: Basemap | TileSource, tianditu_key: str | None) -> dict[str, object]:
    """The basemap as a plain Leaflet tile layer for a page that draws it itself (the phone
    app): URL template, subdomains, credits, deepest zoom, and the coordinates of its tiles."""
    check_basemap(basemap, tianditu_key)
    if isinstance(basemap, TileSource):
        url, subdomains, attribution, max_zoom = (
            basemap.url,
            basemap.subdomains,
            basemap.attribution,
            basemap.max_zoom,
        )
        crs = basemap.crs
    elif basemap is Basemap.OSM:
        url, subdomains, max_zoom = "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "abc", 19
        attribution = "&copy; OpenStreetMap contributors"
        crs = Crs.WGS84
    elif basemap is Basemap.AMAP:
        url, subdomains, attribution, max_zoom = _AMAP_URL, "1234", _AMAP_ATTR, 18
        crs = Crs.GCJ02
    else:
        layer = "vec" if basemap is Basemap.TIANDITU else "img"
        url = _TIANDITU_URL.format(layer=layer, key=tianditu_key, s="{s}")
        subdomains, attribution, max_zoom, crs = "01234567", _TIANDITU_ATTR, 18, Crs.WGS84
    return {
        "url": url,
        "subdomains": subdomains,
        "attribution": attribution,
        "maxZoom": max_zoom,
        "gcj02": crs is Crs.GCJ02,
    }


def _add_tile_source(m: folium.Map, source: TileSource) -> None:
    bounds = None
    if source.bounds is not None:
        # The tiles' own coordinates: a GCJ-02 archive's edge is where its tiles end.
        bounds = Projector(source.crs).bounds(source.bounds)
    for url, overlay in ((source.url, False), (source.labels_url, True)):
        if url is None:
            continue
        folium.TileLayer(
            url,
            attr=source.attribution,
            name=source.name,
            subdomains=source.subdomains,
            overlay=overlay,
            control=False,
            # Past its last level Leaflet enlarges the deepest tiles instead of asking for more.
            max_native_zoom=source.max_zoom,
            min_native_zoom=source.min_zoom,
            max_zoom=max(source.max_zoom, 19),
            bounds=bounds,
        ).add_to(m)


@dataclass(frozen=True)
class Projector:
    """Moves WGS84 data into the basemap's coordinates and rounds it to ~0.1 m."""

    crs: Crs

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        """(lat, lon) for Leaflet, shifted into the basemap's system."""
        x, y = from_wgs84_fn(self.crs)(np.array([lon]), np.array([lat]))
        return round(float(y[0]), 6), round(float(x[0]), 6)

    def points(self, lons: Iterable[float], lats: Iterable[float]) -> list[tuple[float, float]]:
        """Many (lat, lon) pairs at once (one numpy pass)."""
        x, y = from_wgs84_fn(self.crs)(
            np.asarray(list(lons), dtype=np.float64), np.asarray(list(lats), dtype=np.float64)
        )
        return list(zip(np.round(y, 6).tolist(), np.round(x, 6).tolist(), strict=True))

    def geometry(self, geom: BaseGeometry) -> dict[str, Any]:
        """A GeoJSON geometry dict, shifted and rounded."""
        fn = from_wgs84_fn(self.crs)

        def shift(coords: np.ndarray) -> np.ndarray:
            x, y = fn(coords[:, 0].astype(np.float64), coords[:, 1].astype(np.float64))
            return np.round(np.column_stack([x, y]), 6)

        return dict(mapping(shapely.transform(geom, shift)))

    def bounds(self, bounds: tuple[float, float, float, float]) -> list[list[float]]:
        """[[south, west], [north, east]] for ``fit_bounds``, shifted."""
        minx, miny, maxx, maxy = bounds
        (s, w), (n, e) = self.points([minx, maxx], [miny, maxy])
        return [[s, w], [n, e]]


def projector_for(basemap: Basemap | TileSource) -> Projector:
    """The projector that lines overlays up with ``basemap`` (a configured one declares its
    CRS: GCJ-02 tiles get the same shift as AMap's)."""
    if isinstance(basemap, TileSource):
        return Projector(basemap.crs)
    if basemap not in BASEMAP_CRS:
        check_basemap(basemap, None)  # raises: a configured basemap must be resolved first
    return Projector(BASEMAP_CRS[basemap])


def new_map(bounds: list[list[float]], *, kiosk: bool = False) -> folium.Map:
    """An empty map fitted to ``bounds``, with the page's responsive controls and basemap banner
    (``gis.maps.page``); ``kiosk``: the wall's view, without zoom buttons or scale bar."""
    (s, w), (n, e) = bounds
    m = folium.Map(
        location=[(s + n) / 2, (w + e) / 2],
        zoom_start=13,
        tiles=None,
        control_scale=not kiosk,
        zoom_control=not kiosk,
        prefer_canvas=True,
    )
    m.fit_bounds(bounds)
    add_page_chrome(m, kiosk=kiosk)
    return m


def start_map(
    bounds: tuple[float, float, float, float],
    basemap: Basemap | TileSource,
    *,
    tianditu_key: str | None,
    kiosk: bool = False,
) -> tuple[folium.Map, Projector]:
    """A map fitted to the WGS84 ``bounds`` on its background tiles, and the projector that
    lines its overlays up with them: the set-up every map builder starts with."""
    project = projector_for(basemap)
    m = new_map(project.bounds(bounds), kiosk=kiosk)
    add_basemap(m, basemap, tianditu_key=tianditu_key)
    return m, project


def add_outline(
    m: folium.Map, project: Projector, geom: BaseGeometry, *, name: str, style: dict[str, Any]
) -> None:
    """An unfilled boundary (a town's, a village's) drawn in ``style``, as a switchable layer."""
    folium.GeoJson(
        {"type": "Feature", "geometry": project.geometry(geom), "properties": {}},
        name=name,
        style_function=lambda _: {**style, "fill": False},
    ).add_to(m)


class GridLike(Protocol):
    """What a grid's feature shows of it (``GridStat``, ``GridInfo``)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def geom(self) -> BaseGeometry: ...
    @property
    def households(self) -> int: ...
    @property
    def members(self) -> list[str]: ...


# The fields every grid's tooltip starts with, and their labels.
GRID_TOOLTIP = {
    "code": "网格 Grid",
    "name": "名称 Name",
    "members": "网格员 Member",
    "households": "户数 Households",
}


def grid_feature(grid: GridLike, project: Projector, **properties: Any) -> dict[str, Any]:
    """A grid as a GeoJSON feature with the ``GRID_FIELDS`` and the map's own ``properties``."""
    return {
        "type": "Feature",
        "geometry": project.geometry(grid.geom),
        "properties": {
            "code": grid.code,
            "name": grid.name,
            "members": "、".join(grid.members) or "—",
            "households": grid.households,
            **properties,
        },
    }


def grids_layer(
    features: list[dict[str, Any]],
    *,
    name: str,
    tooltip: dict[str, str],
    outline: dict[str, Any],
    **options: Any,
) -> folium.GeoJson:
    """The grids (``grid_feature``s) filled with their ``fill`` property and drawn with
    ``outline``; the tooltip shows the ``GRID_TOOLTIP`` fields, then ``tooltip`` (field: label)."""
    fields = {**GRID_TOOLTIP, **tooltip}
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=name,
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            **outline,
            "fillOpacity": 0.45,
        },
        # folium refuses a tooltip naming fields when there are no features to carry them.
        tooltip=folium.GeoJsonTooltip(fields=list(fields), aliases=list(fields.values()))
        if features
        else None,
        **options,
    )


def esc(value: object) -> str:
    """HTML-escape a value from the database for a popup, tooltip or panel."""
    return html.escape("" if value is None else str(value), quote=True)


PanelRole = Literal["title", "legend"]


def add_panel(m: folium.Map, body: str, *, role: PanelRole, element_id: str, css: str = "") -> None:
    """A fixed HTML box over the map; ``body`` must already be escaped. Its place and look come
    from its ``role`` in map-page.css (a legend collapses into a button on a phone)."""
    style = f' style="{css}"' if css else ""
    box = f'<div id="{element_id}" class="gis-panel gis-{role}"{style}>{body}</div>'
    m.get_root().html.add_child(Element(box))  # type: ignore[attr-defined]


def add_layer_control(m: folium.Map) -> None:
    """The layer switcher, expanded on a screen with room for it (on a phone it is a button,
    in kiosk mode it is left out): the command room toggles layers all day."""
    if is_kiosk(m):
        return
    folium.LayerControl(collapsed=False, position="topright").add_to(m)


def _walk(element: Element) -> Iterable[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _walk_all(element: Element, seen: set[int]) -> Iterable[Element]:
    """Children and also elements held in attributes (a popup's html, a figure's header)."""
    if id(element) in seen:
        return
    seen.add(id(element))
    yield element
    attached = [v for k, v in vars(element).items() if k != "_parent" and isinstance(v, Element)]
    for child in [*element._children.values(), *attached]:
        yield from _walk_all(child, seen)


def stabilise_ids(m: folium.Map) -> None:
    """Replace folium's random element ids by a counter, so the same data renders the same HTML."""
    elements = list(_walk_all(m.get_root(), set()))
    # Children are keyed by their name when added without one, and some templates print the key.
    auto_keyed = {
        id(child) for e in elements for key, child in e._children.items() if key == child.get_name()
    }
    for number, element in enumerate(elements):
        element._id = f"{number:04d}"
        if isinstance(element, plugins.HeatMapWithTime):
            # Derived from the random id at construction time; derive it again.
            element._control_name = element.get_name() + "Control"
    for element in elements:
        element._children = OrderedDict(
            (child.get_name() if id(child) in auto_keyed else key, child)
            for key, child in element._children.items()
        )


def render(m: folium.Map, *, assets_url: str | None = None, pages_url: str | None = None) -> str:
    """The map as one HTML page; Leaflet and plugins come from ``assets_url`` when given, else
    the CDNs; the page's own files from ``pages_url`` (the service's ``/web``) when given, else
    inlined (a file the CLI writes)."""
    serve_page_files(m, pages_url)
    if assets_url is not None:
        use_local_assets(m.get_root(), assets_url)
    stabilise_ids(m)
    page: str = m.get_root().render()
    return page


def feature_counts(m: folium.Map) -> dict[str, int]:
    """Features per named overlay (heat cells, markers, polygons): what tests compare to the DB."""
    counts: dict[str, int] = {}
    for element in _walk(m):
        name = getattr(element, "layer_name", None)
        if not isinstance(element, folium.map.Layer) or not name or not element.control:
            continue
        counts[name] = _count(element)
    return counts


def _count(layer: Element) -> int:
    if isinstance(layer, plugins.HeatMapWithTime):
        return sum(len(frame) for frame in layer.data)
    if isinstance(layer, plugins.HeatMap | plugins.FastMarkerCluster):
        return len(layer.data)
    if isinstance(layer, folium.GeoJson):
        return len(layer.data.get("features", []))
    # A feature group: count its markers and the features of its GeoJSON children.
    total = 0
    for child in layer._children.values():
        if isinstance(child, folium.GeoJson):
            total += len(child.data.get("features", []))
        elif isinstance(child, folium.Marker | folium.CircleMarker):
            total += 1
    return total
