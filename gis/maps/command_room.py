"""The command room's map of one town: heat, time view, grids by load or closure, open and overdue
cases, units and cameras, each a layer the room can switch on and off."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

import folium
from branca.element import MacroElement
from folium import plugins
from folium.template import Template

from gis.layers.base import LOCAL_TZ
from gis.layers.categories import PLATFORM_NAMES_ZH, Platform
from gis.layers.units import unit_type_names
from gis.maps.base import (
    Basemap,
    Projector,
    TileSource,
    add_layer_control,
    add_outline,
    add_panel,
    esc,
    grid_feature,
    grids_layer,
    start_map,
)
from gis.maps.data import CameraView, Capped, CommandRoomData, GridStat, UnitPoint
from gis.maps.live import LiveFeed, add_live_updates

HEAT_LAYER = "热力图 Heatmap"
TIME_LAYER = "时序热力 Heatmap over time"
GRIDS_LAYER = "网格 Grids"
OPEN_LAYER = "未结案件 Open cases"
OVERDUE_LAYER = "超期案件 Overdue cases"
UNITS_LAYER = "处置力量 Units"
CAMERAS_LAYER = "天眼 Cameras"
BOUNDARY_LAYER = "镇界 Town boundary"
HOTSPOTS_LAYER = "热点 Hotspots"
LAYERS = (
    BOUNDARY_LAYER,
    GRIDS_LAYER,
    HOTSPOTS_LAYER,
    HEAT_LAYER,
    TIME_LAYER,
    OPEN_LAYER,
    OVERDUE_LAYER,
    UNITS_LAYER,
    CAMERAS_LAYER,
)

PLATFORM_COLOURS = {
    Platform.GOVERNANCE.value: "#1f77b4",
    Platform.MARKET.value: "#2ca02c",
    Platform.ENFORCEMENT.value: "#ff7f0e",
    Platform.SERVICE.value: "#9467bd",
}
OVERDUE_RING = "#d00000"
UNIT_STATUS = {  # status -> (awesome-markers colour, label)
    "available": ("green", "可调度 available"),
    "busy": ("orange", "忙 busy"),
    "off_duty": ("gray", "休 off duty"),
}
UNIT_ICONS = {
    "police_station": "shield-halved",
    "traffic_police": "car",
    "emergency_team": "life-ring",
    "market_office": "store",
    "enforcement_squad": "gavel",
    "service_centre": "house",
}
CAMERA_STATUS = {
    "online": ("#1565c0", "在线 online"),
    "offline": ("#757575", "离线 offline"),
    "maintenance": ("#f9a825", "维护 maintenance"),
}
# Five equal-interval classes; a higher load is worse, a higher rate is better.
LOAD_PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
RATE_PALETTE = tuple(reversed(LOAD_PALETTE))
NO_DATA = "#d9d9d9"


class GridMetric(StrEnum):
    """What colours the grids."""

    LOAD = "load"  # cases per 1,000 households
    CLOSURE = "closure"  # 办结率
    ON_TIME = "on_time"  # 按期办结率


METRIC_SHORT = {
    GridMetric.LOAD: "每千户 load",
    GridMetric.CLOSURE: "办结率 closure",
    GridMetric.ON_TIME: "按期率 on time",
}
METRIC_LABELS = {
    GridMetric.LOAD: "每千户案件 Cases per 1,000 households",
    GridMetric.CLOSURE: "办结率 Closure rate",
    GridMetric.ON_TIME: "按期办结率 On-time rate",
}


# One label per figure, on the tooltips and the title alike. The period's figures are /stats'
# (same names there); "now" counts every case open at this moment, whenever it was reported.
FIGURE_LABELS = {
    "received": "受理 Received",
    "closed": "办结 Closed",
    "closure_rate": "办结率 Closure rate",
    "on_time_rate": "按期办结率 On-time rate",
    "overdue_open": "期内超期 Overdue (period)",
    "open_now": "现未结 Open now",
    "overdue_now": "现超期 Overdue now",
}


def _metric(grid: GridStat, metric: GridMetric) -> float | None:
    if metric is GridMetric.LOAD:
        return grid.per_1000_households
    if metric is GridMetric.CLOSURE:
        return grid.figures.closure_rate
    return grid.figures.on_time_rate


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _classes(values: list[float]) -> list[float]:
    """Upper edges of five equal-interval classes over the values (all equal: one class)."""
    low, high = min(values), max(values)
    if high <= low:
        return [high] * 5
    step = (high - low) / 5
    return [low + step * (i + 1) for i in range(5)]


def _colour(value: float | None, edges: list[float], palette: tuple[str, ...]) -> str:
    if value is None:
        return NO_DATA
    for edge, colour in zip(edges, palette, strict=True):
        if value <= edge + 1e-12:
            return colour
    return palette[-1]


def _format_value(value: float, metric: GridMetric) -> str:
    return f"{value:.1f}" if metric is GridMetric.LOAD else _pct(value)


def _metric_scale(grids: list[GridStat], metric: GridMetric) -> tuple[dict[str, str], str]:
    """Each grid's fill for one metric, and that metric's legend rows."""
    palette = LOAD_PALETTE if metric is GridMetric.LOAD else RATE_PALETTE
    values = [v for v in (_metric(g, metric) for g in grids) if v is not None]
    edges = _classes(values) if values else []
    fills = {
        grid.code: _colour(_metric(grid, metric), edges, palette) if edges else NO_DATA
        for grid in grids
    }
    rows = []
    lower = min(values) if values else 0.0
    for edge, colour in zip(edges, palette, strict=False):  # no edges without values
        label = f"{_format_value(lower, metric)} – {_format_value(edge, metric)}"
        rows.append(_swatch(colour, label, square=True))
        lower = edge
    rows.append(_swatch(NO_DATA, "无数据 no data", square=True))
    return fills, "".join(rows)


def _grids_layer(
    m: folium.Map, grids: list[GridStat], metric: GridMetric, project: Projector
) -> tuple[folium.GeoJson, str]:
    """The choropleth, with every metric's colours so the page can switch; and its legend."""
    scales = {each: _metric_scale(grids, each) for each in GridMetric}
    features = []
    for grid in grids:
        features.append(
            grid_feature(
                grid,
                project,
                # The period's figures, as /stats/grids has them (raw rates for scripts).
                received=grid.figures.received,
                closed=grid.figures.closed,
                per_1000="—"
                if grid.per_1000_households is None
                else f"{grid.per_1000_households:.1f}",
                closure_rate=grid.figures.closure_rate,
                on_time_rate=grid.figures.on_time_rate,
                closure=_pct(grid.figures.closure_rate),
                on_time=_pct(grid.figures.on_time_rate),
                overdue_open=grid.figures.overdue_open,
                # Now, whatever the report date: a different figure, so a different label.
                open_now=grid.open_now,
                overdue_now=grid.overdue_now,
                fill=scales[metric][0][grid.code],
                **{f"fill_{each.value}": scales[each][0][grid.code] for each in GridMetric},
            )
        )
    layer = grids_layer(
        features,
        name=GRIDS_LAYER,
        tooltip={
            "received": FIGURE_LABELS["received"],
            "closed": FIGURE_LABELS["closed"],
            "per_1000": "每千户 Per 1,000 hh",
            "closure": FIGURE_LABELS["closure_rate"],
            "on_time": FIGURE_LABELS["on_time_rate"],
            "overdue_open": FIGURE_LABELS["overdue_open"],
            "open_now": FIGURE_LABELS["open_now"],
            "overdue_now": FIGURE_LABELS["overdue_now"],
        },
        outline={"color": "#444444", "weight": 1},
        highlight_function=lambda _: {"weight": 3, "color": "#000000"},
        smooth_factor=0.5,
    )
    layer.add_to(m)
    # A switch between the three colourings, and one legend block per metric (one shown).
    switch = "".join(
        f'<label style="margin-right:6px"><input type="radio" name="gis-metric" '
        f'value="{each.value}"{" checked" if each is metric else ""} '
        f'onchange="gisSetMetric(this.value)"> {esc(METRIC_SHORT[each])}</label>'
        for each in GridMetric
    )
    hidden = ' style="display:none"'
    blocks = "".join(
        f'<div class="gis-metric" data-metric="{each.value}"{"" if each is metric else hidden}>'
        f"<b>{esc(METRIC_LABELS[each])}</b><br>{scales[each][1]}</div>"
        for each in GridMetric
    )
    return layer, f'<div id="gis-metric-switch">{switch}</div>{blocks}'


