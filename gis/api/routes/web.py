"""The web pages' own files (``gis/web``): ``GET /web/<page>/<name>``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gis.errors import NotFoundError
from gis.web import MEDIA_TYPES, URL_PREFIX, web_file

router = APIRouter(prefix=URL_PREFIX, tags=["web"])


@router.get("/{page}/{name}", include_in_schema=False)
def page_file(page: str, name: str) -> FileResponse:
    """One file of a page; revalidated on every load, so a new version takes effect at once."""
    target = web_file(page, name)
    if target is None:
        raise NotFoundError(f"no web file {page}/{name}")
    return FileResponse(
        target, media_type=MEDIA_TYPES[target.suffix], headers={"Cache-Control": "no-cache"}
    )
