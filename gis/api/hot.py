"""The hottest paths answered before FastAPI's router, by the same endpoint functions.

``GET /locate`` is an ordinary FastAPI route (``gis/api/routes/locate.py``): declared, documented
in OpenAPI and servable by FastAPI like any other. Its endpoint is marked ``@hot_path``: it takes
only the ``Request`` and does its own work with the same pydantic models (``parse_query``) and
the same access check (``gis.api.security.authorize``), so it can also be called directly.
``HotPaths``, an ASGI middleware, does exactly that for the marked (method, path) pairs, skipping
FastAPI's router, dependency resolution and exception middleware, which cost more CPU per
request than the locate's own work (the measurements: docs/architecture.md). Errors are
answered by the app's own handlers (``gis.api.errors.error_response_for``), anything else
propagates to Starlette's 500 handler as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gis.api.errors import error_response_for, validation_error

Endpoint = Callable[[Request], Awaitable[Response]]
E = TypeVar("E", bound=Endpoint)
M = TypeVar("M", bound=BaseModel)


def hot_path(endpoint: E) -> E:
    """Mark an endpoint (``async def f(request: Request) -> Response``) to be called directly
    by ``HotPaths``."""
    endpoint.__dict__["hot_path"] = True
    return endpoint


def hot_routes(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], Endpoint]:
    """(method, path) → endpoint for every route whose endpoint is marked ``@hot_path``."""
    table: dict[tuple[str, str], Endpoint] = {}
    for route in routes:
        if isinstance(route, APIRoute) and getattr(route.endpoint, "hot_path", False):
            if route.param_convertors:
                raise ValueError(f"a hot path has no path parameters: {route.path}")
            for method in route.methods or ():
                table[(method, route.path)] = route.endpoint
    return table


class HotPaths:
    """Send the requests of ``routes`` straight to their endpoints; everything else on."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a hot path here, or pass the request to the app."""
        endpoint = None
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            endpoint = self.routes.get((scope["method"], path))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as error:
            handled = await error_response_for(request, error)
            if handled is None:
                raise
            response = handled
        await response(scope, receive, send)


def parse_query(model: type[M], request: Request) -> M:
    """The request's query string as ``model`` (422 in the usual shape when it does not fit)."""
    # As Starlette parses ``request.query_params`` (the last of repeated names wins, as FastAPI
    # reads scalar parameters), without building the multi-dict.
    query = request.scope["query_string"].decode("latin-1")
    try:
        return model.model_validate(dict(parse_qsl(query, keep_blank_values=True)))
    except PydanticValidationError as error:
        raise validation_error(error, "query") from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``model``'s fields as OpenAPI query parameters, for an endpoint that parses them itself."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        field = dict(field)
        description = field.pop("description", None)
        field.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": field,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters
