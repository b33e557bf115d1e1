"""CQL2 filters (OGC API – Features Part 3) as SQL. CQL2-text is parsed by ``cql2`` (the
reference grammar) into CQL2-JSON; CQL2-JSON is parsed by pygeofilter into its AST, which is
translated here to SQLAlchemy expressions with bound parameters. Property names are checked
against the collection's queryables and values against their types; anything else is a 400,
never string-built SQL and never a database error.

pygeofilter 0.4's own pitfalls are avoided (tests/ogc pin them): its CQL2-text grammar reads
``BBOX(…)`` as a function and knows no function-style ``T_INTERSECTS(a, b)``, so text goes
through ``cql2``; its CQL2-JSON ``{"bbox": [minx, miny, maxx, maxy]}`` becomes an
``Envelope(x1, x2, y1, y2)`` fed in the wrong order and it wants ``between`` as
``[property, [low, high]]`` where CQL2 1.0 says ``[property, low, high]``, so both are
rewritten first; and its
SQL backend tags every geometry EPSG:4326, whereas here a literal gets the ``filter-crs``
(default CRS84) and is put into lon/lat storage order before it meets a column.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import cql2
import shapely
import shapely.geometry
import sqlalchemy as sa
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json

from gis.errors import ValidationError
from gis.services.ogc_collections import Collection, Property
from gis.services.ogc_crs import Crs

FILTER_LANGS = ("cql2-text", "cql2-json")
# A filter longer than this is refused before parsing (the parser is not linear).
MAX_FILTER_CHARS = 20_000
# The name a filter uses for the feature's geometry.
GEOMETRY_NAMES = frozenset({"geometry", "geom"})

_COMPARISONS = {
    ast.Equal: lambda a, b: a == b,
    ast.NotEqual: lambda a, b: a != b,
    ast.LessThan: lambda a, b: a < b,
    ast.LessEqual: lambda a, b: a <= b,
    ast.GreaterThan: lambda a, b: a > b,
    ast.GreaterEqual: lambda a, b: a >= b,
}
_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}


def parse_filter(text: str, lang: str | None) -> Any:
    """The pygeofilter AST of a ``filter`` in ``filter-lang`` (default cql2-text), or 400."""
    # "cql-text": the pre-1.0 name GDAL < 3.7 sends; what it writes is CQL2 text too.
    lang = "cql2-text" if lang in (None, "", "cql-text") else lang
    if lang not in FILTER_LANGS:
        raise ValidationError(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")
    if len(text) > MAX_FILTER_CHARS:
        raise ValidationError(f"the filter is longer than {MAX_FILTER_CHARS} characters")
    try:
        tree = cql2.parse_text(text).to_json() if lang == "cql2-text" else json.loads(text)
        return parse_cql2_json(_for_pygeofilter(tree))
    except ValidationError:
        raise
    except Exception as error:  # the parsers raise lark's and their own errors, untyped
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValidationError(f"the filter is not valid {lang}: {first[:200]}") from error


def _for_pygeofilter(node: Any) -> Any:
    """CQL2-JSON rewritten where pygeofilter 0.4 reads it wrongly: every
    ``{"bbox": [minx, miny, maxx, maxy]}`` reordered for its ``Envelope(x1, x2, y1, y2)``, and
    ``between`` given its bounds as one list."""
    if isinstance(node, list):
        return [_for_pygeofilter(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"}:
        box = node["bbox"]
        if not isinstance(box, list) or len(box) not in (4, 6):
            raise ValidationError("a bbox literal has 4 (or 6) numbers")
        half = len(box) // 2
        return {"bbox": [box[0], box[half], box[1], box[half + 1]]}
    args = node.get("args")
    if node.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        node = {**node, "args": [args[0], [args[1], args[2]]]}
    return {k: _for_pygeofilter(v) for k, v in node.items()}


class _Translator:
    """One filter's AST → a SQLAlchemy condition over one collection."""

    def __init__(self, collection: Collection, crs: Crs) -> None:
        self.collection = collection
        self.crs = crs

    def condition(self, node: Any) -> sa.ColumnElement[bool]:
        if isinstance(node, ast.Not):
            return sa.not_(self.condition(node.sub_node))
        if isinstance(node, ast.And):
            return sa.and_(self.condition(node.lhs), self.condition(node.rhs))
        if isinstance(node, ast.Or):
            return sa.or_(self.condition(node.lhs), self.condition(node.rhs))
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        for kind, compare in _COMPARISONS.items():
            if type(node) is kind:
                lhs, rhs = self.operands(node.lhs, [node.rhs])
                return compare(lhs, rhs[0])
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.Between):
            lhs, (low, high) = self.operands(node.lhs, [node.low, node.high])
            clause = lhs.between(low, high)
            return sa.not_(clause) if node.not_ else clause
        if isinstance(node, ast.In):
            lhs, options = self.operands(node.lhs, list(node.sub_nodes))
            clause = lhs.in_(options)
            return sa.not_(clause) if node.not_ else clause
        if isinstance(node, ast.IsNull):
            clause = self.operands(node.lhs, [])[0].is_(None)
            return sa.not_(clause) if node.not_ else clause
        if type(node) in _SPATIAL:
            return self._spatial(_SPATIAL[type(node)], node.lhs, node.rhs)
        if isinstance(node, ast.BBox):
            envelope = values.Envelope(node.minx, node.maxx, node.miny, node.maxy)
            return self._spatial("ST_Intersects", node.lhs, envelope)
        if isinstance(node, ast.TemporalPredicate):
            return self._temporal(node)
        raise ValidationError(f"this filter operation is not supported: {_name(node)}")

    def _like(self, node: ast.Like) -> sa.ColumnElement[bool]:
        prop = self.attribute(node.lhs)
        if prop.type != "string" or prop.format:
            raise ValidationError("LIKE applies to text properties only")
        # CQL2's wildcards are % and _ as in SQL; pygeofilter reports its own defaults.
        pattern = sa.literal(node.pattern, sa.String)
        clause = prop.column.ilike(pattern) if node.nocase else prop.column.like(pattern)
        return sa.not_(clause) if node.not_ else clause

    def attribute(self, node: Any) -> Property:
        if _is_casei(node):
            (node,) = node.arguments
        if not isinstance(node, ast.Attribute):
            raise ValidationError(f"expected a property name, got {_name(node)}")
        prop = self.collection.properties.get(node.name)
        if prop is None:
            raise ValidationError(
                f"{node.name!r} is not queryable in {self.collection.id}; see its /queryables"
            )
        return prop

    def operands(self, lhs: Any, rhs: list[Any]) -> tuple[Any, list[Any]]:
        """A property and the values it is compared with, each bound with the property's type
        (a value of another type is a 400 here, not a database error)."""
        prop = self.attribute(lhs)
        column: Any = prop.column
        if _is_casei(lhs):  # CASEI(property): compare lower-cased
            if prop.type != "string" or prop.format:
                raise ValidationError("CASEI applies to text properties only")
            column = sa.func.lower(column)
        return column, [self.value(v, prop, lower=column is not prop.column) for v in rhs]

    def value(self, node: Any, prop: Property, *, lower: bool = False) -> Any:
        if _is_casei(node):
            (node,) = node.arguments
            lower = True
        if isinstance(node, ast.Attribute):
            other = self.attribute(node)
            if (other.type, other.format) != (prop.type, prop.format):
                raise ValidationError("compared properties must have the same type")
            return sa.func.lower(other.column) if lower else other.column
        kind = (prop.type, prop.format)
        if kind == ("string", "date-time"):
            if isinstance(node, str):
                node = _parse_instant(node)
            if isinstance(node, date):
                return sa.literal(_as_datetime(node), sa.DateTime(timezone=True))
        elif kind == ("string", None) and isinstance(node, str):
            return sa.literal(node.lower() if lower else node, sa.String)
        elif kind == ("boolean", None) and isinstance(node, bool):
            return sa.literal(node, sa.Boolean)
        elif kind == ("integer", None) and _whole(node):
            return sa.literal(int(node), sa.BigInteger)
        elif (
            kind == ("number", None)
            and isinstance(node, int | float)
            and not isinstance(node, bool)
        ):
            return sa.literal(float(node), sa.Float)
        wanted = prop.format or prop.type
        raise ValidationError(f"expected a {wanted} value, got {_name(node)} {node!r}"[:200])

    def geometry(self, node: Any) -> Any:
        if isinstance(node, ast.Attribute):
            if node.name not in GEOMETRY_NAMES:
                raise ValidationError(
                    f"{node.name!r} is not a geometry; the geometry is called 'geometry'"
                )
            return self.collection.geom
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            numbers = node.arguments
            if len(numbers) not in (4, 6) or not all(isinstance(n, int | float) for n in numbers):
                raise ValidationError("BBOX(...) takes 4 (or 6) numbers")
            half = len(numbers) // 2
            node = values.Envelope(numbers[0], numbers[half], numbers[1], numbers[half + 1])
        if isinstance(node, values.Envelope):
            envelope = sa.func.ST_MakeEnvelope(
                float(node.x1), float(node.y1), float(node.x2), float(node.y2), self.crs.srid
            )
            return self.crs.to_storage(envelope)
        if isinstance(node, values.Geometry):
            _check_literal(node.geometry)
            text = json.dumps(node.geometry)
            literal = sa.func.ST_SetSRID(sa.func.ST_GeomFromGeoJSON(text), self.crs.srid)
            return self.crs.to_storage(literal)
        raise ValidationError(f"expected the geometry or a geometry literal, got {_name(node)}")

    def _spatial(self, function: str, lhs: Any, rhs: Any) -> sa.ColumnElement[bool]:
        clause: sa.ColumnElement[bool] = getattr(sa.func, function)(
            self.geometry(lhs), self.geometry(rhs)
        )
        return clause

    def _temporal(self, node: ast.TemporalPredicate) -> sa.ColumnElement[bool]:
        prop = self.attribute(node.lhs)
        if prop.format != "date-time":
            raise ValidationError("temporal operations apply to date-time properties only")
        column = prop.column
        start, end = _period(node.rhs)
        name = type(node).__name__
        if name in ("TimeDisjoint",):
            return sa.not_(_overlaps(column, start, end))
        if name == "TimeBefore":
            return column < start
        if name == "TimeAfter":
            return column > end
        if name in ("TimeOverlaps", "TimeDuring", "TimeEquals") or name.endswith("Intersects"):
            return _overlaps(column, start, end)
        raise ValidationError(f"this temporal operation is not supported: {name}")


