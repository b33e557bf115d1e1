"""The queries behind the OGC API (``/ogc``): feature pages, single features, counts and vector
tiles of the collections in ``gis.services.ogc_collections``.

Features are built as GeoJSON text by PostgreSQL (``json_build_object`` and ``ST_AsGeoJSON``), so
a page costs one statement and no per-value work in Python. Every condition is a SQLAlchemy
expression with bound parameters; property and column names come from the collection, never
from the request. The caller's scope (``gis.api.ogc.access``) arrives as one more condition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any

import morecantile
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.visitors import InternalTraversal

from gis.errors import NotFoundError, ValidationError
from gis.layers.base import SRID
from gis.layers.regions import Region, RegionLevel
from gis.queries import Flow, Query, run
from gis.services.ogc_collections import Collection, get_collection
from gis.services.ogc_crs import Crs

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
TILE_EXTENT = 4096
TILE_BUFFER = 64


# --- parameters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A ``datetime`` parameter: an instant (start == end) or an interval (either end open)."""

    start: datetime | None
    end: datetime | None


def parse_datetime(value: str | None) -> Period | None:
    """An OGC ``datetime`` (RFC 3339 instant, date, or interval with ``..``), or 400."""
    if value is None or value == "":
        return None
    if "/" in value:
        first, _, second = value.partition("/")
        start = None if first in ("", "..") else _instant(first, end=False)
        end = None if second in ("", "..") else _instant(second, end=True)
        if start is None and end is None:
            raise ValidationError("datetime: an interval needs at least one end")
        if start is not None and end is not None and start > end:
            raise ValidationError("datetime: the interval ends before it starts")
        return Period(start, end)
    return Period(_instant(value, end=False), _instant(value, end=True))


def _instant(text: str, *, end: bool) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:  # a date: the whole day (UTC)
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise ValidationError(f"datetime: {text[:40]!r} is not an RFC 3339 date or time") from error
    if moment.tzinfo is None:
        raise ValidationError("datetime needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
    return moment


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """A ``bbox`` of 4 (or 6, heights ignored) numbers, in the axis order of its bbox-crs."""
    if value is None or value == "":
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError as error:
        raise ValidationError("bbox must be 4 (or 6) comma-separated numbers") from error
    if len(numbers) not in (4, 6) or not all(n == n and abs(n) != float("inf") for n in numbers):
        raise ValidationError("bbox must be 4 (or 6) comma-separated finite numbers")
    half = len(numbers) // 2
    a, b, c, d = numbers[0], numbers[1], numbers[half], numbers[half + 1]
    return a, b, c, d


def parse_sortby(collection: Collection, value: str | None) -> list[tuple[str, bool]]:
    """``sortby=name,-households`` as (property, descending) pairs, checked, or 400."""
    if not value:
        return []
    keys = []
    for part in value.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        if name not in collection.properties:
            raise ValidationError(f"sortby: {name!r} is not a property of {collection.id}")
        keys.append((name, descending))
    return keys


def parse_properties(collection: Collection, value: str | None) -> list[str]:
    """The ``properties`` asked for (all by default), checked, or 400."""
    if value is None:
        return list(collection.properties)
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in collection.properties]
    if unknown:
        raise ValidationError(f"properties: {', '.join(unknown)} not in {collection.id}")
    return names


@dataclass
class ItemsQuery:
    """What one items request asks for, parsed and checked."""

    limit: int
    offset: int = 0
    crs: Crs | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: Crs | None = None
    period: Period | None = None
    filter: sa.ColumnElement[bool] | None = None
    properties: list[str] = field(default_factory=list)
    sortby: list[tuple[str, bool]] = field(default_factory=list)


# --- queries --------------------------------------------------------------------------------


def set_timeout(session: Session, milliseconds: int) -> None:
    """A statement time limit for the rest of the transaction: a crafted filter stops there."""
    session.execute(
        sa.select(sa.func.set_config("statement_timeout", str(int(milliseconds)), True))
    )


