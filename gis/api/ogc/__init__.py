"""The OGC API under ``/ogc``: Features (Parts 1–3) and vector tiles, with its own OpenAPI
document at ``/ogc/api`` (its routes are left out of the main ``/openapi.json``)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from gis import __version__
from gis.api.deps import SettingsDep
from gis.api.ogc import features, plans, tiles  # noqa: F401  (their routes register on the router)
from gis.api.ogc.router import router
from gis.errors import NotFoundError
from gis.services.ogc_filter import FILTER_LANGS

OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
PREFIX = "/ogc"
_OGC_NAMES = {"collection_id": "collectionId", "feature_id": "featureId"}

__all__ = ["router"]

# A draft plan's collection (/collections/plan-{id}-grids/…) must match before the generic
# /collections/{collection_id}/…, whatever order the modules registered their routes in.
router.routes.sort(key=lambda route: "/collections/plan-{" not in getattr(route, "path", ""))


def openapi_document(request: Request, max_limit: int) -> dict[str, Any]:
    """The OpenAPI 3 document of the /ogc routes, with the ``limit`` maximum (a setting) that
    QGIS reads from it."""
    routes = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            shown = copy.copy(route)
            shown.include_in_schema = True
            routes.append(shown)
    base = str(request.base_url).rstrip("/") + PREFIX
    document = get_openapi(
        title="gis — OGC API – Features and vector tiles",
        version=__version__,
        openapi_version="3.0.3",
        description="Towns, villages, grids, incidents, cameras, units and roads. Send "
        "'Authorization: Bearer <token>' for the layers that need one.",
        routes=routes,
        servers=[{"url": base}],
    )
    # Paths relative to the API's root, with OGC's parameter names: GDAL looks up
    # "/collections/{collectionId}/items" to learn the parameters.
    paths = {}
    for path, item in document["paths"].items():
        path = path.removeprefix(PREFIX) or "/"
        for name, ogc_name in _OGC_NAMES.items():
            path = path.replace("{" + name + "}", "{" + ogc_name + "}")
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                parameter["name"] = _OGC_NAMES.get(parameter["name"], parameter["name"])
        paths[path] = item
    document["paths"] = paths
    for parameter in paths["/collections/{collectionId}/items"]["get"]["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"].update({"maximum": max_limit, "default": 10, "minimum": 1})
        if parameter["name"] == "filter-lang":
            # "cql-text" is the pre-1.0 name GDAL < 3.7 looks for before it sends a filter.
            parameter["schema"] = {"type": "string", "enum": [*FILTER_LANGS, "cql-text"]}
    document["components"]["securitySchemes"] = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
    document["security"] = [{"HTTPBearer": []}, {}]
    return document


@router.get("/api", summary="The API definition")
def api(request: Request, settings: SettingsDep) -> JSONResponse:
    """This API's OpenAPI 3 document."""
    return JSONResponse(openapi_document(request, settings.ogc_max_limit), media_type=OPENAPI)


# Last: anything else under /ogc is an OGC 404, not the JSON API's.
@router.get("/{path:path}")
def unknown(path: str) -> JSONResponse:
    """No such resource."""
    raise NotFoundError(f"no resource /ogc/{path}")
