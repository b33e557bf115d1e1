"""The command-room and village maps built from the hand-made town: layers, counts, bounds,
determinism, basemaps and the GCJ-02 shift."""

from __future__ import annotations

import dataclasses
import json
import re

import folium
import pytest
from folium import plugins
from shapely.geometry import shape
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import geodesic_distance_m, wgs84_to_gcj02
from gis.maps import (
    Basemap,
    GridMetric,
    build_command_room_map,
    build_village_grids_map,
    feature_counts,
    parse_basemap,
    render,
)
from gis.maps import command_room as cr
from gis.maps.assets import LOCAL_PATHS
from gis.maps.data import CommandRoomData
from gis.services.mapdata import CaseFilter, command_room_data, village_grids_data
from tests.conftest import count
from tests.maps.town import (
    EXPECTED,
    NOW,
    SINCE,
    TOWN,
    TOWN_BOUNDS,
    UNTIL,
    VILLAGE_1,
    page_text,
)


def _data(session: Session, **kwargs: object) -> CommandRoomData:
    return command_room_data(
        session,
        town_code=TOWN,
        since=SINCE,
        until=UNTIL,
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def _fit_bounds(m: folium.Map) -> list[list[float]]:
    (fit,) = [c for c in m._children.values() if isinstance(c, folium.map.FitBounds)]
    return fit.bounds  # type: ignore[no-any-return]


def _layer(m: folium.Map, name: str) -> folium.map.Layer:
    (layer,) = [c for c in m._children.values() if getattr(c, "layer_name", None) == name]
    return layer


def test_rendering_twice_gives_identical_html(session: Session, town: dict[str, int]) -> None:
    data = _data(session)
    first = render(build_command_room_map(data))
    second = render(build_command_room_map(_data(session)))
    assert first == second
    assert "Control = new L.Control.TimeDimensionCustom" in first


def test_every_layer_is_present_by_name_with_the_layer_control(
    session: Session, town: dict[str, int]
) -> None:
    m = build_command_room_map(_data(session))
    assert set(feature_counts(m)) == set(cr.LAYERS)
    html = render(m)
    assert "L.control.layers(" in html
    for name in cr.LAYERS:
        assert json.dumps(name) in html


def test_feature_counts_of_each_layer_match_the_database(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session)
    counts = feature_counts(build_command_room_map(data))
    town_filter = f"town_code = '{TOWN}'"
    period = "reported_at >= '2026-10-01T00:00+08:00' AND reported_at < '2026-11-01T00:00+08:00'"
    assert sum(cell.count for cell in data.heat) == count(
        session, f"incidents WHERE {town_filter} AND {period}"
    )
    assert counts[cr.HEAT_LAYER] == len(data.heat) == 6
    assert counts[cr.TIME_LAYER] == sum(len(f.cells) for f in data.frames)
    open_where = (
        f"incidents WHERE {town_filter} AND status NOT IN "
        "('closed','cancelled','duplicate','resolved') AND reported_at < '2026-11-01T00:00+08:00'"
    )
    assert counts[cr.OVERDUE_LAYER] == count(
        session, f"{open_where} AND due_at < '2026-11-01T12:00Z'"
    )
    assert counts[cr.OPEN_LAYER] == count(
        session, f"{open_where} AND due_at >= '2026-11-01T12:00Z'"
    )
    assert counts[cr.GRIDS_LAYER] == count(
        session, f"grids WHERE {town_filter} AND valid_to IS NULL"
    )
    assert counts[cr.UNITS_LAYER] == EXPECTED.units
    assert counts[cr.CAMERAS_LAYER] == EXPECTED.cameras
    assert counts[cr.BOUNDARY_LAYER] == 1


def test_map_is_fitted_to_the_town(session: Session, town: dict[str, int]) -> None:
    m = build_command_room_map(_data(session))
    minx, miny, maxx, maxy = TOWN_BOUNDS
    assert _fit_bounds(m) == [[miny, minx], [maxy, maxx]]
    assert f"fitBounds(\n                [[{miny}, {minx}], [{maxy}, {maxx}]]" in render(m)


def test_heat_weights_are_relative_to_the_busiest_cell(
    session: Session, town: dict[str, int]
) -> None:
    heat = _layer(build_command_room_map(_data(session)), cr.HEAT_LAYER)
    assert isinstance(heat, plugins.HeatMap)
    weights = sorted(row[2] for row in heat.data)
    assert weights[-1] == 1.0 and weights[0] == 0.5


def test_amap_basemap_shifts_every_overlay_to_gcj02(session: Session, town: dict[str, int]) -> None:
    data = _data(session)
    plain = build_command_room_map(data)
    shifted = build_command_room_map(data, basemap=Basemap.AMAP)
    cell = data.heat[0]
    lon, lat = wgs84_to_gcj02(cell.lon, cell.lat)
    heat = _layer(shifted, cr.HEAT_LAYER)
    assert heat.data[0][:2] == [round(lat, 6), round(lon, 6)]
    # Around here GCJ-02 is a few hundred metres off WGS84; the fit moves with the overlays.
    (s0, w0), _ = _fit_bounds(plain)
    (s1, w1), _ = _fit_bounds(shifted)
    assert 100 < geodesic_distance_m(w0, s0, w1, s1) < 1_000
    gcj_lon, gcj_lat = wgs84_to_gcj02(TOWN_BOUNDS[0], TOWN_BOUNDS[1])
    assert (s1, w1) == (round(gcj_lat, 6), round(gcj_lon, 6))
    grids = _layer(shifted, cr.GRIDS_LAYER)
    west = shape(grids.data["features"][0]["geometry"]).bounds[0]
    assert west == pytest.approx(gcj_lon, abs=1e-6)
    assert "autonavi.com" in render(shifted)


def test_tianditu_needs_a_key_and_uses_it(session: Session, town: dict[str, int]) -> None:
    data = _data(session)
    with pytest.raises(ValidationError, match="GIS_TIANDITU_KEY"):
        build_command_room_map(data, basemap=Basemap.TIANDITU)
    html = render(build_command_room_map(data, basemap=Basemap.TIANDITU, tianditu_key="k123"))
    assert "tianditu.gov.cn/vec_w/wmts" in html and "tk=k123" in html
    assert "cva_w" in html  # the Chinese labels layer over the vector map


def test_unknown_basemap_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="osm, tianditu, tianditu_satellite, amap"):
        parse_basemap("google")


