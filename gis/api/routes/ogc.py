"""The OGC API (``gis.api.ogc``), mounted like every other router."""

from gis.api.ogc import router

__all__ = ["router"]
