"""What every OGC document shares: the GeoJSON media type, the API's own URL as the client
reached it, and a collection's document (features' collections and draft plans alike)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from gis.services.ogc_crs import CRS84, crs_uris

GEOJSON = "application/geo+json"


def base_url(request: Request) -> str:
    """The absolute URL of ``/ogc`` as the client reached it."""
    return str(request.base_url).rstrip("/") + "/ogc"


def collection_document(
    href: str,
    cid: str,
    *,
    title: str,
    description: str,
    extent: list[float] | None,
    more_links: tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    """The document of collection ``cid`` at ``href``: its words, CRSs, its self and items links
    (and ``more_links``), and its extent when it has one."""
    body: dict[str, Any] = {
        "id": cid,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": crs_uris(),
        "storageCrs": CRS84,
        "links": [
            {"href": href, "rel": "self", "type": "application/json"},
            {"href": href + "/items", "rel": "items", "type": GEOJSON},
            *more_links,
        ],
    }
    if extent is not None:
        body["extent"] = {"spatial": {"bbox": [extent], "crs": CRS84}}
    return body
