"""Errors of the OGC API in its exception shape: ``{"code": …, "description": …}`` (and
``detail``, the same text, so a client of the JSON API reads it too).

The routes under ``/ogc`` use ``OgcRoute``, which answers every error of its own endpoints in
that shape. Statuses come from the one table (``gis.errors``) except that bad parameters are
400, as OGC API – Features requires, where the JSON API says 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.api.errors import InterfaceRoute
from gis.db import translate
from gis.errors import GisError, status_code_for

EXCEPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": {"type": "string"},
        "description": {"type": "string"},
        "detail": {"type": "string"},
    },
}
EXCEPTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": EXCEPTION_SCHEMA}}}
    for status, text in (
        (400, "Bad parameter (OGC exception)"),
        (401, "No valid token"),
        (403, "Role not allowed"),
        (404, "No such collection or feature"),
        (503, "Database unavailable or the query took too long"),
    )
}


def ogc_error(status: int, code: str, description: str) -> JSONResponse:
    """An OGC exception response."""
    headers = {"Retry-After": "5"} if status == 503 else None
    body = {"code": code, "description": description, "detail": description}
    return JSONResponse(body, status, headers=headers)


def ogc_response_for(error: Exception) -> JSONResponse | None:
    """The OGC exception response for ``error`` (``None``: a bug, left to the app's 500)."""
    if isinstance(error, sa_exc.SQLAlchemyError):
        domain = translate(error)
        if domain is None:
            return None
        error = domain
    if isinstance(error, GisError):
        status = status_code_for(error)
        return ogc_error(400 if status == 422 else status, error.code, error.detail)
    if isinstance(error, RequestValidationError):
        parts = []
        for e in error.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{where}: {e.get('msg')}")
        return ogc_error(400, "invalid_parameter", "; ".join(parts))
    if isinstance(error, StarletteHTTPException):
        return ogc_error(error.status_code, "http_error", str(error.detail))
    return None


class OgcRoute(InterfaceRoute):
    """A route whose errors are answered as OGC exceptions."""

    def answer_error(self, request: Request, error: Exception) -> Response | None:
        """The OGC exception for ``error`` (None: not one of ours, a 500)."""
        return ogc_response_for(error)

    @staticmethod
    async def hot_error_response(request: Request, error: Exception) -> Response | None:
        """The OGC exception for an error of the route's fast path (``gis.api.hot``)."""
        return ogc_response_for(error)
