"""Which methods a path has: ``Allow`` on every 405, and ``OPTIONS`` answered on every path.

RFC 9110 requires ``Allow`` on a 405, and clients such as QGIS decide what they may do to a
resource from ``OPTIONS``/``Allow`` alone. Starlette answers a method a path does not have with
a 405 naming the methods of the first route that matched the path only; a path served by
several routes (``GET /cameras`` and ``POST /cameras``) needs all of them. This runs only when
the router found no route for the method, so the routes that did match pay nothing for it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

# Answered here for every path the app has; never routed, so never in a route's methods.
IMPLICIT = ("OPTIONS",)


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource the request's path names (empty: no such path).

    That is every route whose path matches; when some of them match it literally (no path
    parameters: ``/cameras/seeing``), only those, not the templates the path also fits
    (``/cameras/{code}``): the resource is the one the OpenAPI document lists under the path.
    """
    literal: set[str] = set()
    templated: set[str] = set()
    # Every route, those of included routers too (FastAPI keeps them behind their router).
    for route in iter_route_contexts(request.app.routes):
        if not route.methods:
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            (templated if route.param_convertors else literal).update(route.methods)
    methods = literal or templated
    if not methods:
        return []
    return sorted(methods | set(IMPLICIT))


def allow_header(methods: list[str]) -> dict[str, str]:
    """The ``Allow`` header for ``methods``."""
    return {"Allow": ", ".join(methods)}
