"""Types at the API boundary: strict, and described in the OpenAPI document exactly as checked.

- A time is an ISO 8601 string (``2026-11-27T09:30:00+08:00``), never a number: pydantic would
  otherwise read ``0.5`` as half a second after 1970.
- A number is not a boolean, and a boolean is not a number (``true`` is not 1, ``0`` is not
  false): body fields use strict types.
- Coordinates carry their ranges and CRS names their accepted spellings in the schema; the
  services still check them (with the messages that say what to fix, e.g. swapped lon/lat).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    Strict,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from gis.geo import crs_spellings
from gis.layers.categories import Platform
from gis.layers.units import UnitStatus, UnitType

# The start of an ISO 8601 date-time: a full date, then the time (RFC 3339 allows a space).
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_EXAMPLE = "2026-11-27T09:30:00+08:00"


def _time_text(matches: Callable[[str], object], message: str) -> Callable[[Any], Any]:
    """A validator admitting a datetime (from Python callers) or a string ``matches``
    accepts; anything else is ``message``."""

    def check(value: Any) -> Any:
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not matches(value):
            raise ValueError(message)
        return value

    return check


# Only an ISO 8601 string (or a datetime) is a time.
_iso_text = _time_text(_ISO_START.match, f"a time is an ISO 8601 string such as {_EXAMPLE}")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a time needs a UTC offset (timezone), e.g. {_EXAMPLE}")
    return value


_TIME_SCHEMA = {"type": "string", "format": "date-time", "examples": [_EXAMPLE]}

# An instant: ISO 8601 with a UTC offset.
Time = Annotated[
    datetime, BeforeValidator(_iso_text), AfterValidator(_aware), WithJsonSchema(_TIME_SCHEMA)
]
_LOCAL_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
_LOCAL = re.compile(_LOCAL_PATTERN)


# An ISO 8601 date-time as the pattern below spells it (or a datetime).
_local_text = _time_text(
    _LOCAL.fullmatch, f"a time is an ISO 8601 string such as {_EXAMPLE} (offset optional)"
)


# A wall-clock time as the map pages take it: ISO 8601, the offset optional (none: China time).
LocalTime = Annotated[
    datetime,
    BeforeValidator(_local_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _LOCAL_PATTERN,
            "examples": ["2026-11-27T09:30:00", _EXAMPLE],
        }
    ),
]

# Numbers that are numbers: no booleans, no numeric strings (body fields; a query string has
# only text, and FastAPI reads its numbers from text).
StrictFloat = Annotated[float, Strict()]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("cannot be null: leave the field out to keep the current value")
    return value


class _NullNotDocumented:
    """Drop the ``null`` branch of an optional field's schema: the field may be left out, but
    an explicit null is refused (``_refuse_null``)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        options = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
        if "anyOf" in schema and len(options) == 1:
            rest = {key: value for key, value in schema.items() if key != "anyOf"}
            return {**options[0], **rest}
        return schema


T = TypeVar("T")
# A field of a partial update (PATCH): left out means "keep", null is refused.
Omittable = Annotated[T | None, BeforeValidator(_refuse_null), _NullNotDocumented()]

# The largest id the API takes: ids are bigint in the database, but JSON numbers past 2**53 lose
# digits in JavaScript (and in any float-based client), and no sequence here gets near it.
MAX_ID = 2**53 - 1

# Ranges of WGS84-like degrees; every accepted CRS (EPSG:4326/4490, GCJ-02, BD-09) is one.
LON_RANGE: dict[str, Any] = {"minimum": -180.0, "maximum": 180.0}
LAT_RANGE: dict[str, Any] = {"minimum": -90.0, "maximum": 90.0}
Longitude = Annotated[StrictFloat, Field(json_schema_extra=LON_RANGE)]
Latitude = Annotated[StrictFloat, Field(json_schema_extra=LAT_RANGE)]


M = TypeVar("M", bound=BaseModel)
_ABSENT = object()


def read_from(model: type[M], *sources: object, **given: Any) -> M:
    """A reply ``model`` whose fields are read from the same-named attributes of ``sources`` (the
    first that has one wins); ``given`` sets the fields named or shaped differently.

    The same as spelling out ``model(a=row.a, b=row.b, …)``: validated alike, but a field added to
    the reply and the row needs no third line here."""
    values = dict(given)
    for name in model.model_fields:
        if name not in values:
            for source in sources:
                value = getattr(source, name, _ABSENT)
                if value is not _ABSENT:
                    values[name] = value
                    break
    return model.model_validate(values)


def one_of(values: list[str], *, nullable: bool = False) -> dict[str, Any]:
    """``json_schema_extra`` listing the accepted values of a text the service parses itself."""
    return {"enum": [*values, None] if nullable else list(values)}


CRS_NAMES = crs_spellings()
PLATFORMS = [p.value for p in Platform]
UNIT_TYPES = [t.value for t in UnitType]
UNIT_STATUSES = [s.value for s in UnitStatus]


def unit_type_query(*, alias: str | None = None) -> Any:
    """The unit-type filter of a query (``/units``, ``/dispatch/nearest``), under its own name
    or ``alias``."""
    return Query(
        alias=alias, max_length=60, description="Unit type", json_schema_extra=one_of(UNIT_TYPES)
    )


# The place of a query (dispatch, cameras): lon/lat in `crs`, WGS84 unless said.
LonQuery = Annotated[
    float, Query(description="Longitude of the place, in `crs`", json_schema_extra=LON_RANGE)
]
LatQuery = Annotated[
    float, Query(description="Latitude of the place, in `crs`", json_schema_extra=LAT_RANGE)
]
CrsQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="EPSG:4326 (default), EPSG:4490, GCJ-02 or BD-09 (any case)",
        json_schema_extra=one_of(CRS_NAMES),
    ),
]
