"""Tables and the spatial queries on them, one module per layer."""

from gis.layers.base import Base
from gis.layers.cameras import Camera
from gis.layers.categories import Category
from gis.layers.errands import Errand, ErrandEvent, Service
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.imports import ImportRun
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.jobs import Job
from gis.layers.live import LiveEvent, Webhook, WebhookDelivery
from gis.layers.media import Media
from gis.layers.open311 import Open311Request, Open311Update
from gis.layers.plans import GridChange, Plan
from gis.layers.regions import Region
from gis.layers.roads import Road
from gis.layers.units import ResponderUnit, UnitPosition
from gis.layers.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Base",
    "Camera",
    "Category",
    "Errand",
    "ErrandEvent",
    "Grid",
    "GridChange",
    "GridMember",
    "GridMemberGrid",
    "ImportRun",
    "Incident",
    "IncidentEvent",
    "Job",
    "LiveEvent",
    "Media",
    "Open311Request",
    "Open311Update",
    "Plan",
    "Region",
    "ResponderUnit",
    "Road",
    "Service",
    "UnitPosition",
    "User",
    "Webhook",
    "WebhookDelivery",
]
