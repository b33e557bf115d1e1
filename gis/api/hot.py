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

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
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
# A hot function that may decline a request (``None``): the router then serves it.
Fast = Callable[[Request], Awaitable[Response | None]]
ErrorResponder = Callable[[Request, Exception], Awaitable[Response | None]]
E = TypeVar("E", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def hot_path(endpoint: E) -> E:
    """Mark an endpoint (``async def f(request: Request) -> Response``) to be called directly
    by ``HotPaths`` for every request of its route."""
    endpoint.__dict__["hot_path"] = endpoint
    return endpoint


def fast_path(fast: Fast) -> Callable[[E], E]:
    """Mark an ordinary FastAPI endpoint whose common requests ``fast(request)`` answers
    before the router; what ``fast`` declines (``None``) the endpoint serves as usual."""

    def mark(endpoint: E) -> E:
        endpoint.__dict__["hot_path"] = fast
        return endpoint

    return mark


@dataclass(frozen=True)
class HotRoute:
    """A hot route with path parameters, and the routes before it that could match its paths
    (the router would pick them first)."""

    method: str
    pattern: re.Pattern[str]
    convertors: dict[str, Any]
    fast: Fast
    errors: ErrorResponder | None
    before: tuple[re.Pattern[str], ...]


@dataclass
class HotTable:
    """What ``HotPaths`` answers: fixed paths by (method, path), then parameterised routes."""

    fixed: dict[tuple[str, str], tuple[Fast, ErrorResponder | None]]
    parameterised: list[HotRoute]


def _static_prefix(path: str) -> str:
    return path.split("{", 1)[0]


def hot_routes(routes: Iterable[BaseRoute]) -> HotTable:
    """The hot routes among ``routes`` (those whose endpoint is marked ``@hot_path`` or
    ``@fast_path``), in the router's order."""
    table = HotTable({}, [])
    # (methods or None for any, fixed start, pattern) of every route so far.
    seen: list[tuple[frozenset[str] | None, str, re.Pattern[str]]] = []
    for route in routes:
        fast = getattr(getattr(route, "endpoint", None), "hot_path", None)
        if isinstance(route, APIRoute) and fast is not None:
            errors = getattr(route, "hot_error_response", None)
            prefix = _static_prefix(route.path)
            for method in route.methods or ():
                if not route.param_convertors:
                    table.fixed[(method, route.path)] = (fast, errors)
                    continue
                # Only a route whose fixed start is compatible with this one's can match the
                # same path: a handful, checked per request.
                before = tuple(
                    pattern
                    for methods, start, pattern in seen
                    if (methods is None or method in methods)
                    and (start.startswith(prefix) or prefix.startswith(start))
                )
                table.parameterised.append(
                    HotRoute(method, route.path_regex, route.param_convertors, fast, errors, before)
                )
        pattern = getattr(route, "path_regex", None)
        if pattern is not None:
            methods = getattr(route, "methods", None)
            start = _static_prefix(getattr(route, "path", ""))
            seen.append((None if methods is None else frozenset(methods), start, pattern))
    return table


class HotPaths:
    """Send the requests of ``routes`` straight to their endpoints; everything else on."""

    def __init__(self, app: ASGIApp, routes: HotTable) -> None:
        self.app = app
        self.routes = routes

    def _match(self, method: str, path: str, scope: Scope) -> tuple[Fast, Any] | None:
        found = self.routes.fixed.get((method, path))
        if found is not None:
            return found
        for route in self.routes.parameterised:
            if route.method != method:
                continue
            match = route.pattern.match(path)
            if match is None:
                continue
            if any(pattern.match(path) for pattern in route.before):
                return None  # an earlier route serves it: the router decides
            params = {
                key: route.convertors[key].convert(value)
                for key, value in match.groupdict().items()
            }
            scope["path_params"] = {**scope.get("path_params", {}), **params}
            return route.fast, route.errors
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a hot path here, or pass the request to the app."""
        found = None
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            found = self._match(scope["method"], path, scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        fast, errors = found
        request = Request(scope, receive)
        response: Response | None
        try:
            response = await fast(request)
        except Exception as error:
            response = await (errors or error_response_for)(request, error)
            if response is None:
                raise
        if response is None:  # declined: the route's endpoint serves it
            scope.pop("path_params", None)
            await self.app(scope, receive, send)
            return
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
