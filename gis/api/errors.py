"""One JSON error shape for the whole API: ``{"code": …, "detail": …}`` (plus optional fields)."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.api.methods import allow_header, allowed_methods
from gis.db import translate
from gis.errors import (
    GisError,
    InvalidCoordinatesError,
    OutsideCoverageError,
    UnknownCodeError,
    ValidationError,
    status_code_for,
)

log = logging.getLogger("gis.api")


class ErrorBody(BaseModel):
    """What every error response carries (some add fields, e.g. ``errors`` or ``allowed``)."""

    code: str
    detail: str


# Documented inline as JSON, so routes that answer HTML (maps) still document JSON errors.
_ERROR_CONTENT = {"application/json": {"schema": ErrorBody.model_json_schema()}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"content": _ERROR_CONTENT, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "No valid token"),
        (403, "Role not allowed"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (422, "Invalid values"),
        (503, "Database unavailable: retry"),
    )
}


Rule = tuple[type[GisError], str]


def domain_errors(*rules: Rule) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation with rules no schema can express (a point outside the
    service area, a code not in the catalog…): each rule's status, code and when it applies, in
    the description and, machine-readable, as ``x-domain-errors`` (code list per status). A
    request valid by the schema is refused only for one of these (tests/api/test_fuzz.py)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error_class, when in rules:
        status = status_code_for(error_class(""))
        response = responses.setdefault(
            status,
            {
                "content": _ERROR_CONTENT,
                "description": ERROR_RESPONSES[status]["description"] + ". Besides the schema:",
                "x-domain-errors": [],
            },
        )
        response["description"] += f"\n- `{error_class.code}`: {when}"
        if error_class.code not in response["x-domain-errors"]:
            response["x-domain-errors"].append(error_class.code)
    return responses


# Rules several operations share (each operation lists its own with ``domain_errors``).
SWAPPED: Rule = (
    InvalidCoordinatesError,
    "the pair reads as latitude, longitude (swapped), e.g. a point in China given lat first",
)
OUTSIDE: Rule = (OutsideCoverageError, "the point is far outside every town the service covers")
CATEGORY: Rule = (UnknownCodeError, "the category is not in the catalog (GET /categories)")
WINDOW: Rule = (ValidationError, "the period is empty: its end is not after its start")
DEVICE_CLOCK: Rule = (
    ValidationError,
    "a device's time (occurred_at, recorded_at) is ahead of the server's clock by more than "
    "GIS_DEVICE_CLOCK_SKEW_S: the device's clock is wrong",
)


def _json_safe(value: Any) -> Any:
    """Values JSON can carry: an error about a NaN must not fail to serialise the NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def error_response(
    status: int,
    code: str,
    detail: str,
    /,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A JSON error response in the project's shape; ``extra`` never overrides code or detail."""
    headers = {**(headers or {}), **({"Retry-After": "5"} if status == 503 else {})}
    body = _json_safe({**extra, "code": code, "detail": detail})
    return JSONResponse(body, status, headers=headers or None)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg"))


async def _gis_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GisError)
    return error_response(status_code_for(error), error.code, error.detail, **error.extra)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": str(e.get("type"))}
        for e in error.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(
            400, "malformed_json", "the body is not valid JSON: " + _describe(errors[0])
        )
    detail = "; ".join(_describe(e) for e in errors[:5])
    return error_response(422, "validation_error", detail, errors=errors)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        return _method_not_allowed(request)
    codes = {404: "not_found", 413: "payload_too_large"}
    return error_response(
        error.status_code,
        codes.get(error.status_code, "http_error"),
        str(error.detail),
        headers=error.headers,
    )


def _method_not_allowed(request: Request) -> Response:
    """``OPTIONS`` answered, any other method the path lacks refused, both with ``Allow``."""
    methods = allowed_methods(request)
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=allow_header(methods))
    return error_response(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed here; allowed: {', '.join(methods)}",
        headers=allow_header(methods),
    )


async def _database_error(_: Request, error: Exception) -> JSONResponse:
    domain = translate(error)
    if domain is None:
        log.exception("unexpected database error", exc_info=error)
        return error_response(500, "internal_error", "internal error; it has been logged")
    return error_response(status_code_for(domain), domain.code, domain.detail)


Handler = Callable[[Request, Exception], Awaitable[Response]]
HANDLERS: dict[type[Exception], Handler] = {
    GisError: _gis_error,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    sa_exc.SQLAlchemyError: _database_error,
}


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one shape."""
    for error_class, handler in HANDLERS.items():
        app.add_exception_handler(error_class, handler)


async def error_response_for(request: Request, error: Exception) -> Response | None:
    """The response the app's handlers give ``error`` (None: not ours, a 500), for code that
    runs outside FastAPI's exception middleware (``gis.api.hot``)."""
    for error_class in type(error).__mro__:
        handler = HANDLERS.get(error_class)
        if handler is not None:
            return await handler(request, error)
    return None


def validation_error(error: PydanticValidationError, where: str) -> RequestValidationError:
    """A pydantic error about the request's ``where`` ("query", "body") as FastAPI raises it,
    so it is answered in the same shape (422, or 400 for malformed JSON)."""
    return RequestValidationError(
        [{**e, "loc": (where, *e["loc"])} for e in error.errors(include_url=False)]
    )


class InterfaceRoute(APIRoute):
    """A route of a standard interface that answers its errors in that interface's own format
    (OGC's exceptions, GeoReport's errors): subclasses say how in ``answer_error``."""

    def answer_error(self, request: Request, error: Exception) -> Response | None:
        """The reply for ``error`` in the interface's format; None leaves it to the app."""
        raise NotImplementedError

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint's handler, wrapped to answer its errors with ``answer_error``."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:
                reply = self.answer_error(request, error)
                if reply is None:
                    raise
                return reply

        return route