def _time_condition(collection: Collection, period: Period | None) -> sa.ColumnElement[bool]:
    """The ``datetime`` condition; its times are the parameters ``t_start`` and ``t_end``
    (``_values``), so the statement depends on the period's shape only."""
    start = sa.bindparam("t_start", period.start if period else None, type_=sa.DateTime(True))
    end = sa.bindparam("t_end", period.end if period else None, type_=sa.DateTime(True))
    if collection.versioned:
        assert collection.valid_from is not None and collection.valid_to is not None
        if period is None:  # versioned layers default to the versions in force now
            return collection.valid_to.is_(None)
        clauses = []
        if period.end is not None:
            clauses.append(collection.valid_from <= end)
        if period.start is not None:
            clauses.append(sa.or_(collection.valid_to.is_(None), collection.valid_to > start))
        return sa.and_(sa.true(), *clauses)
    if period is None or collection.instant is None:
        return sa.true()
    column = collection.properties[collection.instant].column
    clauses = []
    if period.start is not None:
        clauses.append(column >= start)
    if period.end is not None:
        clauses.append(column <= end)
    return sa.and_(sa.true(), *clauses)


def _bbox_corners(
    bbox: tuple[float, float, float, float], crs: Crs
) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a ``bbox`` given in ``crs``, checked, or 400."""
    a, b, c, d = bbox
    # In a north-first CRS the numbers come as (min lat, min lon, max lat, max lon).
    xmin, ymin, xmax, ymax = (b, a, d, c) if crs.north_first else (a, b, c, d)
    if xmin > xmax or ymin > ymax:
        raise ValidationError("bbox: the lower corner must come first (and not cross 180°)")
    if crs.geographic and (abs(ymin) > 90 or abs(ymax) > 90 or abs(xmin) > 180 or abs(xmax) > 180):
        raise ValidationError("bbox: coordinates out of range for " + crs.uri)
    return xmin, ymin, xmax, ymax


_BBOX = ("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")


def _bbox_condition(
    collection: Collection, bbox: tuple[float, float, float, float], crs: Crs
) -> sa.ColumnElement[bool]:
    """Features intersecting the bbox; its corners are the parameters ``bbox_*``."""
    corners = _bbox_corners(bbox, crs)
    binds = [sa.bindparam(n, v, type_=sa.Float) for n, v in zip(_BBOX, corners, strict=True)]
    envelope: sa.ColumnElement[Any] = sa.func.ST_MakeEnvelope(*binds, crs.srid)
    if crs.srid != SRID:
        envelope = sa.func.ST_Transform(envelope, SRID)
    return sa.func.ST_Intersects(collection.geom, envelope)


def conditions(
    collection: Collection, query: ItemsQuery, scope: sa.ColumnElement[bool]
) -> list[sa.ColumnElement[bool]]:
    """Every WHERE condition of an items request: the layer, the caller's scope, time, bbox
    and filter."""
    where = [collection.base, scope, _time_condition(collection, query.period)]
    if query.bbox is not None:
        assert query.bbox_crs is not None
        where.append(_bbox_condition(collection, query.bbox, query.bbox_crs))
    if query.filter is not None:
        where.append(query.filter)
    return where


def _feature_json(
    collection: Collection, crs: Crs, properties: Sequence[str]
) -> sa.ColumnElement[str]:
    pairs: list[Any] = []
    for name in properties:
        pairs += [sa.literal(name, sa.String), collection.properties[name].column]
    geometry = sa.func.ST_AsGeoJSON(crs.stored(collection.geom), crs.decimals, 0)
    return sa.cast(
        sa.func.json_build_object(
            "type",
            "Feature",
            "id",
            collection.id_column,
            "geometry",
            sa.cast(geometry, sa.JSON),
            "properties",
            sa.func.json_build_object(*pairs),
        ),
        sa.Text,
    )


@dataclass(frozen=True)
class Page:
    """A page of features and ``numberMatched``: exact up to the threshold, else the
    planner's estimate."""

    features: str  # the page's GeoJSON Feature texts, comma-separated
    returned: int
    matched: int
    estimated: bool