def _hotspots_layer(m: folium.Map, data: CommandRoomData, project: Projector) -> folium.GeoJson:
    """Grids coloured by their Gi* class (FDR-corrected); off until chosen in the control."""
    features = [
        {
            "type": "Feature",
            "geometry": project.geometry(cell.geom),
            "properties": {
                "code": cell.code,
                "name": cell.name,
                "label": cell.label,
                "count": cell.count,
                "z": cell.z,
                "p": cell.p,
                "colour": cell.colour,
            },
        }
        for cell in data.hotspots
    ]
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=HOTSPOTS_LAYER,
        show=False,
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "fillOpacity": 0.7,
            "color": "#555555",
            "weight": 1,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", "label", "count", "z", "p"],
            aliases=["网格 Grid", "名称 Name", "类别 Class", "案件 Cases", "Gi* z", "p"],
        )
        if features
        else None,
    )
    layer.add_to(m)
    return layer


class _MetricSwitch(MacroElement):
    """Recolours the grids by the chosen metric and shows that metric's legend, in the page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.gisSetMetric = function (metric) {
            {{ this.layer.get_name() }}.setStyle(function (feature) {
                return {fillColor: feature.properties['fill_' + metric]};
            });
            document.querySelectorAll('.gis-metric').forEach(function (block) {
                block.style.display = block.dataset.metric === metric ? '' : 'none';
            });
        };
        {% endmacro %}
        """
    )

    def __init__(self, layer: folium.GeoJson) -> None:
        super().__init__()
        self._name = "MetricSwitch"
        self.layer = layer


