"""Read-only reference layers: categories, regions and grids."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gis.api.deps import PlatformDep, SessionDep, StaleReadOk
from gis.api.geojson import Feature, FeatureCollection, feature_collection, geometry_json
from gis.api.schemas.plans import GridColumns
from gis.api.schemas.types import Time, read_from
from gis.api.security import allow
from gis.layers import grids as grid_layer
from gis.layers.categories import Platform, list_categories
from gis.layers.regions import RegionLevel, get_region, list_regions
from gis.layers.users import Role
from gis.services.pinyin import initials

# Reference layers: every role reads them, and anyone when GIS_PUBLIC_LAYERS is on.
router = APIRouter(tags=["layers"], dependencies=[StaleReadOk, Depends(allow(*Role, public=True))])


class CategoryRead(BaseModel):
    """A category of case and how it is handled."""

    code: str
    name_zh: str
    name_en: str
    platform: Platform
    unit_type: str
    time_limit_hours: float
    working_hours: bool
    priority: int
    initials: str = Field(
        description="Pinyin initials of name_zh (油烟扰民 → yyrm), for search as you type"
    )


@router.get("/categories", response_model=list[CategoryRead])
def categories(session: SessionDep, platform: PlatformDep) -> list[CategoryRead]:
    """The category catalog: category → platform → unit type, time limit, priority."""
    return [
        read_from(CategoryRead, c, platform=Platform(c.platform), initials=initials(c.name_zh))
        for c in list_categories(session, platform=platform)
    ]


class RegionProperties(BaseModel):
    """Properties of a region feature."""

    code: str
    name: str
    name_en: str | None
    level: RegionLevel
    parent_code: str | None
    households: int | None
    population: int | None


@router.get("/regions", response_model=FeatureCollection[RegionProperties])
def regions(
    session: SessionDep,
    level: Annotated[RegionLevel | None, Query(description="city, county, town or village")] = None,
    parent: Annotated[str | None, Query(max_length=12, description="Parent region code")] = None,
) -> FeatureCollection[RegionProperties]:
    """Administrative regions as GeoJSON (towns: ?level=town; a town's villages: ?parent=…)."""
    rows = list_regions(session, level=level, parent_code=parent)
    return feature_collection(RegionProperties, rows, id_of=lambda r: r.code)


@router.get("/regions/{code}", response_model=Feature[RegionProperties])
def region(session: SessionDep, code: str) -> Feature[RegionProperties]:
    """One region with its boundary."""
    r = get_region(session, code)
    return Feature[RegionProperties](
        id=r.code,
        geometry=geometry_json(r.geom),
        properties=RegionProperties.model_validate(r, from_attributes=True),
    )


class GridProperties(GridColumns):
    """Properties of a grid feature."""

    members: list[str]


@router.get("/grids", response_model=FeatureCollection[GridProperties])
def grids(
    session: SessionDep,
    town: Annotated[str | None, Query(max_length=12, description="Town code")] = None,
    village: Annotated[str | None, Query(max_length=12, description="Village code")] = None,
    # With a UTC offset (Time): a naive time would be read in the server's zone, 8 hours off
    # for a Quzhou user.
    at: Annotated[
        Time | None, Query(description="The versions in force at this time (default: now)")
    ] = None,
) -> FeatureCollection[GridProperties]:
    """Grids (网格) as GeoJSON, as they were at ``at``."""
    rows = grid_layer.list_grids(session, at=at, town_code=town, village_code=village)
    members = grid_layer.member_names_by_grid(session, [g.code for g in rows])
    return feature_collection(
        GridProperties,
        rows,
        id_of=lambda g: g.code,
        properties=lambda g: GridProperties(
            **GridColumns.model_validate(g).model_dump(),
            members=members.get(g.code, []),
        ),
    )