def test_title_and_legend_are_chinese_with_english(session: Session, town: dict[str, int]) -> None:
    html = render(build_command_room_map(_data(session)))
    assert "高家镇 综合信息指挥室 — Gaojia command room" in page_text(html)  # plain HTML
    assert "每千户案件 Cases per 1,000 households" in html
    assert "综合执法 enforcement" in html


@pytest.mark.parametrize(
    ("metric", "label"),
    [(GridMetric.CLOSURE, "办结率 Closure rate"), (GridMetric.ON_TIME, "按期办结率 On-time rate")],
)
def test_grids_can_be_coloured_by_rates(
    session: Session, town: dict[str, int], metric: GridMetric, label: str
) -> None:
    m = build_command_room_map(_data(session), metric=metric)
    grids = _layer(m, cr.GRIDS_LAYER)
    fills = {f["properties"]["code"]: f["properties"]["fill"] for f in grids.data["features"]}
    if metric is GridMetric.CLOSURE:
        # G1 and G4 closed everything (best), G2 and G3 nothing (worst).
        assert fills["G1"] == cr.RATE_PALETTE[-1] and fills["G2"] == cr.RATE_PALETTE[0]
    else:
        assert fills["G2"] == cr.NO_DATA  # nothing closed: no on-time rate
    assert label in render(m)


