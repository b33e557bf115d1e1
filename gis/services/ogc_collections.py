"""The layers served as OGC API collections: which table, which columns are the feature's
properties (and so its queryables), and its time. Who may read each is decided where every
other endpoint's access is, in the API (``gis.api.ogc.access``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from gis.errors import NotFoundError
from gis.layers.cameras import Camera
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident
from gis.layers.regions import Region, RegionLevel
from gis.layers.roads import Road
from gis.layers.units import ResponderUnit
from gis.services.cameras import coverage_columns

# A mapped column of a layer's model, or a column of a derived layer's subquery.
Column = InstrumentedAttribute[Any] | sa.ColumnElement[Any]


@dataclass(frozen=True)
class Property:
    """One feature property: its column and JSON Schema type (and format)."""

    column: Column
    type: str
    format: str | None = None
    title: str | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the property (for /queryables and /schema)."""
        schema: dict[str, Any] = {"type": self.type}
        if self.format:
            schema["format"] = self.format
        if self.title:
            schema["title"] = self.title
        return schema


@dataclass(frozen=True)
class Collection:
    """A layer as an OGC collection."""

    id: str
    title: str
    description: str
    table: sa.FromClause  # a table, or the subquery of a derived layer
    id_column: Column
    id_type: type
    geom: Column
    geometry_type: str
    properties: dict[str, Property]
    # Rows of the table that belong to the layer at all (towns are the regions of level town).
    base: sa.ColumnElement[bool] = field(default_factory=sa.true)
    # The instant ``datetime`` is matched against, or for versioned layers the validity period.
    instant: str | None = None
    valid_from: Column | None = None
    valid_to: Column | None = None
    # The properties a vector tile carries (few: a tile is drawn, not queried).
    tile_properties: tuple[str, ...] = ()
    min_zoom: int = 0
    max_zoom: int = 22
    # ``geom`` already in EPSG:3857 (a generated column), which tiles draw and select on.
    tile_geom: Column | None = None

    @property
    def versioned(self) -> bool:
        """Whether ``datetime`` selects versions in force (grids) rather than instants."""
        return self.valid_from is not None

    @property
    def temporal(self) -> bool:
        """Whether the layer has a time ``datetime`` applies to."""
        return self.versioned or self.instant is not None


# The JSON Schema type (and format) of a column, by the Python type it reads as.
_JSON_TYPES: dict[type, tuple[str, str | None]] = {
    str: ("string", None),
    int: ("integer", None),
    float: ("number", None),
    bool: ("boolean", None),
    datetime: ("string", "date-time"),
}


def _props(model: Any, *names: str) -> dict[str, Property]:
    """The named columns of ``model`` (a model or a subquery's ``.c``) as feature properties,
    typed from their column types."""
    properties = {}
    for name in names:
        column: Column = getattr(model, name)
        properties[name] = Property(column, *_JSON_TYPES[column.type.python_type])
    return properties


# Grid members with the current grids they serve: one feature per (member, grid), so a bbox
# or a tile reaches the grids' GiST index through the join. Personal data: who may read it is
# decided with the cases' rules (gis.api.ogc.access).
_members = (
    sa.select(
        (GridMemberGrid.grid_code + ":" + sa.cast(GridMember.id, sa.String)).label("id"),
        GridMember.id.label("member_id"),
        GridMember.name,
        GridMember.phone,
        Grid.code.label("grid_code"),
        Grid.name.label("grid_name"),
        Grid.village_code,
        Grid.town_code,
        Grid.geom,
    )
    .join(GridMemberGrid, GridMemberGrid.member_id == GridMember.id)
    .join(Grid, sa.and_(Grid.code == GridMemberGrid.grid_code, Grid.valid_to.is_(None)))
    .where(GridMember.active.is_(True))
    .subquery("member_grids")
)

# Camera coverage of each current grid, by the coverage service's rule (gis.services.cameras):
# each figure a scalar subquery, computed only for the rows and columns a request reads.
_coverage = (
    sa.select(
        Grid.code,
        Grid.name,
        Grid.village_code,
        Grid.town_code,
        Grid.geom,
        *(column.label(name) for name, column in coverage_columns(Grid.geom).items()),
    )
    .where(Grid.valid_to.is_(None))
    .subquery("grid_coverage")
)


def _layer(
    rows: Any,
    *,
    id_column: str,
    properties: tuple[str, ...],
    table: sa.FromClause | None = None,
    geom: str = "geom",
    **rest: Any,
) -> Collection:
    """A collection of ``rows`` (a model, or a subquery's ``.c`` with its ``table``): its id
    column (the id's type read from it), geometry and named properties."""
    key: Column = getattr(rows, id_column)
    return Collection(
        table=rows.__table__ if table is None else table,
        id_column=key,
        id_type=key.type.python_type,
        geom=getattr(rows, geom),
        properties=_props(rows, *properties),
        **rest,
    )


