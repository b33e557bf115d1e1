"""gis — a grid-management GIS for grassroots-governance command rooms."""

__version__ = "0.1.0"
