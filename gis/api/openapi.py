"""The OpenAPI document as this app, with these settings, really behaves.

FastAPI writes the document from the routes alone; two things depend on the settings the app
was built with, and are filled in here once, when the document is first asked for:

- **Optional security.** An operation whose access check admits anonymous callers
  (``allow(..., public=True)`` with ``GIS_PUBLIC_LAYERS``, or every operation without
  ``GIS_AUTH_REQUIRED``) says so: ``security: [{}, {"HTTPBearer": []}]``.
- **Limits set by a setting.** A parameter declared with ``setting_maximum("max_page_size")``
  gets ``maximum`` = that setting's value, so a client never meets a limit the schema hides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from gis.settings import Settings

D = TypeVar("D", bound=Callable[..., Any])
_SETTING_MAXIMUM = "x-gis-maximum-setting"
_COMMA_SEPARATED = "x-gis-comma-separated"


def public(dependency: D, setting: str = "public_layers") -> D:
    """Mark an access-check dependency as admitting anonymous callers when the boolean setting
    ``setting`` is on (GIS_PUBLIC_LAYERS, GIS_OPEN311_PUBLIC…)."""
    dependency.__dict__["gis_public"] = setting
    return dependency


def setting_maximum(name: str) -> dict[str, Any]:
    """``json_schema_extra`` for a parameter whose maximum is the setting ``name``."""
    return {_SETTING_MAXIMUM: name}


def comma_separated(values: list[str]) -> dict[str, Any]:
    """``json_schema_extra`` for a text parameter read as a comma-separated list of distinct
    ``values``: documented as the array it is (``style: form, explode: false``)."""
    return {_COMMA_SEPARATED: list(values)}


def _describe_lists(schema: dict[str, Any]) -> None:
    """Parameters marked ``comma_separated`` become arrays of distinct values."""
    for operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            values = parameter.get("schema", {}).pop(_COMMA_SEPARATED, None)
            if values is None:
                continue
            parameter["schema"] = {
                "type": "array",
                "items": {"type": "string", "enum": values},
                "uniqueItems": True,
            }
            parameter["style"] = "form"
            parameter["explode"] = False


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _is_public(route: RouteContext, settings: Settings) -> bool:
    """Whether an access check of ``route`` admits anonymous callers with ``settings``."""
    dependant = route.dependant
    if dependant is None:
        return False
    names = {getattr(call, "gis_public", None) for call in _calls(dependant)} - {None}
    return any(getattr(settings, str(name)) for name in names)


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "options", "head", "trace"}:
                yield operation


def _fill_setting_limits(node: Any, settings: Settings) -> None:
    """Replace every ``x-gis-maximum-setting`` marker below ``node`` with ``maximum``."""
    if isinstance(node, dict):
        name = node.pop(_SETTING_MAXIMUM, None)
        if name is not None:
            node["maximum"] = getattr(settings, name)
        for value in node.values():
            _fill_setting_limits(value, settings)
    elif isinstance(node, list):
        for value in node:
            _fill_setting_limits(value, settings)


def settle(schema: dict[str, Any], app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Fill ``schema`` (FastAPI's document of ``app``) with what depends on ``settings``."""
    _fill_setting_limits(schema, settings)
    _describe_lists(schema)
    # Every route, those of included routers too (FastAPI keeps them behind their router).
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        anonymous = not settings.auth_required or _is_public(route, settings)
        item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None and anonymous and operation.get("security"):
                # The empty requirement: no credentials at all is one of the ways in.
                operation["security"] = [{}, *(s for s in operation["security"] if s)]
    return schema


def install(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` return the settled document (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = settle(generate(), app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
