"""Tables and the spatial queries on them, one module per layer."""

from gis.layers.base import Base
from gis.layers.cameras import Camera
from gis.layers.categories import Category
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.regions import Region
from gis.layers.roads import Road
from gis.layers.units import ResponderUnit
from gis.layers.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Base",
    "Camera",
    "Category",
    "Grid",
    "GridMember",
    "GridMemberGrid",
    "Incident",
    "IncidentEvent",
    "Region",
    "ResponderUnit",
    "Road",
    "User",
]
