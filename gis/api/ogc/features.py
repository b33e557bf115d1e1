"""OGC API – Features (Parts 1, 2 and 3) under ``/ogc``: landing page, conformance, the
collections, their queryables, items and single features, as JSON and GeoJSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from gis.api.deps import SessionDep, SettingsDep, database_of, settings_of
from gis.api.hot import fast_path
from gis.api.ogc.access import ReadingDep, readable, reading_by
from gis.api.ogc.documents import GEOJSON, base_url, collection_document
from gis.api.ogc.plans import plan_collections
from gis.api.ogc.router import router
from gis.api.reads import stale_read_ok
from gis.api.security import PrincipalDep, caller_of
from gis.db import translate_db_errors
from gis.errors import ValidationError
from gis.queries import Flow, run
from gis.services import ogc
from gis.services.ogc_collections import Collection
from gis.services.ogc_crs import parse_crs
from gis.services.ogc_filter import filter_condition
from gis.settings import Settings

_OGC = "http://www.opengis.net/spec/"
# Declared only for what tests/ogc checks, one test per class.
CONFORMANCE = [
    _OGC + "ogcapi-features-1/1.0/conf/core",
    _OGC + "ogcapi-features-1/1.0/conf/oas30",
    _OGC + "ogcapi-features-1/1.0/conf/geojson",
    _OGC + "ogcapi-features-2/1.0/conf/crs",
    # The four classes QGIS needs before it sends a filter to the server.
    _OGC + "ogcapi-features-3/1.0/conf/filter",
    _OGC + "ogcapi-features-3/1.0/conf/features-filter",
    _OGC + "cql2/1.0/conf/cql2-text",
    _OGC + "cql2/1.0/conf/basic-cql2",
    _OGC + "ogcapi-features-3/1.0/conf/queryables",
    _OGC + "cql2/1.0/conf/cql2-json",
    _OGC + "cql2/1.0/conf/advanced-comparison-operators",
    _OGC + "cql2/1.0/conf/case-insensitive-comparison",
    _OGC + "cql2/1.0/conf/basic-spatial-functions",
    _OGC + "cql2/1.0/conf/basic-spatial-functions-plus",
    _OGC + "cql2/1.0/conf/spatial-functions",
    _OGC + "cql2/1.0/conf/property-property",
    # Part 4, on draft plans' grids only (gis/api/ogc/plans.py).
    _OGC + "ogcapi-features-4/1.0/conf/create-replace-delete",
    _OGC + "ogcapi-features-4/1.0/conf/update",
]


def _json(body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, headers=headers)


@router.get("", summary="Landing page")
def landing(request: Request) -> JSONResponse:
    """Links to the API definition, the conformance classes and the collections."""
    base = base_url(request)
    return _json(
        {
            "title": "gis — grid management (OGC API)",
            "description": "Towns, villages, grids, incidents, cameras, units and roads as "
            "OGC API – Features collections and vector tiles.",
            "links": [
                {"href": base, "rel": "self", "type": "application/json", "title": "This page"},
                {
                    "href": base + "/api",
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                    "title": "The API definition",
                },
                {
                    "href": base + "/conformance",
                    "rel": "conformance",
                    "type": "application/json",
                    "title": "Conformance classes",
                },
                {
                    "href": base + "/collections",
                    "rel": "data",
                    "type": "application/json",
                    "title": "Collections",
                },
                {
                    "href": base + "/tileMatrixSets",
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                    "type": "application/json",
                    "title": "Tile matrix sets",
                },
            ],
        }
    )


@router.get("/conformance", summary="Conformance classes")
def conformance() -> JSONResponse:
    """The requirement classes this API implements."""
    return _json({"conformsTo": CONFORMANCE})


def _collection_json(
    request: Request, collection: Collection, extent: list[float] | None
) -> dict[str, Any]:
    base = f"{base_url(request)}/collections/{collection.id}"
    more_links = (
        {
            "href": base + "/queryables",
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "type": "application/schema+json",
        },
        # The pre-1.0 relation GDAL < 3.7 follows to learn what it may filter on.
        {"href": base + "/queryables", "rel": "queryables", "type": "application/json"},
        {
            "href": base + "/tiles",
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            "type": "application/json",
        },
    )
    return collection_document(
        base,
        collection.id,
        title=collection.title,
        description=collection.description,
        extent=extent,
        more_links=more_links,
    )


@router.get("/collections", summary="The collections")
def collections(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> JSONResponse:
    """Every collection the caller may read."""
    extent = ogc.county_extent(session)
    return _json(
        {
            "collections": [
                _collection_json(request, c, extent) for c in readable(principal, settings)
            ]
            + plan_collections(request, session, principal),
            "links": [
                {
                    "href": base_url(request) + "/collections",
                    "rel": "self",
                    "type": "application/json",
                }
            ],
        }
    )


@router.get("/collections/{collection_id}", summary="A collection")
def collection(request: Request, session: SessionDep, read: ReadingDep) -> JSONResponse:
    """One collection: its extent, CRSs and links."""
    return _json(_collection_json(request, read.collection, ogc.county_extent(session)))


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties")
def queryables(request: Request, read: ReadingDep) -> JSONResponse:
    """The properties a filter, ``sortby`` or a query parameter may use, as JSON Schema."""
    found = read.collection
    properties = {name: prop.schema() for name, prop in found.properties.items()}
    properties["geometry"] = {
        "format": f"geometry-{found.geometry_type.lower()}",
        "x-ogc-role": "primary-geometry",
    }
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base_url(request)}/collections/{found.id}/queryables",
        "type": "object",
        "title": found.title,
        "properties": properties,
        "additionalProperties": False,
        # The pre-1.0 list GDAL < 3.7 reads (an extra keyword, ignored by JSON Schema).
        "queryables": [{"id": name} for name in found.properties],
    }
    # JSON Schema's own type unless the client asks for plain JSON only (GDAL < 3.7 refuses
    # anything else).
    accept = request.headers.get("accept", "")
    plain = "application/json" in accept and "schema+json" not in accept
    return JSONResponse(body, media_type="application/json" if plain else "application/schema+json")


def _page_link(request: Request, rel: str, offset: int, limit: int) -> dict[str, str]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    params += [("limit", str(limit)), ("offset", str(offset))]
    href = f"{base_url(request)}{request.url.path.split('/ogc', 1)[1]}?{urlencode(params)}"
    return {"href": href, "rel": rel, "type": GEOJSON}


def items_query(
    collection: Collection,
    settings: Settings,
    *,
    limit: int,
    offset: int,
    bbox: str | None,
    bbox_crs: str | None,
    datetime_: str | None,
    crs: str | None,
    filter_: str | None,
    filter_lang: str | None,
    filter_crs: str | None,
    properties: str | None,
    sortby: str | None,
) -> ogc.ItemsQuery:
    """The parameters of an items request, parsed and checked (400 for anything wrong)."""
    if limit > settings.ogc_max_limit:
        raise ValidationError(
            f"limit must be at most {settings.ogc_max_limit} (GIS_OGC_MAX_LIMIT); follow the "
            "'next' links"
        )
    condition = None
    if filter_ is not None and filter_.strip():
        condition = filter_condition(
            collection, filter_, filter_lang, parse_crs(filter_crs, "filter-crs")
        )
    elif filter_lang is not None or filter_crs is not None:
        parse_crs(filter_crs, "filter-crs")
    return ogc.ItemsQuery(
        limit=limit,
        offset=offset,
        crs=parse_crs(crs, "crs"),
        bbox=ogc.parse_bbox(bbox),
        bbox_crs=parse_crs(bbox_crs, "bbox-crs"),
        period=ogc.parse_datetime(datetime_),
        filter=condition,
        properties=ogc.parse_properties(collection, properties),
        sortby=ogc.parse_sortby(collection, sortby),
    )


# The length limits of the items route's text parameters (its declaration below).
_ITEMS_TEXT = {
    "bbox": 200,
    "bbox-crs": 200,
    "datetime": 100,
    "crs": 200,
    "filter-lang": 100,
    "filter-crs": 200,
    "properties": 2_000,
    "sortby": 2_000,
}


def _count_param(text: str | None, default: int, maximum: int) -> int | None:
    """``limit``/``offset`` as FastAPI would read them (digits, within range), or None."""
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) > maximum:
        return None
    return int(text)


async def _fast_items(request: Request) -> Response | None:
    """An items page without a filter, answered before the router (``gis.api.hot``): a map
    client pages through a layer, and FastAPI's routing and parameter analysis cost more CPU
    than the page's own Python (bench/ogc). A filter (its page runs on a session) or a
    parameter FastAPI must reject is declined to ``items``, which then answers."""
    collection_id: str = request.path_params["collection_id"]
    text = request.scope["query_string"].decode("latin-1")
    params = dict(parse_qsl(text, keep_blank_values=True))
    if "filter" in params or len(collection_id) > 40:
        return None
    if any(len(params.get(name, "")) > size for name, size in _ITEMS_TEXT.items()):
        return None
    limit = _count_param(params.get("limit"), 10, 2**62)
    offset = _count_param(params.get("offset"), 0, 100_000_000)
    if limit is None or limit < 1 or offset is None:
        return None
    settings = settings_of(request)
    read = reading_by(await caller_of(request), collection_id, settings)
    await stale_read_ok(request)
    query = items_query(
        read.collection,
        settings,
        limit=limit,
        offset=offset,
        bbox=params.get("bbox"),
        bbox_crs=params.get("bbox-crs"),
        datetime_=params.get("datetime"),
        crs=params.get("crs"),
        filter_=None,
        filter_lang=params.get("filter-lang"),
        filter_crs=params.get("filter-crs"),
        properties=params.get("properties"),
        sortby=params.get("sortby"),
    )
    flow = ogc.feature_page_flow(
        read.collection, query, read.scope, exact_max=settings.ogc_exact_count_max
    )
    page = await database_of(request).run(flow)
    return _items_response(request, read.collection, query, page)


@router.get("/collections/{collection_id}/items", summary="Features of a collection")
@fast_path(_fast_items)
async def items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    read: ReadingDep,
    limit: Annotated[
        int, Query(ge=1, description="Features per page (the maximum is in this document)")
    ] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="Features to skip")] = 0,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minx,miny,maxx,maxy in bbox-crs")
    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    datetime_: Annotated[
        str | None,
        Query(
            alias="datetime",
            max_length=100,
            description="An instant, a date or an interval (a/b, ../b, a/..); for grids the "
            "versions in force then",
        ),
    ] = None,
    crs: Annotated[str | None, Query(max_length=200, description="CRS of the reply")] = None,
    filter_: Annotated[str | None, Query(alias="filter", description="A CQL2 filter")] = None,
    filter_lang: Annotated[
        str | None, Query(alias="filter-lang", description="cql2-text (default) or cql2-json")
    ] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
    properties: Annotated[
        str | None, Query(max_length=2_000, description="The properties to return")
    ] = None,
    sortby: Annotated[
        str | None, Query(max_length=2_000, description="e.g. name,-households")
    ] = None,
) -> Response:
    """A page of features (GeoJSON) with ``numberMatched`` and links to the next page."""
    found, scope = read.collection, read.scope
    query = items_query(
        found,
        settings,
        limit=limit,
        offset=offset,
        bbox=bbox,
        bbox_crs=bbox_crs,
        datetime_=datetime_,
        crs=crs,
        filter_=filter_,
        filter_lang=filter_lang,
        filter_crs=filter_crs,
        properties=properties,
        sortby=sortby,
    )
    flow = ogc.feature_page_flow(found, query, scope, exact_max=settings.ogc_exact_count_max)
    if query.filter is not None:
        # Only a filter can make the statement slow (bbox and paging use the indexes): it runs
        # in a transaction of its own with the OGC statement timeout, on a session.
        page = await run_in_threadpool(_filtered_page, session, settings, flow)
    else:
        # Its statements run on the asyncpg pool in the event loop, compiled once per shape
        # (usually answered by ``_fast_items`` before it gets here).
        page = await database_of(request).run(flow)
    return _items_response(request, found, query, page)


def _items_response(
    request: Request, found: Collection, query: ogc.ItemsQuery, page: ogc.Page
) -> Response:
    """A page of features as a GeoJSON FeatureCollection, with its links and counts."""
    limit, offset = query.limit, query.offset
    links = [
        _page_link(request, "self", offset, limit),
        {
            "href": f"{base_url(request)}/collections/{found.id}",
            "rel": "collection",
            "type": "application/json",
        },
    ]
    # An estimate may be low: then the next page is offered while pages come back full.
    if page.returned == limit and (page.estimated or offset + limit < page.matched):
        links.append(_page_link(request, "next", offset + limit, limit))
    if offset > 0:
        links.append(_page_link(request, "prev", max(offset - limit, 0), limit))
    tail: dict[str, Any] = {
        "numberMatched": page.matched,
        "numberReturned": page.returned,
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    if page.estimated:
        tail["numberMatchedEstimated"] = True
    body = '{"type":"FeatureCollection","features":[' + page.features + "],"
    body += ogc.dumps(tail)[1:]
    assert query.crs is not None
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{query.crs.uri}>"})


def _filtered_page(session: Session, settings: Settings, flow: Flow[ogc.Page]) -> ogc.Page:
    """A filtered page on the request's session, under the OGC statement timeout."""
    with translate_db_errors():
        ogc.set_timeout(session, settings.ogc_statement_timeout_ms)
        return run(session, flow)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature")
def item(
    request: Request,
    session: SessionDep,
    read: ReadingDep,
    feature_id: Annotated[str, Path(max_length=40, description="Feature id")],
    crs: Annotated[str | None, Query(max_length=200, description="CRS of the reply")] = None,
) -> Response:
    """One feature (a grid: its current version)."""
    found = read.collection
    out = parse_crs(crs, "crs")
    text = ogc.feature(session, found, feature_id, out, read.scope)
    base = f"{base_url(request)}/collections/{found.id}"
    links = [
        {"href": f"{base}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": base, "rel": "collection", "type": "application/json"},
    ]
    body = text[:-1] + ',"links":' + ogc.dumps(links) + "}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out.uri}>"})
