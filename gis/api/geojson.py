"""GeoJSON models for responses; geometry comes from PostGIS as ``ST_AsGeoJSON`` text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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


def feature_collection(
    model: type[P],
    rows: Iterable[Any],
    *,
    id_of: Callable[[Any], str | int],
    geometry_of: Callable[[Any], Any] = lambda row: row.geom,
    properties: Callable[[Any], P] | None = None,
    number_matched: int | None = None,
) -> FeatureCollection[P]:
    """``rows`` as a collection: each row's ``geom`` (or ``geometry_of``) as the geometry, its
    properties made by ``properties`` or, by default, read from the row's attributes.
    ``number_matched``: the total of a page's filters (default: the rows, unpaged)."""
    make = properties or (lambda row: model.model_validate(row, from_attributes=True))
    features = [
        {"id": id_of(row), "geometry": geometry_json(geometry_of(row)), "properties": make(row)}
        for row in rows
    ]
    if number_matched is None:
        number_matched = len(features)
    # Parametrised at run time, so that the reply is checked against ``model``; mypy cannot
    # see a type in a variable.
    collection: type[FeatureCollection[P]] = FeatureCollection[model]  # type: ignore[valid-type]
    return collection.model_validate(
        {
            "features": features,
            "number_matched": number_matched,
            "number_returned": len(features),
        }
    )