def test_grid_tooltip_carries_code_member_counts_and_rates(
    session: Session, town: dict[str, int]
) -> None:
    grids = _layer(build_command_room_map(_data(session)), cr.GRIDS_LAYER)
    g1 = next(f["properties"] for f in grids.data["features"] if f["properties"]["code"] == "G1")
    assert g1["members"] == "李一"
    assert (g1["received"], g1["closed"], g1["per_1000"], g1["closure"], g1["on_time"]) == (
        3,
        3,
        "30.0",
        "100.0%",
        "66.7%",
    )
    assert (g1["closure_rate"], g1["on_time_rate"]) == (1.0, 0.6667)  # as /stats rounds them
    # The period's overdue and the "now" counts are different figures with different labels.
    assert (g1["overdue_open"], g1["open_now"], g1["overdue_now"]) == (0, 1, 0)
    g2 = next(f["properties"] for f in grids.data["features"] if f["properties"]["code"] == "G2")
    assert (g2["overdue_open"], g2["open_now"], g2["overdue_now"]) == (1, 2, 1)
    (tooltip,) = [c for c in grids._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    aliases = tooltip.aliases
    assert {cr.FIGURE_LABELS["overdue_open"], cr.FIGURE_LABELS["overdue_now"]} <= set(aliases)
    assert len(set(aliases)) == len(aliases)


def test_title_shows_the_towns_period_figures_and_the_counts_of_now(
    session: Session, town: dict[str, int]
) -> None:
    # As a person reads it: figures and live counters sit in <span>s.
    html = page_text(render(build_command_room_map(_data(session))))
    # 7 received, 4 closed of 7 valid, 3 of 4 on time; 2 of them overdue (G2, G3) at NOW.
    assert "受理 Received 7 · 办结率 Closure rate 57.1% · 按期办结率 On-time rate 75.0%" in html
    assert "期内超期 Overdue (period) 2" in html
    # Now: the September case too (4 open: G2 twice, G3 and it), the same 2 overdue.
    assert "现未结 Open now 4 · 现超期 Overdue now 2" in html


def test_case_markers_carry_category_status_deadline_and_unit(
    session: Session, town: dict[str, int]
) -> None:
    layer = _layer(build_command_room_map(_data(session)), cr.OPEN_LAYER)
    assert isinstance(layer, plugins.FastMarkerCluster)
    market = next(row for row in layer.data if row[5] == "G2")
    assert market[6] == "2099-01-01 08:00"  # the deadline, China time
    # Category, platform and status come from the kind table, the unit from the unit table.
    assert "<b>食品安全<\\/b> Food safety<br>平台 Platform: 市场监管 market" in layer.callback
    assert "状态 Status: in_progress" in layer.callback
    assert '"高家市场监管所"' in layer.callback


def test_names_from_the_database_are_escaped(session: Session, town: dict[str, int]) -> None:
    data = _data(session)
    hostile = type(data.units[0])(**{**vars(data.units[0]), "name": "<script>alert(1)</script>"})
    data.units[0] = hostile
    html = render(build_command_room_map(data))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_truncated_markers_are_announced_in_the_legend(
    session: Session, town: dict[str, int]
) -> None:
    html = render(build_command_room_map(_data(session, max_markers=1)))
    assert "显示 showing 1 / 2 超期 overdue" in html


def test_local_assets_replace_every_cdn_link(session: Session, town: dict[str, int]) -> None:
    html = render(build_command_room_map(_data(session)), assets_url="/maps/assets")
    assert "cdn.jsdelivr.net" not in html and "cdnjs.cloudflare.com" not in html
    assert "code.jquery.com" not in html and "netdna.bootstrapcdn.com" not in html
    assert '<script src="/maps/assets/leaflet@1.9.3/dist/leaflet.js">' in html
    assert (
        "url('/maps/assets/bootstrap@3.3.7/dist/fonts/glyphicons-halflings-regular.woff2')" in html
    )
    # Other maps built afterwards still default to the CDNs (instance attributes only).
    assert "cdn.jsdelivr.net" in render(build_command_room_map(_data(session)))
    assert all(url.startswith("https://") for url in LOCAL_PATHS)


def test_empty_town_renders_with_empty_layers(session: Session, town: dict[str, int]) -> None:
    data = command_room_data(
        session,
        town_code=TOWN,
        since=SINCE,
        until=UNTIL,
        now=NOW,
        cases=CaseFilter(category="land_dispute"),
    )
    counts = feature_counts(build_command_room_map(data))
    assert counts[cr.HEAT_LAYER] == 0 and counts[cr.OPEN_LAYER] == 0
    assert counts[cr.GRIDS_LAYER] == 4


def test_village_map_labels_each_grid_with_its_members(
    session: Session, town: dict[str, int]
) -> None:
    data = village_grids_data(session, village_code=VILLAGE_1)
    m = build_village_grids_map(data)
    html = render(m)
    assert html == render(
        build_village_grids_map(village_grids_data(session, village_code=VILLAGE_1))
    )
    assert "高家镇东山村 网格图 — Dongshan grids" in page_text(html)
    icons = [json.loads(text) for text in re.findall(r'"html": ("(?:[^"\\]|\\.)*")', html)]
    assert len(icons) == 2
    assert "<b>G1</b><br>G1网格<br>李一" in icons[0] and "<b>G2</b><br>G2网格<br>王二" in icons[1]
    counts = feature_counts(m)
    assert counts["网格 Grids"] == 2 and counts["标注 Labels"] == 2
    assert _fit_bounds(m) == [[29.0, 111.0], [29.03, 111.02]]


def test_a_town_without_grids_cameras_units_or_cases_still_renders(
    session: Session, town: dict[str, int]
) -> None:
    data = dataclasses.replace(
        _data(session, cases=CaseFilter(category="land_dispute")), grids=[], cameras=[], units=[]
    )
    m = build_command_room_map(data)
    assert set(feature_counts(m).values()) == {0, 1}  # only the town boundary has a feature
    assert "高家镇" in render(m)


def test_the_page_can_switch_the_grid_colouring_between_the_three_metrics(
    session: Session, town: dict[str, int]
) -> None:
    m = build_command_room_map(_data(session), metric=GridMetric.CLOSURE)
    grids = _layer(m, cr.GRIDS_LAYER)
    g2 = next(f["properties"] for f in grids.data["features"] if f["properties"]["code"] == "G2")
    assert g2["fill"] == g2["fill_closure"] == cr.RATE_PALETTE[0]
    assert g2["fill_on_time"] == cr.NO_DATA
    assert g2["fill_load"] in cr.LOAD_PALETTE
    html = render(m)
    assert "window.gisSetMetric = function (metric)" in html
    assert '<div class="gis-metric" data-metric="closure"><b>办结率 Closure rate</b>' in html
    assert '<div class="gis-metric" data-metric="load" style="display:none">' in html
    assert 'value="closure" checked' in html


def test_hotspot_layer_is_empty_with_the_reason_when_inference_is_impossible(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session)
    assert data.hotspots == [] and "at least 5" in data.hotspots_note
    m = build_command_room_map(data)
    assert feature_counts(m)[cr.HOTSPOTS_LAYER] == 0
    assert "gis-hotspots-note" in render(m)


def test_hotspot_layer_shows_the_hotspot_service_classes(session: Session, catalog: int) -> None:
    from datetime import timedelta

    import numpy as np

    from gis.services import hotspots
    from tests.services.analytics_fixtures import TOWN as LATTICE_TOWN
    from tests.services.analytics_fixtures import WEEK_0, add_cases, build_lattice

    build_lattice(session, 8, 8)
    counts = np.random.default_rng(2).poisson(2.0, size=(8, 8))
    counts[2:5, 2:5] += 12
    add_cases(session, counts)
    until = WEEK_0 + timedelta(weeks=1)
    data = command_room_data(session, town_code=LATTICE_TOWN, since=WEEK_0, until=until, now=NOW)
    expected = hotspots.find_hotspots(
        session, hotspots.HotspotQuery(LATTICE_TOWN, WEEK_0, until, seed=0)
    )
    assert [(c.code, c.colour, c.label) for c in data.hotspots] == [
        (g.code, g.colour, g.label) for g in expected.grids
    ]
    assert any(c.label.startswith("热点") for c in data.hotspots)
    m = build_command_room_map(data)
    assert feature_counts(m)[cr.HOTSPOTS_LAYER] == 64
    layer = _layer(m, cr.HOTSPOTS_LAYER)
    colours = {f["properties"]["code"]: f["properties"]["colour"] for f in layer.data["features"]}
    assert colours == {g.code: g.colour for g in expected.grids}
    assert json.dumps(cr.HOTSPOTS_LAYER) in render(m)