def _regions(level: RegionLevel, **rest: Any) -> Collection:
    """The regions of one level (towns, villages): the same table, columns and properties."""
    return _layer(
        Region,
        id_column="code",
        geometry_type="MultiPolygon",
        properties=("code", "name", "name_en", "parent_code", "households", "population"),
        base=Region.level == level.value,
        **rest,
    )


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        _regions(
            RegionLevel.TOWN,
            id="towns",
            title="Towns 乡镇/街道",
            description="Towns and sub-districts with their boundaries.",
            tile_properties=("code", "name"),
        ),
        _regions(
            RegionLevel.VILLAGE,
            id="villages",
            title="Villages 行政村/社区",
            description="Villages and communities with their boundaries.",
            tile_properties=("code", "name", "parent_code"),
            min_zoom=8,
        ),
        _layer(
            Grid,
            id="grids",
            title="Grids 网格",
            description="Grids in force now; with `datetime`, the versions in force then "
            "(an instant) or during an interval.",
            id_column="code",
            geometry_type="MultiPolygon",
            properties=(
                "code",
                "version",
                "name",
                "village_code",
                "town_code",
                "households",
                "population",
                "valid_from",
                "valid_to",
            ),
            valid_from=Grid.valid_from,
            valid_to=Grid.valid_to,
            tile_properties=("code", "name", "village_code", "town_code"),
            min_zoom=8,
            tile_geom=Grid.geom_3857,
        ),
        _layer(
            Incident,
            id="incidents",
            title="Incidents 事件",
            description="Cases, as the caller may see them (town, grid or unit scope).",
            id_column="id",
            geometry_type="Point",
            properties=(
                "category_code",
                "platform",
                "status",
                "description",
                "reporter_kind",
                "location_quality",
                "grid_code",
                "village_code",
                "town_code",
                "unit_id",
                "reported_at",
                "due_at",
                "closed_at",
                "escalation_level",
            ),
            instant="reported_at",
            tile_properties=("category_code", "platform", "status", "reported_at"),
            min_zoom=10,
        ),
        _layer(
            Camera,
            id="cameras",
            title="Cameras 天眼",
            description="Surveillance cameras with their view sectors (the geometry).",
            id_column="code",
            geom="view",
            geometry_type="Polygon",
            properties=(
                "code",
                "name",
                "kind",
                "status",
                "heading_deg",
                "fov_deg",
                "range_m",
                "town_code",
                "updated_at",
            ),
            instant="updated_at",
            tile_properties=("code", "kind", "status"),
            min_zoom=10,
        ),
        _layer(
            ResponderUnit,
            id="units",
            title="Responder units 处置单位",
            description="Units at their last known position, with their status.",
            id_column="id",
            geometry_type="Point",
            properties=(
                "code",
                "name",
                "platform",
                "unit_type",
                "jurisdiction_code",
                "status",
                "updated_at",
            ),
            instant="updated_at",
            tile_properties=("code", "name", "platform", "status"),
        ),
        _layer(
            Road,
            id="roads",
            title="Roads 道路",
            description="The road network used for drive times.",
            id_column="id",
            geometry_type="LineString",
            properties=("name", "road_class", "speed_kmh", "oneway", "length_m"),
            tile_properties=("name", "road_class"),
            min_zoom=10,
        ),
        _layer(
            _members.c,
            table=_members,
            id="members",
            title="Grid members 网格员",
            description="Active grid members with the current grids they serve (one feature "
            "per member and grid, id `grid:member`); personal data, scoped like cases.",
            id_column="id",
            geometry_type="MultiPolygon",
            properties=(
                "member_id",
                "name",
                "phone",
                "grid_code",
                "grid_name",
                "village_code",
                "town_code",
            ),
            tile_properties=("member_id", "name", "grid_code"),
            min_zoom=10,
        ),
        _layer(
            _coverage.c,
            table=_coverage,
            id="coverage",
            title="Camera coverage per grid 网格天眼覆盖",
            description="Each current grid with the online cameras whose views touch it and "
            "the share of its area they see (measured in its UTM zone).",
            id_column="code",
            geometry_type="MultiPolygon",
            properties=(
                "code",
                "name",
                "village_code",
                "town_code",
                "cameras",
                "area_m2",
                "covered_m2",
                "covered_share",
            ),
            tile_properties=("code", "cameras", "covered_share"),
            # Each grid's coverage is computed when read: tiles from the town level down.
            min_zoom=12,
        ),
    )
}


def get_collection(collection_id: str) -> Collection:
    """The collection with this id, or ``NotFoundError``."""
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise NotFoundError(
            f"no collection {collection_id!r}; the collections are: {', '.join(COLLECTIONS)}"
        )
    return found
