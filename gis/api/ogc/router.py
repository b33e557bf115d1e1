"""The one router of every ``/ogc`` route (features, tiles, the API document), so that
``/ogc/api`` can document exactly these routes."""

from __future__ import annotations

from fastapi import APIRouter

from gis.api.deps import StaleReadOk
from gis.api.ogc.errors import EXCEPTION_RESPONSES, OgcRoute

router = APIRouter(
    prefix="/ogc",
    tags=["ogc"],
    route_class=OgcRoute,
    # Items and tiles may be read from a replica (gis.api.reads).
    dependencies=[StaleReadOk],
    responses=EXCEPTION_RESPONSES,
    # OGC has its own OpenAPI document (/ogc/api); the main one stays the JSON API's.
    include_in_schema=False,
)
