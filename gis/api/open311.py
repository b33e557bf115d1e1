"""GeoReport v2's own formats: XML and JSON replies, and errors as the spec lists them.

Every Open311 route uses ``Open311Route``: whatever goes wrong inside it (a domain error, a
request the schema refuses, a database error) is answered as ``<errors><error><code>…`` or
``[{"code": …, "description": …}]``, in the format the path asked for, never in the rest of the
API's ``{"code", "detail"}`` shape that an Open311 client cannot read.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.api.errors import InterfaceRoute
from gis.db import translate
from gis.errors import AuthenticationError, GisError, status_code_for

log = logging.getLogger("gis.api.open311")

XML_TYPE = "text/xml; charset=utf-8"


class Format(StrEnum):
    """The two formats of every GeoReport path (``services.xml``, ``services.json``)."""

    XML = "xml"
    JSON = "json"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _element(parent: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _element(child, key, item)
    elif isinstance(value, list):
        # A list of mappings repeats an element named after the list's singular.
        for item in value:
            _element(child, name[:-1] if name.endswith("s") else name, item)
    else:
        child.text = _text(value)


def to_xml(
    root: str, item: str | None, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> bytes:
    """``<root><item>…</item>…</root>`` for rows, or ``<root>…</root>`` for one mapping."""
    element = ET.Element(root)
    if isinstance(rows, Mapping):
        for key, value in rows.items():
            _element(element, key, value)
    else:
        assert item is not None
        for row in rows:
            _element(element, item, row)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def reply(
    fmt: Format,
    root: str,
    item: str | None,
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A GeoReport reply: a list of ``item`` elements under ``root`` in XML, a list in JSON."""
    if fmt is Format.XML:
        return Response(to_xml(root, item, rows), status, dict(headers or {}), XML_TYPE)
    return JSONResponse(_json_ready(rows), status, dict(headers or {}))


def error_reply(fmt: Format, status: int, description: str) -> Response:
    """The spec's error list: ``<errors><error><code/><description/></error></errors>``."""
    return reply(
        fmt, "errors", "error", [{"code": status, "description": description}], status=status
    )


def format_of(request: Request) -> Format:
    """The format the path asks for (``.xml`` or ``.json``); XML when it cannot be told."""
    fmt = request.path_params.get("fmt")
    if fmt is None:
        fmt = request.url.path.rsplit(".", 1)[-1]
    return Format.JSON if str(fmt) == "json" else Format.XML


def _describe(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        name = where[-1] if where else "request"
        if name == "fmt":
            parts.append("the path must end in .xml or .json")
        else:
            parts.append(f"{name}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def error_for(error: Exception) -> tuple[int, str] | None:
    """The status and description GeoReport answers ``error`` with (None: not ours, a 500)."""
    if isinstance(error, AuthenticationError):
        # GeoReport says a missing or bad api_key is 403.
        return 403, f"invalid api_key: {error.detail}"
    if isinstance(error, GisError):
        status = status_code_for(error)
        # GeoReport clients know 400 for a request they got wrong; 422 is ours.
        return (400 if status == 422 else status), error.detail
    if isinstance(error, RequestValidationError):
        return 400, _describe(error)
    if isinstance(error, StarletteHTTPException):
        return error.status_code, str(error.detail)
    if isinstance(error, sa_exc.SQLAlchemyError):
        domain = translate(error)
        if domain is not None:
            return error_for(domain)
    return None


class Open311Route(InterfaceRoute):
    """A route whose errors, of any kind, come back in GeoReport's error format."""

    def answer_error(self, request: Request, error: Exception) -> Response:
        """``error`` as GeoReport answers it; anything unexpected is logged and a 500."""
        answer = error_for(error)
        if answer is None:
            log.exception("unexpected error in an Open311 request", exc_info=error)
            answer = (500, "internal error; it has been logged")
        status, description = answer
        return error_reply(format_of(request), status, description)
