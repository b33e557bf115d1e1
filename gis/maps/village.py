"""A village's grids with labels and members: the map a planner prints and pins on the wall."""

from __future__ import annotations

import folium

from gis.maps.base import (
    Basemap,
    TileSource,
    add_layer_control,
    add_outline,
    add_panel,
    esc,
    grid_feature,
    grids_layer,
    start_map,
)
from gis.maps.data import VillageGridsData

GRIDS_LAYER = "网格 Grids"
LABELS_LAYER = "标注 Labels"
VILLAGE_LAYER = "村界 Village boundary"
# Distinct fills so neighbouring grids read apart on paper (ColorBrewer Set3, print-friendly).
FILLS = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#bc80bd",
    "#ccebc5",
)


def build_village_grids_map(
    data: VillageGridsData,
    *,
    basemap: Basemap | TileSource = Basemap.OSM,
    tianditu_key: str | None = None,
    kiosk: bool = False,
) -> folium.Map:
    """The printable grid map of one village from its data (no database access here)."""
    village = data.village
    m, project = start_map(village.bounds, basemap, tianditu_key=tianditu_key, kiosk=kiosk)
    add_outline(
        m, project, village.geom, name=VILLAGE_LAYER, style={"color": "#000000", "weight": 3}
    )
    features = [
        grid_feature(grid, project, population=grid.population, fill=FILLS[index % len(FILLS)])
        for index, grid in enumerate(data.grids)
    ]
    grids_layer(
        features,
        name=GRIDS_LAYER,
        tooltip={"population": "人口 Population"},
        outline={"color": "#333333", "weight": 2},
    ).add_to(m)
    labels = folium.FeatureGroup(name=LABELS_LAYER)
    for grid in data.grids:
        # The representative point is always inside the grid, unlike the centroid of an L shape.
        point = grid.geom.representative_point()
        lat, lon = project.point(point.x, point.y)
        members = "、".join(grid.members) or "（无网格员 no member）"
        folium.Marker(
            [lat, lon],
            icon=folium.DivIcon(
                html=(
                    # inline-block: shrink to the text, so the -50% shift centres it.
                    '<div style="display:inline-block;transform:translate(-50%,-50%);'
                    "white-space:nowrap;"
                    "text-align:center;font:12px/1.3 sans-serif;text-shadow:0 0 3px #fff,"
                    f'0 0 3px #fff"><b>{esc(grid.code)}</b><br>{esc(grid.name)}<br>'
                    f"{esc(members)}</div>"
                ),
                icon_size=(0, 0),
            ),
        ).add_to(labels)
    labels.add_to(m)
    add_layer_control(m)
    english = f" — {esc(village.name_en)} grids" if village.name_en else " — grids"
    households = sum(grid.households for grid in data.grids)
    add_panel(
        m,
        f'<div class="gis-title-name">{esc(data.town_name)}{esc(village.name)} '
        f'网格图<span class="gis-en">{english}</span></div><div class="gis-title-line">'
        f'<span class="gis-figure" data-figure="grids">{len(data.grids)} 个网格'
        f'<span class="gis-en"> grids</span></span> · <span class="gis-figure" '
        f'data-figure="households">{households:,} 户<span class="gis-en"> households</span>'
        f'</span><span class="gis-period"> · {esc(village.code)}</span></div>',
        role="title",
        element_id="gis-title",
    )
    return m
