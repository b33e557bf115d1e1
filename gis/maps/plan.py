"""The preview of a boundary plan: old grids dashed, new grids filled, problems in red, moving
cases marked. Pure: data in, a folium map out (the API, the CLI and notebooks share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import folium
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gis.maps.base import Basemap, TileSource, add_layer_control, add_panel, esc, start_map

# Distinct fills for neighbouring proposed grids (ColorBrewer Set2, colour-blind safe).
_FILLS = ["#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3"]
_PROBLEM_KINDS = ("overlap", "gap", "outside", "multi_piece", "invalid_geometry", "repaired")


@dataclass
class PlanPreview:
    """Everything the preview shows, already in WGS84 shapely geometries and plain dicts."""

    title: str
    status: str
    old_grids: list[tuple[str, BaseGeometry]]
    new_grids: list[tuple[str, str, BaseGeometry]]
    issues: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    moves_total: int = 0


def preview_from_plan(
    plan_id: int,
    status: str,
    proposed: dict[str, Any],
    validation: dict[str, Any],
    impact: dict[str, Any],
    old_grids: list[tuple[str, BaseGeometry]],
) -> PlanPreview:
    """A preview from a stored plan's JSON and the scope's grids before the plan."""
    new_grids = [
        (f["properties"]["code"], f["properties"].get("name") or "", shape(f["geometry"]))
        for f in proposed.get("features", [])
        if f.get("geometry")
    ]
    return PlanPreview(
        title=f"Plan {plan_id}",
        status=status,
        old_grids=old_grids,
        new_grids=new_grids,
        issues=[i for i in validation.get("issues", []) if i.get("geometry")],
        moves=list(impact.get("moves", [])),
        moves_total=int(impact.get("open_cases_moving", 0)),
    )


def plan_map(
    preview: PlanPreview,
    *,
    basemap: Basemap | TileSource = Basemap.OSM,
    tianditu_key: str | None = None,
) -> folium.Map:
    """The preview map of a plan."""
    everything = [g for _, g in preview.old_grids] + [g for _, _, g in preview.new_grids]
    bounds = shapely.union_all(everything).bounds if everything else (118.8, 28.9, 118.9, 29.0)
    m, project = start_map(bounds, basemap, tianditu_key=tianditu_key)

    new_layer = folium.FeatureGroup(name="New grids (filled)")
    for index, (code, name, geom) in enumerate(preview.new_grids):
        fill = _FILLS[index % len(_FILLS)]
        folium.GeoJson(
            {
                "type": "Feature",
                "geometry": project.geometry(geom),
                "properties": {"code": code, "name": name},
            },
            style_function=lambda _, fill=fill: {
                "color": "#1b5e20",
                "weight": 2,
                "fillColor": fill,
                "fillOpacity": 0.45,
            },
            tooltip=f"{esc(code)} {esc(name)}",
        ).add_to(new_layer)
    new_layer.add_to(m)

    old_layer = folium.FeatureGroup(name="Current grids (dashed)")
    for code, geom in preview.old_grids:
        folium.GeoJson(
            {"type": "Feature", "geometry": project.geometry(geom), "properties": {"code": code}},
            style_function=lambda _: {
                "color": "#333333",
                "weight": 2,
                "dashArray": "6 6",
                "fill": False,
            },
            tooltip=f"now: {esc(code)}",
        ).add_to(old_layer)
    old_layer.add_to(m)

    problems = folium.FeatureGroup(name="Gaps, overlaps and other problems (red)")
    for issue in preview.issues:
        if issue.get("kind") not in _PROBLEM_KINDS:
            continue
        error = issue.get("severity") == "error"
        folium.GeoJson(
            {
                "type": "Feature",
                "geometry": project.geometry(shape(issue["geometry"])),
                "properties": {"kind": issue["kind"]},
            },
            style_function=lambda _, error=error: {
                "color": "#d32f2f",
                "weight": 2,
                "fillColor": "#d32f2f",
                "fillOpacity": 0.6 if error else 0.25,
            },
            tooltip=esc(issue.get("message", issue["kind"])),
        ).add_to(problems)
    problems.add_to(m)

    moves = folium.FeatureGroup(name="Open cases changing grid")
    for move in preview.moves:
        lat, lon = project.point(move["lon"], move["lat"])
        folium.CircleMarker(
            [lat, lon],
            radius=6,
            color="#6a1b9a",
            fill=True,
            fill_opacity=0.9,
            tooltip=(
                f"case {esc(move['incident_id'])} ({esc(move.get('status'))}): "
                f"{esc(move.get('from'))} → {esc(move.get('to') or 'no grid')}"
            ),
        ).add_to(moves)
    moves.add_to(m)

    errors = sum(1 for i in preview.issues if i.get("severity") == "error")
    add_panel(
        m,
        f"<b>{esc(preview.title)}</b> · {esc(preview.status)}<br>"
        f"{len(preview.old_grids)} current → {len(preview.new_grids)} proposed grids<br>"
        f"{errors} error(s) on the map · {preview.moves_total} open case(s) change grid<br>"
        '<span style="border-bottom:2px dashed #333">current</span> · '
        '<span style="background:#66c2a5">proposed</span> · '
        '<span style="background:#d32f2f;color:#fff">problem</span> · '
        '<span style="color:#6a1b9a">● moving case</span>',
        role="legend",
        element_id="plan-legend",
    )
    add_layer_control(m)
    return m