def feature_page_flow(
    collection: Collection,
    query: ItemsQuery,
    scope: sa.ColumnElement[bool],
    *,
    exact_max: int,
) -> Flow[Page]:
    """One page of features, ordered by ``sortby`` then id, with how many match in all.

    The page and the count are ONE statement (a round trip and a compilation less per page).
    The count stops at ``exact_max`` + 1 rows — a full count on every page is what makes large
    layers slow — and above it the planner's row estimate is given instead (a second
    statement). Every value of the request (bbox corners, times, limit, offset) is a named
    parameter, so a request without a filter or a caller scope reuses the statement built for
    its shape (building it costs more Python than the page's SQL; bench/ogc), and the API runs
    it on asyncpg, compiled once per shape too.
    """
    assert query.crs is not None
    values: dict[str, Any] = {
        "page_limit": query.limit,
        "page_offset": query.offset,
        "count_cap": exact_max + 1,
        "t_start": query.period.start if query.period else None,
        "t_end": query.period.end if query.period else None,
    }
    if query.bbox is not None:
        assert query.bbox_crs is not None
        values.update(zip(_BBOX, _bbox_corners(query.bbox, query.bbox_crs), strict=True))
    reused = query.filter is None and _is_true(scope)
    if reused:
        statement, matching = _shaped_page(
            collection.id,
            query.crs,
            tuple(query.properties),
            None if query.bbox is None else query.bbox_crs,
            None
            if query.period is None
            else (query.period.start is None, query.period.end is None),
            tuple(query.sortby),
        )
    else:
        statement, matching = _page_statement(collection, query, scope)
    row = yield Query(statement, values, reused=reused)
    matched, estimated = int(row["matched"]), False
    if matched > exact_max:
        plan = yield Query(Explain(matching), values)
        estimate = int(_json_value(next(iter(plan.values())))[0]["Plan"]["Plan Rows"])
        matched, estimated = max(estimate, exact_max + 1), True
    return Page(row["features"], int(row["returned"]), matched, estimated)


def _is_true(scope: sa.ColumnElement[bool]) -> bool:
    return isinstance(scope, sa.sql.elements.True_)