def _swatch(colour: str, label: str, *, square: bool = False, ring: str | None = None) -> str:
    radius = "2px" if square else "50%"
    border = f"2px solid {ring}" if ring else "1px solid #555"
    return (
        f'<span style="display:inline-block;width:11px;height:11px;margin-right:4px;'
        f'vertical-align:-1px;background:{colour};border:{border};border-radius:{radius}"></span>'
        f"{esc(label)}<br>"
    )


def _heat_layers(
    m: folium.Map, data: CommandRoomData, project: Projector
) -> plugins.HeatMapWithTime:
    if data.heat:
        peak = max(cell.count for cell in data.heat)
        latlons = project.points([c.lon for c in data.heat], [c.lat for c in data.heat])
        points = [
            [lat, lon, round(cell.count / peak, 4)]
            for (lat, lon), cell in zip(latlons, data.heat, strict=True)
        ]
    else:
        points = []
    plugins.HeatMap(points, name=HEAT_LAYER, radius=18, blur=14, min_opacity=0.3).add_to(m)
    frame_peak = max((c.count for f in data.frames for c in f.cells), default=1)
    frames = []
    for frame in data.frames:
        latlons = project.points([c.lon for c in frame.cells], [c.lat for c in frame.cells])
        frames.append(
            [
                [lat, lon, round(cell.count / frame_peak, 4)]
                for (lat, lon), cell in zip(latlons, frame.cells, strict=True)
            ]
        )
    time_view = plugins.HeatMapWithTime(
        frames,
        index=[frame.label for frame in data.frames],
        name=TIME_LAYER,
        radius=22,
        min_opacity=0.2,
        max_opacity=0.8,
        auto_play=False,
        show=False,
        position="bottomright",
    )
    time_view.add_to(m)
    return time_view


