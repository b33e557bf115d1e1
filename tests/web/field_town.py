"""A small committed town for the phone-app tests, far from the demo county and from
``tests.maps.town`` (its own codes), with a grid member who has a login; removed afterwards.

    town 970100001000 = [112.00, 112.04] x [29.00, 29.03]
      FA1 = [112.00, 112.02] x [29.00, 29.03]  member 赵三 (who logs in)
      FA2 = [112.02, 112.04] x [29.00, 29.03]  no member
    a police station (available) inside the town; a category only these tests use (retired by
    one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.categories import Category
from gis.layers.errands import Errand, load_services
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.incidents import Incident
from gis.layers.media import Media
from gis.layers.regions import Region
from gis.layers.units import ResponderUnit
from gis.layers.users import Role, User
from gis.services import access
from gis.services.errands import ErrandRequest, request_errand
from gis.settings import Settings

COUNTY = "970100"
TOWN = "970100001000"
VILLAGE = "970100001001"
INSIDE_FA1 = (112.01, 29.012)
USER = "fieldapp-zhao"
RETIRED = "fieldapp_retired"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FieldTown:
    """What the tests need: the member's token and user id, and the errand waiting for them."""

    token: str
    user_id: int
    member_id: int
    errand_id: int


def _multi(minx: float, miny: float, maxx: float, maxy: float) -> object:
    return from_shape(MultiPolygon([box(minx, miny, maxx, maxy)]), srid=4326)


def build(engine: Engine, settings: Settings) -> FieldTown:
    """Create and commit the town, its grids, member, login, unit, errand and test category."""
    remove(engine)
    with Session(engine) as s:
        load_services(s)
        s.add(
            Region(code=COUNTY, name="外县", level="county", geom=_multi(111.9, 28.9, 112.2, 29.2))
        )
        s.flush()
        s.add(
            Region(
                code=TOWN,
                name="田野镇",
                name_en="Tianye",
                level="town",
                parent_code=COUNTY,
                geom=_multi(112.00, 29.00, 112.04, 29.03),
            )
        )
        s.flush()
        s.add(
            Region(
                code=VILLAGE,
                name="田野村",
                level="village",
                parent_code=TOWN,
                geom=_multi(112.00, 29.00, 112.04, 29.03),
            )
        )
        s.flush()
        for code, minx in (("FA1", 112.00), ("FA2", 112.02)):
            s.add(
                Grid(
                    code=code,
                    version=1,
                    name=f"{code}网格",
                    village_code=VILLAGE,
                    town_code=TOWN,
                    households=10,
                    population=30,
                    geom=_multi(minx, 29.00, minx + 0.02, 29.03),
                    valid_from=EPOCH,
                )
            )
        member = GridMember(name="赵三", phone="13900000003", town_code=TOWN)
        s.add(member)
        s.flush()
        s.add(GridMemberGrid(member_id=member.id, grid_code="FA1"))
        s.add(
            ResponderUnit(
                code="FA-PS-1",
                name="田野派出所",
                platform="governance",
                unit_type="police_station",
                jurisdiction_code=TOWN,
                status="available",
                geom=from_shape(Point(112.015, 29.015), srid=4326),
            )
        )
        s.add(
            Category(
                code=RETIRED,
                name_zh="测试停用类别",
                name_en="Category to retire",
                platform="governance",
                unit_type="police_station",
                time_limit_hours=24,
                working_hours=False,
                priority=3,
            )
        )
        user = access.add_user(
            s, name=USER, role=Role.GRID_MEMBER, town_codes=[TOWN], member_id=member.id
        )
        token = access.issue_token(s, user)
        service = s.scalar(
            sa.text("SELECT code FROM services WHERE proxy_allowed ORDER BY code LIMIT 1")
        )
        errand = request_errand(
            s,
            ErrandRequest(
                service=service,
                applicant_name="钱大妈",
                applicant_phone="13900000009",
                lon=INSIDE_FA1[0],
                lat=INSIDE_FA1[1],
            ),
            settings=settings,
        )
        s.commit()
        return FieldTown(token, user.id, member.id, errand.id)


def remove(engine: Engine) -> None:
    """Delete everything ``build`` made and every case and photo reported in the town."""
    with Session(engine) as s:
        user_id = s.scalar(sa.select(User.id).where(User.name == USER))
        if user_id is not None:
            s.execute(sa.delete(Media).where(Media.uploaded_by == user_id))
        s.execute(
            sa.update(Incident).where(Incident.town_code == TOWN).values(duplicate_of_id=None)
        )
        s.execute(sa.delete(Incident).where(Incident.town_code == TOWN))
        s.execute(sa.delete(Errand).where(Errand.town_code == TOWN))
        s.execute(sa.delete(User).where(User.name == USER))
        s.execute(sa.delete(ResponderUnit).where(ResponderUnit.jurisdiction_code == TOWN))
        s.execute(sa.text("DELETE FROM grid_member_grids WHERE grid_code IN ('FA1', 'FA2')"))
        s.execute(sa.delete(GridMember).where(GridMember.town_code == TOWN))
        s.execute(sa.delete(Grid).where(Grid.town_code == TOWN))
        s.execute(sa.delete(Category).where(Category.code == RETIRED))
        for code in (VILLAGE, TOWN, COUNTY):
            s.execute(sa.delete(Region).where(Region.code == code))
        s.commit()
