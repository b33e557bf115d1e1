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
from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.regions import Region, RegionLevel
from gis.layers.roads import Road
from gis.layers.units import ResponderUnit

# A mapped column of a layer's model.
Column = InstrumentedAttribute[Any]


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
    table: sa.Table
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
    """The named columns of ``model`` as feature properties, typed from their column types."""
    properties = {}
    for name in names:
        column: Column = getattr(model, name)
        properties[name] = Property(column, *_JSON_TYPES[column.type.python_type])
    return properties


_regions = Region.__table__
_region_props = _props(Region, "code", "name", "name_en", "parent_code", "households", "population")

COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            id="towns",
            title="Towns 乡镇/街道",
            description="Towns and sub-districts with their boundaries.",
            table=_regions,  # type: ignore[arg-type]
            id_column=Region.code,
            id_type=str,
            geom=Region.geom,
            geometry_type="MultiPolygon",
            properties=_region_props,
            base=Region.level == RegionLevel.TOWN.value,
            tile_properties=("code", "name"),
        ),
        Collection(
            id="villages",
            title="Villages 行政村/社区",
            description="Villages and communities with their boundaries.",
            table=_regions,  # type: ignore[arg-type]
            id_column=Region.code,
            id_type=str,
            geom=Region.geom,
            geometry_type="MultiPolygon",
            properties=_region_props,
            base=Region.level == RegionLevel.VILLAGE.value,
            tile_properties=("code", "name", "parent_code"),
            min_zoom=8,
        ),
        Collection(
            id="grids",
            title="Grids 网格",
            description="Grids in force now; with `datetime`, the versions in force then "
            "(an instant) or during an interval.",
            table=Grid.__table__,  # type: ignore[arg-type]
            id_column=Grid.code,
            id_type=str,
            geom=Grid.geom,
            geometry_type="MultiPolygon",
            properties=_props(
                Grid,
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
        ),
        Collection(
            id="incidents",
            title="Incidents 事件",
            description="Cases, as the caller may see them (town, grid or unit scope).",
            table=Incident.__table__,  # type: ignore[arg-type]
            id_column=Incident.id,
            id_type=int,
            geom=Incident.geom,
            geometry_type="Point",
            properties=_props(
                Incident,
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
        Collection(
            id="cameras",
            title="Cameras 天眼",
            description="Surveillance cameras with their view sectors (the geometry).",
            table=Camera.__table__,  # type: ignore[arg-type]
            id_column=Camera.code,
            id_type=str,
            geom=Camera.view,
            geometry_type="Polygon",
            properties=_props(
                Camera,
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
        Collection(
            id="units",
            title="Responder units 处置单位",
            description="Units at their last known position, with their status.",
            table=ResponderUnit.__table__,  # type: ignore[arg-type]
            id_column=ResponderUnit.id,
            id_type=int,
            geom=ResponderUnit.geom,
            geometry_type="Point",
            properties=_props(
                ResponderUnit,
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
        Collection(
            id="roads",
            title="Roads 道路",
            description="The road network used for drive times.",
            table=Road.__table__,  # type: ignore[arg-type]
            id_column=Road.id,
            id_type=int,
            geom=Road.geom,
            geometry_type="LineString",
            properties=_props(Road, "name", "road_class", "speed_kmh", "oneway", "length_m"),
            tile_properties=("name", "road_class"),
            min_zoom=10,
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