class _ShowWithLayer(MacroElement):
    """Shows the time view's slider only while its layer is switched on."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this.map.get_name() }};
            var layer = {{ this.layer.get_name() }};
            var control = {{ this.layer._control_name }};
            function sync() {
                control.getContainer().style.display = map.hasLayer(layer) ? '' : 'none';
            }
            map.on('overlayadd overlayremove', sync);
            sync();
        })();
        {% endmacro %}
        """
    )

    def __init__(self, m: folium.Map, layer: plugins.HeatMapWithTime) -> None:
        super().__init__()
        self._name = "ShowWithLayer"
        self.map = m
        self.layer = layer


# The cases of a layer travel as short rows [lat, lon, kind, unit, id, grid, deadline]; "kind"
# (platform + category + status, a few dozen combinations) and "unit" index lookup tables, and
# popups are assembled in the browser when opened. That keeps 2,000 markers near 130 kB, where a
# folium Marker with its own popup per case costs ~1 kB each.
_CASE_CALLBACK = """
(function () {
    var kinds = %(kinds)s;
    var units = %(units)s;
    var overdue = %(overdue)s;
    return function (row) {
        var kind = kinds[row[2]];
        var marker = L.circleMarker(new L.LatLng(row[0], row[1]), {
            radius: 7, fillColor: kind[0], color: overdue ? '%(ring)s' : '#ffffff',
            weight: overdue ? 3 : 1, fillOpacity: 0.9, caseId: row[4]
        });
        marker.bindPopup(function () {
            return kind[1] + '期限 Deadline: ' + row[6]
                + (overdue ? ' <b style="color:%(ring)s">超期 overdue</b>' : '')
                + '<br>单位 Unit: ' + (row[3] < 0 ? '—' : units[row[3]])
                + '<br>#' + row[4] + ' · 网格 Grid ' + row[5];
        }, {maxWidth: 320});
        return marker;
    };
})()
"""


