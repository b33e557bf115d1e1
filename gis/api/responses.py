"""Replies that skip FastAPI's second pass over a model the route has just built."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


def json_response(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``model`` as JSON, serialised once by pydantic-core.

    A route that returns a model has FastAPI validate it again against its ``response_model``
    and encode it in a second pass; the hot routes (intake, locate) build the model from typed
    rows, so they hand the bytes over directly. The route still declares ``response_model`` so
    the OpenAPI schema describes the reply.
    """
    return Response(model.model_dump_json(), status, headers=headers, media_type="application/json")