@lru_cache(maxsize=256)
def _shaped_page(
    collection_id: str,
    crs: Crs,
    properties: tuple[str, ...],
    bbox_crs: Crs | None,
    period: tuple[bool, bool] | None,
    sortby: tuple[tuple[str, bool], ...],
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The page statement of an unscoped, unfiltered request of this shape, built once."""
    placeholder = datetime(2000, 1, 1, tzinfo=UTC)  # the values are parameters
    shape = ItemsQuery(
        limit=1,
        crs=crs,
        bbox=None if bbox_crs is None else (0.0, 0.0, 0.0, 0.0),
        bbox_crs=bbox_crs,
        period=None
        if period is None
        else Period(None if period[0] else placeholder, None if period[1] else placeholder),
        properties=list(properties),
        sortby=list(sortby),
    )
    return _page_statement(get_collection(collection_id), shape, sa.true())


def _page_statement(
    collection: Collection, query: ItemsQuery, scope: sa.ColumnElement[bool]
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The page statement and the statement of the matching rows (for the estimate)."""
    assert query.crs is not None
    where = conditions(collection, query, scope)
    order: list[Any] = [
        collection.properties[name].column.desc().nulls_last()
        if descending
        else collection.properties[name].column.asc().nulls_last()
        for name, descending in query.sortby
    ]
    order.append(collection.id_column)
    rows = (
        sa.select(
            _feature_json(collection, query.crs, query.properties).label("feature"),
            sa.func.row_number().over(order_by=order).label("n"),
        )
        .select_from(collection.table)
        .where(*where)
        .order_by(*order)
        .limit(sa.bindparam("page_limit", type_=sa.Integer))
        .offset(sa.bindparam("page_offset", type_=sa.Integer))
        .cte("page")  # read twice below, computed once
    )
    matching = sa.select(sa.literal(1)).select_from(collection.table).where(*where)
    capped = matching.limit(sa.bindparam("count_cap", type_=sa.Integer)).subquery("capped")
    statement = sa.select(
        sa.select(sa.func.count()).select_from(capped).scalar_subquery().label("matched"),
        sa.select(
            sa.func.coalesce(
                sa.func.string_agg(rows.c.feature, aggregate_order_by(sa.literal(","), rows.c.n)),
                "",
            )
        )
        .scalar_subquery()
        .label("features"),
        sa.select(sa.func.count()).select_from(rows).scalar_subquery().label("returned"),
    )
    return statement, matching


def feature_page(
    session: Session,
    collection: Collection,
    query: ItemsQuery,
    scope: sa.ColumnElement[bool],
    *,
    exact_max: int,
) -> Page:
    """``feature_page_flow`` on a session (in its transaction)."""
    return run(session, feature_page_flow(collection, query, scope, exact_max=exact_max))


class Explain(Executable, sa.ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, as a statement (one row, one column)."""

    inherit_cache = False
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement


@compiles(Explain)
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _json_value(value: Any) -> Any:
    """A json column as read by either driver (psycopg decodes it, asyncpg gives text)."""
    return json.loads(value) if isinstance(value, str) else value


def feature(
    session: Session,
    collection: Collection,
    feature_id: str,
    crs: Crs,
    scope: sa.ColumnElement[bool],
) -> str:
    """One feature (the current version of a grid) as GeoJSON text, or ``NotFoundError`` —
    also for a feature outside the caller's scope."""
    key: Any = feature_id
    if collection.id_type is int:
        if not feature_id.isdigit() or len(feature_id) > 18:
            raise NotFoundError(f"no feature {feature_id!r} in {collection.id}")
        key = int(feature_id)
    statement = (
        sa.select(_feature_json(collection, crs, list(collection.properties)))
        .select_from(collection.table)
        .where(collection.base, scope, _time_condition(collection, None))
        .where(collection.id_column == key)
    )
    text = session.scalar(statement)
    if text is None:
        raise NotFoundError(f"no feature {feature_id!r} in {collection.id}")
    return str(text)


def county_extent(session: Session) -> list[float] | None:
    """The bbox (CRS84) of every town: the spatial extent given for each collection."""
    box = session.execute(
        sa.select(
            sa.func.ST_XMin(sa.func.ST_Extent(Region.geom)),
            sa.func.ST_YMin(sa.func.ST_Extent(Region.geom)),
            sa.func.ST_XMax(sa.func.ST_Extent(Region.geom)),
            sa.func.ST_YMax(sa.func.ST_Extent(Region.geom)),
        ).where(Region.level == RegionLevel.TOWN.value)
    ).one()
    if box[0] is None:
        return None
    return [round(float(v), 7) for v in box]


# --- vector tiles ---------------------------------------------------------------------------


def check_tile(z: int, x: int, y: int) -> morecantile.Tile:
    """A WebMercatorQuad tile, or 400 when the zoom or x/y are outside the matrix set."""
    if not WEB_MERCATOR.minzoom <= z <= WEB_MERCATOR.maxzoom:
        raise ValidationError(
            f"zoom {z} is outside WebMercatorQuad ({WEB_MERCATOR.minzoom}–{WEB_MERCATOR.maxzoom})"
        )
    matrix = WEB_MERCATOR.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise ValidationError(f"tile {z}/{x}/{y} is outside the matrix of zoom {z}")
    return morecantile.Tile(x, y, z)


def _tile_select(collection: Collection, scope: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The MVT statement of a collection; the tile's bounds are the parameters ``xmin``,
    ``ymin``, ``xmax`` and ``ymax`` (EPSG:3857)."""
    envelope = sa.func.ST_MakeEnvelope(
        *(sa.bindparam(name, type_=sa.Float) for name in ("xmin", "ymin", "xmax", "ymax")),
        sa.literal_column("3857"),
    )
    if collection.tile_geom is not None:
        # Stored in 3857 already: nothing to transform, and the index is on it.
        drawn: Any = collection.tile_geom
        touching = sa.func.ST_Intersects(collection.tile_geom, envelope)
    else:
        drawn = sa.func.ST_Transform(collection.geom, sa.literal_column("3857"))
        # Transform the constant, never the indexed column; ST_Intersects (not a bare &&)
        # makes the planner take the GiST index for large tiles too.
        touching = sa.func.ST_Intersects(
            collection.geom, sa.func.ST_Transform(envelope, sa.literal_column(str(SRID)))
        )
    columns: list[Any] = [
        sa.func.ST_AsMVTGeom(
            drawn,
            envelope,
            sa.literal_column(str(TILE_EXTENT)),
            sa.literal_column(str(TILE_BUFFER)),
            sa.true(),
        ).label("geom"),
        collection.id_column.label("id"),
    ]
    for name in collection.tile_properties:
        prop = collection.properties[name]
        column = sa.cast(prop.column, sa.Text) if prop.format else prop.column
        columns.append(column.label(name))
    rows = (
        sa.select(*columns)
        .select_from(collection.table)
        .where(
            collection.base,
            scope,
            _time_condition(collection, None),
            touching,
        )
        .subquery("t")
    )
    # Only integer ids can be MVT feature ids; a text id (a grid code) stays a property. The
    # layer name and numbers are code constants (collection ids are a whitelist).
    # Features in id order: the same data gives the same bytes (and ETag) whatever plan
    # PostgreSQL picks, a parallel scan's order included.
    options = [f"'{collection.id}'", str(TILE_EXTENT), "'geom'"]
    if collection.id_type is int:
        options.append("'id'")
    aggregate = f"ST_AsMVT(t, {', '.join(options)} ORDER BY t.id)"
    return sa.select(sa.literal_column(aggregate).label("mvt")).select_from(rows)


@lru_cache(maxsize=32)
def _unscoped_tile(collection_id: str) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The MVT statement of a collection everyone may read whole, built once, with the values
    of its constant parameters (such as the level of towns)."""
    statement = _tile_select(get_collection(collection_id), sa.true())
    return statement, dict(statement.compile().params)


def _bounds(collection: Collection, z: int, x: int, y: int) -> dict[str, float] | None:
    """The tile's bounds as statement parameters; None below the collection's minimum zoom."""
    bounds = _tile_bounds(z, x, y)
    if z < collection.min_zoom:
        return None
    return dict(bounds)


@lru_cache(maxsize=4096)
def _tile_bounds(z: int, x: int, y: int) -> tuple[tuple[str, float], ...]:
    """A tile's EPSG:3857 bounds (checked), kept for the tiles asked again and again: morecantile
    takes ~50 µs to compute them, a tenth of a cached tile's whole Python."""
    b = WEB_MERCATOR.xy_bounds(check_tile(z, x, y))
    return (("xmin", b.left), ("ymin", b.bottom), ("xmax", b.right), ("ymax", b.top))


def tile(session: Session, collection: Collection, z: int, x: int, y: int, scope: Any) -> bytes:
    """The Mapbox Vector Tile of a collection as the caller may see it (layer named after the
    collection); empty bytes when nothing is there or the zoom is below its minimum."""
    bounds = _bounds(collection, z, x, y)
    if bounds is None:
        return b""
    data = session.scalar(_tile_select(collection, scope), bounds)
    return bytes(data) if data else b""


def tile_flow(collection: Collection, z: int, x: int, y: int) -> Flow[bytes]:
    """``tile`` of a collection read whole (no caller scope) as a flow: the API runs it on
    asyncpg (``gis.db_async``), the same statement, built once per collection."""
    bounds = _bounds(collection, z, x, y)
    if bounds is None:
        return b""
    statement, constants = _unscoped_tile(collection.id)
    row = yield Query(statement, {**constants, **bounds}, reused=True)
    data = row["mvt"] if row else None
    return bytes(data) if data else b""


def etag(*parts: bytes | str) -> str:
    """A strong ETag over the given content."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return f'"{digest.hexdigest()}"'


def tilejson_bounds(extent: list[float] | None) -> list[float]:
    """TileJSON ``bounds`` (the whole world when nothing is loaded)."""
    return extent or [-180.0, -85.0511, 180.0, 85.0511]


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
