"""Vector tiles of every collection (Mapbox Vector Tiles from ``ST_AsMVT``) on the
WebMercatorQuad matrix set (morecantile), with a TileJSON 3.0 document per collection.

Tiles are addressed ``{z}/{x}/{y}`` (XYZ order, what QGIS, MapLibre and Leaflet ask for); the
tileset's templated link says so. An empty tile is 204. The ETag is a hash of the tile, so it
changes exactly when what the tile shows changes; tiles of layers the caller's role scopes
(incidents) are ``private`` to the browser's cache and vary by credentials.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from gis.api.deps import SessionDep, database_of, settings_of
from gis.api.hot import fast_path
from gis.api.ogc.access import READERS, SCOPES, Reading, ReadingDep, reading_by
from gis.api.ogc.documents import base_url
from gis.api.ogc.router import router
from gis.api.reads import stale_read_ok
from gis.api.routes.incidents import use_autocommit
from gis.api.security import caller_of
from gis.errors import NotFoundError
from gis.services import ogc
from gis.services.ogc_collections import Collection

MVT = "application/vnd.mapbox-vector-tile"
TMS_ID = "WebMercatorQuad"
TmsId = Annotated[str, Path(max_length=40, description="Tile matrix set (WebMercatorQuad)")]
_MVT_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean"}


def _tms(tms_id: str) -> Any:
    if tms_id != TMS_ID:
        raise NotFoundError(f"no tile matrix set {tms_id!r}; the one served is {TMS_ID}")
    return ogc.WEB_MERCATOR


def _cache_control(collection: Collection) -> str:
    # Scoped layers differ per caller: no shared cache may keep them.
    if collection.id in SCOPES or not READERS[collection.id][1]:
        return "private, max-age=60"
    return "public, max-age=60"


@router.get("/tileMatrixSets", summary="Tile matrix sets")
def tile_matrix_sets(request: Request) -> JSONResponse:
    """The tile matrix sets tiles are served on."""
    href = f"{base_url(request)}/tileMatrixSets/{TMS_ID}"
    return JSONResponse(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": ogc.WEB_MERCATOR.title,
                    "uri": ogc.WEB_MERCATOR.uri,
                    "links": [
                        {
                            "href": href,
                            "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                            "type": "application/json",
                        }
                    ],
                }
            ]
        }
    )


@router.get("/tileMatrixSets/{tms_id}", summary="A tile matrix set")
def tile_matrix_set(tms_id: TmsId) -> JSONResponse:
    """The definition of a tile matrix set (OGC 2DTMS JSON)."""
    return JSONResponse(_tms(tms_id).model_dump(mode="json", exclude_none=True))


def _tile_template(request: Request, collection: Collection) -> str:
    return f"{base_url(request)}/collections/{collection.id}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}"


@router.get("/collections/{collection_id}/tiles", summary="Vector tilesets of a collection")
def tilesets(request: Request, read: ReadingDep) -> JSONResponse:
    """The collection's tilesets (one, on WebMercatorQuad)."""
    found = read.collection
    base = f"{base_url(request)}/collections/{found.id}/tiles/{TMS_ID}"
    return JSONResponse(
        {
            "tilesets": [
                {
                    "title": f"{found.title} (vector tiles)",
                    "dataType": "vector",
                    "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                    "tileMatrixSetURI": ogc.WEB_MERCATOR.uri,
                    "links": [
                        {"href": base, "rel": "self", "type": "application/json"},
                        {
                            "href": f"{base_url(request)}/tileMatrixSets/{TMS_ID}",
                            "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                            "type": "application/json",
                        },
                        {
                            "href": base.replace(
                                TMS_ID, TMS_ID + "/{tileMatrix}/{tileCol}/{tileRow}"
                            ),
                            "rel": "item",
                            "type": MVT,
                            "templated": True,
                        },
                        {
                            "href": base + "/tilejson.json",
                            "rel": "describedby",
                            "type": "application/json",
                            "title": "TileJSON",
                        },
                    ],
                }
            ]
        }
    )


