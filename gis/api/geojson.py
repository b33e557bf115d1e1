"""GeoJSON models for responses; geometry comes from PostGIS as ``ST_AsGeoJSON`` text."""

from __future__ import annotations

import json
from typing import Any, Generic, Literal, TypeVar

from geoalchemy2 import WKBElement
from geoalchemy2.shape import to_shape
from pydantic import BaseModel, Field
from shapely.geometry import mapping

P = TypeVar("P", bound=BaseModel)


class Feature(BaseModel, Generic[P]):
    """A GeoJSON Feature with typed properties."""

    type: Literal["Feature"] = "Feature"
    id: str | int | None = None
    geometry: dict[str, Any] | None
    properties: P


class FeatureCollection(BaseModel, Generic[P]):
    """A GeoJSON FeatureCollection, with paging totals where they apply."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[P]]
    number_matched: int | None = Field(None, description="Features matching the filters")
    number_returned: int = Field(0, description="Features in this page")


def geometry_json(value: WKBElement | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A GeoJSON geometry dict from a WKB element or an ``ST_AsGeoJSON`` string."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        parsed: dict[str, Any] = json.loads(value)
        return parsed
    return dict(mapping(to_shape(value)))