def _overlaps(column: Any, start: datetime | None, end: datetime | None) -> Any:
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column <= end)
    return sa.and_(sa.true(), *clauses)


def _period(node: Any) -> tuple[datetime | None, datetime | None]:
    if isinstance(node, values.Interval):
        if not all(v is None or isinstance(v, date) for v in (node.start, node.end)):
            raise ValidationError("intervals with durations are not supported")
        start = _as_datetime(node.start) if node.start is not None else None
        end = _as_datetime(node.end, end=True) if node.end is not None else None
        return start, end
    if isinstance(node, date):
        return _as_datetime(node), _as_datetime(node, end=True)
    raise ValidationError(f"expected a timestamp, date or interval, got {_name(node)}")


def _as_datetime(value: date, *, end: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)


def _check_literal(geometry: dict[str, Any]) -> None:
    """A geometry literal GEOS can work with, or 400 (an invalid one would fail in PostGIS)."""
    try:
        parsed = shapely.geometry.shape(geometry)
    except Exception as error:  # shapely raises several types for malformed coordinates
        raise ValidationError(f"invalid geometry literal: {error}"[:200]) from error
    if not parsed.is_valid:
        reason = shapely.is_valid_reason(parsed)
        raise ValidationError(f"invalid geometry literal: {reason}"[:200])


def _is_casei(node: Any) -> bool:
    # pygeofilter reads CQL2's CASEI as a function called lower.
    return isinstance(node, ast.Function) and node.name.lower() in ("casei", "lower")


def _whole(node: Any) -> bool:
    # cql2 reads every number as a float: 300 arrives as 300.0.
    if isinstance(node, bool) or not isinstance(node, int | float):
        return False
    return float(node).is_integer() and abs(node) < 2**63


def _parse_instant(text: str) -> datetime:
    try:
        return _as_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as error:
        raise ValidationError(f"{text[:50]!r} is not an ISO 8601 date or time") from error


def _name(node: Any) -> str:
    return type(node).__name__ if not isinstance(node, str) else repr(node)


def filter_condition(
    collection: Collection, text: str, lang: str | None, crs: Crs
) -> sa.ColumnElement[bool]:
    """The SQL condition of a CQL2 ``filter`` on ``collection`` (geometries in ``crs``)."""
    return _Translator(collection, crs).condition(parse_filter(text, lang))
