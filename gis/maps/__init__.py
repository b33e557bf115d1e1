"""Folium maps for the command room. Builders take data (``gis.maps.data``), never a session, so
the API, the CLI and notebooks share them; ``gis.services.mapdata`` gathers that data."""

from gis.maps.base import Basemap, feature_counts, parse_basemap, render
from gis.maps.command_room import GridMetric, build_command_room_map
from gis.maps.village import build_village_grids_map

__all__ = [
    "Basemap",
    "GridMetric",
    "build_command_room_map",
    "build_village_grids_map",
    "feature_counts",
    "parse_basemap",
    "render",
]