@router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json", summary="TileJSON 3.0")
def tilejson(
    request: Request, session: SessionDep, read: ReadingDep, tms_id: TmsId
) -> JSONResponse:
    """A TileJSON 3.0 document for the collection's vector tiles."""
    found = read.collection
    _tms(tms_id)
    bounds = ogc.tilejson_bounds(ogc.county_extent(session))
    fields = {
        name: _MVT_TYPES.get(found.properties[name].type, "String")
        for name in found.tile_properties
    }
    zoom = max(found.min_zoom, 12)
    return JSONResponse(
        {
            "tilejson": "3.0.0",
            "name": found.id,
            "description": found.description,
            "scheme": "xyz",
            "tiles": [_tile_template(request, found)],
            "minzoom": found.min_zoom,
            "maxzoom": found.max_zoom,
            "bounds": bounds,
            "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, zoom],
            "vector_layers": [
                {
                    "id": found.id,
                    "description": found.title,
                    "fields": fields,
                    "minzoom": found.min_zoom,
                    "maxzoom": found.max_zoom,
                }
            ],
        }
    )


def _int_param(text: str, limit: int) -> int | None:
    """A path parameter as FastAPI would read it into ``int`` within ±``limit``, or None."""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 15:
        return None
    value = int(text)
    return value if -limit <= value <= limit else None


async def _fast_tile(request: Request) -> Response | None:
    """A tile of a layer read whole (not caller-scoped), answered before the router
    (``gis.api.hot``): a map asks for dozens at once, and FastAPI's routing and dependencies
    cost more CPU than the tile's own work (bench/ogc). Anything else (a caller-scoped layer,
    a parameter FastAPI must reject) is declined to ``vector_tile``."""
    params = request.path_params
    z = _int_param(params["z"], 1000)
    x = _int_param(params["x"], 2**40)
    y = _int_param(params["y"], 2**40)
    collection_id, tms_id = params["collection_id"], params["tms_id"]
    if z is None or x is None or y is None or collection_id in SCOPES:
        return None
    if len(collection_id) > 40 or len(tms_id) > 40:
        return None
    read = reading_by(await caller_of(request), collection_id, settings_of(request))
    await stale_read_ok(request)
    _tms(tms_id)
    data = await database_of(request).run(ogc.tile_flow(read.collection, z, x, y))
    return _tile_response(request, read.collection, data)


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}/{z}/{x}/{y}",
    summary="A vector tile",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {"description": "Nothing in this tile"}},
)
@fast_path(_fast_tile)
async def vector_tile(
    request: Request,
    # Opens no connection unless used (by the caller-scoped layers only).
    session: SessionDep,
    read: ReadingDep,
    tms_id: TmsId,
    z: Annotated[int, Path(ge=-1000, le=1000, description="Zoom (tile matrix)")],
    x: Annotated[int, Path(ge=-(2**40), le=2**40, description="Column")],
    y: Annotated[int, Path(ge=-(2**40), le=2**40, description="Row")],
) -> Response:
    """One Mapbox Vector Tile of the collection (layer named after it), as the caller sees
    it."""
    found = read.collection
    _tms(tms_id)
    if found.id in SCOPES:
        # Rows depend on the caller (cases): the statement is built for them, on a session.
        data = await run_in_threadpool(_scoped_tile, session, read, z, x, y)
    else:
        # A layer read whole runs its one statement on the asyncpg pool, in the event loop
        # (usually answered by ``_fast_tile`` before it gets here).
        data = await database_of(request).run(ogc.tile_flow(found, z, x, y))
    return _tile_response(request, found, data)


def _tile_response(request: Request, found: Collection, data: bytes) -> Response:
    """A tile's answer: 204 when empty, 304 when the client has it, else the tile, with its
    caching headers."""
    headers = {"Cache-Control": _cache_control(found), "Vary": "Authorization, Cookie"}
    if not data:
        return Response(status_code=204, headers=headers)
    tag = ogc.etag(found.id, data)
    headers["ETag"] = tag
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


def _scoped_tile(session: Session, read: Reading, z: int, x: int, y: int) -> bytes:
    """The tile of a caller-scoped layer, on the request's session (in a worker thread)."""
    use_autocommit(session)  # one statement: no BEGIN/ROLLBACK round trips around it
    return ogc.tile(session, read.collection, z, x, y, read.scope)