def _script_json(value: object) -> str:
    """JSON to embed in a <script>: compact, Chinese kept as is, no closing tag possible."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _case_layer(
    m: folium.Map, name: str, cases: Capped, overdue: bool, project: Projector
) -> plugins.FastMarkerCluster:
    latlons = project.points([c.lon for c in cases.items], [c.lat for c in cases.items])
    kinds: dict[tuple[str, str, str, str], int] = {}
    units: dict[str, int] = {}
    for case in cases.items:
        kinds.setdefault((case.platform, case.category_zh, case.category_en, case.status), 0)
        if case.unit_name:
            units.setdefault(case.unit_name, 0)
    # Sorted, so the tables (and the page) do not depend on the order rows came in.
    kind_index = {key: i for i, key in enumerate(sorted(kinds))}
    unit_index = {key: i for i, key in enumerate(sorted(units))}
    kind_table = []
    for platform, category_zh, category_en, status in sorted(kinds):
        platform_zh = PLATFORM_NAMES_ZH.get(Platform(platform), platform)
        kind_table.append(
            [
                PLATFORM_COLOURS.get(platform, "#000000"),
                f"<b>{esc(category_zh)}</b> {esc(category_en)}<br>"
                f"平台 Platform: {esc(platform_zh)} {esc(platform)}<br>"
                f"状态 Status: {esc(status)}<br>",
            ]
        )
    rows = [
        [
            lat,
            lon,
            kind_index[(case.platform, case.category_zh, case.category_en, case.status)],
            unit_index[case.unit_name] if case.unit_name else -1,
            case.id,
            esc(case.grid_code or "—"),
            _when(case.due_at),
        ]
        for (lat, lon), case in zip(latlons, cases.items, strict=True)
    ]
    callback = _CASE_CALLBACK % {
        "kinds": _script_json(kind_table),
        "units": _script_json([esc(name) for name in sorted(units)]),
        "overdue": "true" if overdue else "false",
        "ring": OVERDUE_RING,
    }
    layer = plugins.FastMarkerCluster(
        rows, callback=callback, name=name, disableClusteringAtZoom=17
    )
    layer.add_to(m)
    return layer


def _units_layer(m: folium.Map, units: list[UnitPoint], project: Projector) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=UNITS_LAYER)
    for unit in units:
        colour, status = UNIT_STATUS.get(unit.status, ("black", unit.status))
        lat, lon = project.point(unit.lon, unit.lat)
        folium.Marker(
            [lat, lon],
            icon=folium.Icon(
                color=colour, icon=UNIT_ICONS.get(unit.unit_type, "circle"), prefix="fa"
            ),
            tooltip=f"{esc(unit.name)} · {esc(status)}",
            popup=folium.Popup(
                f"<b>{esc(unit.name)}</b><br>{esc(' '.join(unit_type_names(unit.unit_type)))} · "
                f"{esc(unit.platform)}<br>"
                f"状态 Status: {esc(status)}<br>{esc(unit.code)}",
                max_width=280,
            ),
            unit_code=unit.code,  # the live updates find the marker by it
        ).add_to(group)
    group.add_to(m)
    return group


def _cameras_layer(m: folium.Map, cameras: list[CameraView], project: Projector) -> folium.GeoJson:
    features = [
        {
            "type": "Feature",
            "geometry": project.geometry(camera.view),
            "properties": {
                "code": camera.code,
                "name": camera.name,
                "status": CAMERA_STATUS.get(camera.status, ("#000000", camera.status))[1],
                "colour": CAMERA_STATUS.get(camera.status, ("#000000", camera.status))[0],
            },
        }
        for camera in cameras
    ]
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=CAMERAS_LAYER,
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": f["properties"]["colour"],
            "weight": 1,
            "fillOpacity": 0.3,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", "status"], aliases=["天眼 Camera", "名称 Name", "状态 Status"]
        )
        if features
        else None,
    )
    layer.add_to(m)
    return layer


def _legend(data: CommandRoomData, grids_legend: str) -> str:
    parts = [grids_legend, "<b>平台 Platform</b><br>"]
    for platform, colour in PLATFORM_COLOURS.items():
        parts.append(_swatch(colour, f"{PLATFORM_NAMES_ZH[Platform(platform)]} {platform}"))
    parts.append(_swatch("#ffffff", "超期 overdue", ring=OVERDUE_RING))
    parts.append("<b>处置力量 Units</b><br>")
    for _, (colour, label) in UNIT_STATUS.items():
        parts.append(_swatch(colour, label))
    parts.append("<b>天眼 Cameras</b><br>")
    for colour, label in CAMERA_STATUS.values():
        parts.append(_swatch(colour, label, square=True))
    parts.append("<b>热点 Hotspots</b> (Gi*, FDR)<br>")
    if data.hotspots:
        shown = sorted({(c.colour, c.label) for c in data.hotspots}, key=lambda c: c[1])
        parts.extend(_swatch(colour, label, square=True) for colour, label in shown)
    else:
        parts.append(f'<span class="gis-hotspots-note">{esc(data.hotspots_note)}</span><br>')
    for capped, what in ((data.open_cases, "未超期 in time"), (data.overdue_cases, "超期 overdue")):
        if capped.truncated:
            parts.append(
                f'<span style="color:#b00020">显示 showing {len(capped.items):,} / '
                f"{capped.total:,} {what}（最紧急 most urgent first）</span><br>"
            )
    return "".join(parts)


def _figure(name: str, value: str, *, key: bool = False, live: bool = False) -> str:
    """One figure of the title (its label from FIGURE_LABELS), marked so a phone's one-line
    title (only the ``key`` ones) and the wall's large figures can style it, and a test can read
    it; each carries its own separator, so hiding one leaves no stray dot. A ``live`` one is
    kept current by the live feed (gis/web/common/live.js finds it by data-gis-count)."""
    zh, _, en = FIGURE_LABELS[name].partition(" ")
    count = f' data-gis-count="{name}"' if live else ""
    return (
        f'<span class="gis-figure{" gis-key" if key else ""}" data-figure="{name}">'
        f'<span class="gis-sep"> · </span>{zh}<span class="gis-en"> {en}</span> '
        f"<b{count}>{value}</b></span>"
    )


def _title(data: CommandRoomData) -> str:
    town = data.town
    english = f" — {esc(town.name_en)} command room" if town.name_en else " — command room"
    filters = [
        f"{esc(label)}: {esc(value)}"
        for label, value in (("平台 platform", data.platform), ("类别 category", data.category))
        if value
    ]
    since = data.since.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    until = data.until.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    figures = data.town_figures
    period = [
        _figure("received", f"{figures.received:,}", key=True),
        _figure("closure_rate", _pct(figures.closure_rate), key=True),
        _figure("on_time_rate", _pct(figures.on_time_rate)),
        _figure("overdue_open", f"{figures.overdue_open:,}"),
    ]
    # The "now" counts follow the live feed (gis/web/common/live.js finds them by data-gis-count);
    # the period's figures are /stats' and stay as built.
    open_now = data.open_cases.total + data.overdue_cases.total
    now = [
        _figure("open_now", f"{open_now:,}", live=True),
        _figure("overdue_now", f"{data.overdue_cases.total:,}", key=True, live=True),
    ]
    as_of = f" (统计截至 as of {_when(data.figures_as_of)})" if data.figures_as_of else ""
    return (
        f'<div class="gis-title-name">{esc(town.name)}<span class="gis-room"> 综合信息指挥室</span>'
        f'<span class="gis-en">{english}</span></div>'
        f'<div class="gis-title-line"><span class="gis-period">{since} – {until} (UTC+8)</span>'
        + "".join(period)
        + f'<span class="gis-period gis-as-of">{as_of}</span></div>'
        + '<div class="gis-title-line">'
        + "".join(now)
        + (f'<span class="gis-filters"> · {" · ".join(filters)}</span>' if filters else "")
        + "</div>"
    )


def build_command_room_map(
    data: CommandRoomData,
    *,
    basemap: Basemap | TileSource = Basemap.OSM,
    metric: GridMetric = GridMetric.LOAD,
    tianditu_key: str | None = None,
    live: LiveFeed | None = None,
    kiosk: bool = False,
) -> folium.Map:
    """The command-room map of one town from its data (no database access here); with
    ``live``, the page then listens to the event stream and redraws itself; ``kiosk``: the
    wall's view (no controls, a discreet legend, large figures, a clock)."""
    m, project = start_map(data.town.bounds, basemap, tianditu_key=tianditu_key, kiosk=kiosk)
    add_outline(
        m,
        project,
        data.town.geom,
        name=BOUNDARY_LAYER,
        style={"color": "#222222", "weight": 3, "dashArray": "6"},
    )
    grids, grids_legend = _grids_layer(m, data.grids, metric, project)
    _MetricSwitch(grids).add_to(m)
    _hotspots_layer(m, data, project)
    time_view = _heat_layers(m, data, project)
    open_layer = _case_layer(m, OPEN_LAYER, data.open_cases, False, project)
    overdue_layer = _case_layer(m, OVERDUE_LAYER, data.overdue_cases, True, project)
    units_layer = _units_layer(m, data.units, project)
    cameras_layer = _cameras_layer(m, data.cameras, project)
    add_layer_control(m)
    if live is not None:
        add_live_updates(
            m,
            live,
            layers=(open_layer, overdue_layer, units_layer, cameras_layer, grids),
            centre=(data.town.geom.centroid.x, data.town.geom.centroid.y),
            project=project,
            platform=data.platform,
            category=data.category,
            styles={
                "colours": PLATFORM_COLOURS,
                "ring": OVERDUE_RING,
                "unitStatus": UNIT_STATUS,
                "cameraStatus": CAMERA_STATUS,
            },
        )
    # After the layer control, whose events it listens to.
    _ShowWithLayer(m, time_view).add_to(m)
    add_panel(m, _title(data), role="title", element_id="gis-title")
    add_panel(m, _legend(data, grids_legend), role="legend", element_id="gis-legend")
    return m
