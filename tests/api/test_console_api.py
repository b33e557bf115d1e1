"""The operations the dispatcher's console is built on: GET /dispatch/queue, /dispatch/board,
/incidents/{id}/responders, /dispatch/nearest?jurisdiction=, and assignments with
expected_unit_id (409 naming who assigned first; 409 for an off-duty unit)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.base import utcnow
from gis.layers.incidents import Incident
from gis.layers.units import ResponderUnit
from gis.layers.users import Role
from gis.services.access import Principal
from tests.services.dispatch_fixtures import (
    COUNTY,
    OTHER_TOWN,
    TOWN,
    VILLAGE,
    add_regions,
    add_road,
    add_unit,
    lonlat,
)


def as_user(app: Any, role: Role, towns: list[str] | None, name: str = "disp-a") -> TestClient:
    """A client acting as ``name`` with ``role`` over ``towns`` (None: every town)."""
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None,
        name=name,
        role=role,
        town_codes=None if towns is None else frozenset(towns),
    )
    return TestClient(app)


def add_case(
    session: Session,
    x: float,
    *,
    town: str = TOWN,
    status: str = "reported",
    unit: ResponderUnit | None = None,
    reported: datetime,
    due: datetime | None = None,
    category: str = "public_security_hazard",
    platform: str = "governance",
    **extra: Any,
) -> Incident:
    """A case at (x, 0) m from the origin."""
    lon, lat = lonlat(x, 0)
    case = Incident(
        category_code=category,
        platform=platform,
        status=status,
        reporter_kind=extra.pop("reporter_kind", "citizen"),
        geom=from_shape(Point(lon, lat), srid=4326),
        source_lon=lon,
        source_lat=lat,
        location_quality=extra.pop("location_quality", "inside"),
        town_code=town,
        village_code=VILLAGE if town == TOWN else None,
        county_code=COUNTY,
        unit_id=unit.id if unit else None,
        reported_at=reported,
        assigned_at=reported if unit else None,
        updated_at=reported,
        due_at=due,
        **extra,
    )
    session.add(case)
    session.flush()
    return case


@pytest.fixture
def county(session: Session) -> dict[str, Any]:
    """A road along the x axis; police units of the town, the county, another town; busy and
    off-duty ones; and cases of every bucket."""
    add_regions(session)
    add_road(session, [(0, 0), (4000, 0)], 1, 2, speed_kmh=36)
    now = utcnow()
    units = {
        "near": add_unit(session, "99C-NEAR", 600, 0),
        "county": add_unit(session, "99C-CTY", 1500, 0, town=COUNTY),
        "other": add_unit(session, "99C-OTH", 400, 0, town=OTHER_TOWN),
        "busy": add_unit(session, "99C-BUSY", 150, 0, status="busy"),
        "off": add_unit(session, "99C-OFF", 250, 0, status="off_duty"),
        "market": add_unit(session, "99C-MKT", 50, 0, unit_type="market_office", platform="market"),
    }
    hour = timedelta(hours=1)
    cases = {
        "overdue": add_case(
            session, 100, unit=units["near"], status="assigned",
            reported=now - 30 * hour, due=now - 6 * hour,
        ),
        "fresh": add_case(session, 120, reported=now - 0.1 * hour, due=now + 23 * hour),
        "settled": add_case(
            session, 140, unit=units["near"], status="accepted",
            reported=now - 5 * hour, due=now + 19 * hour,
        ),
        "escalated": add_case(
            session, 160, unit=units["near"], status="escalated",
            reported=now - 10 * hour, due=now + 14 * hour,
        ),
        "camera": add_case(
            session, 180, unit=units["near"], status="assigned", reporter_kind="camera",
            reported=now - 3 * hour, due=now + 21 * hour,
        ),
        "market": add_case(
            session, 200, category="elderly_fraud_sales", platform="market",
            reported=now - 4 * hour, due=now + 20 * hour,
        ),
        "elsewhere": add_case(session, 7000, town=OTHER_TOWN, reported=now - hour, due=None),
    }  # fmt: skip
    return {"units": units, "cases": cases}


@pytest.fixture
def dispatcher(app: Any) -> Iterator[TestClient]:
    with as_user(app, Role.DISPATCHER, [TOWN]) as client:
        yield client


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def test_queue_lists_the_cases_needing_a_person_with_counts_per_bucket(
    dispatcher: TestClient, county: dict[str, Any]
) -> None:
    cases = county["cases"]
    reply = dispatcher.get("/dispatch/queue", params={"town": TOWN})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    listed = {item["id"]: item["buckets"] for item in body["items"]}
    assert listed == {
        cases["overdue"].id: ["overdue"],
        cases["fresh"].id: ["unassigned", "newest"],
        cases["escalated"].id: ["escalated"],
        cases["camera"].id: ["camera"],
        cases["market"].id: ["unassigned"],
    }
    assert body["counts"] == {
        "unassigned": 2, "outside": 0, "escalated": 1, "overdue": 1,
        "reworked": 0, "camera": 1, "newest": 1,
    }  # fmt: skip
    assert body["total"] == 5 and body["after"] >= 0
    # By deadline: the overdue case first; by age: the oldest report first.
    assert ids(body["items"])[0] == cases["overdue"].id
    by_age = dispatcher.get("/dispatch/queue", params={"town": TOWN, "sort": "age"}).json()
    assert ids(by_age["items"]) == [
        cases["overdue"].id, cases["escalated"].id, cases["market"].id,
        cases["camera"].id, cases["fresh"].id,
    ]  # fmt: skip
    market = dispatcher.get("/dispatch/queue", params={"town": TOWN, "platform": "market"}).json()
    assert ids(market["items"]) == [cases["market"].id] and market["counts"]["unassigned"] == 1
    one = dispatcher.get(
        "/dispatch/queue", params={"town": TOWN, "category": "elderly_fraud_sales"}
    ).json()
    assert ids(one["items"]) == [cases["market"].id]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"town": OTHER_TOWN}, 404, "not_found"),
        ({"town": "123"}, 404, "not_found"),
        ({"town": TOWN, "category": "no_such"}, 422, "unknown_code"),
        ({"town": TOWN, "platform": "police"}, 422, "unknown_code"),
        ({"town": TOWN, "sort": "random"}, 422, "validation_error"),
        ({"town": TOWN, "limit": 0}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
def test_bad_queue_requests_are_4xx(
    dispatcher: TestClient,
    county: dict[str, Any],
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    reply = dispatcher.get("/dispatch/queue", params=params)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code


def test_only_dispatching_roles_see_the_queue_and_board(app: Any, county: dict[str, Any]) -> None:
    for role in (Role.PLANNER, Role.GRID_MEMBER, Role.UNIT):
        with as_user(app, role, [TOWN]) as client:
            assert client.get("/dispatch/queue", params={"town": TOWN}).status_code == 403
            assert client.get("/dispatch/board", params={"town": TOWN}).status_code == 403
    for role in (Role.COMMAND_ROOM, Role.COUNTY):
        towns = None if role is Role.COUNTY else [TOWN]
        with as_user(app, role, towns) as client:
            assert client.get("/dispatch/queue", params={"town": TOWN}).status_code == 200


def test_board_lists_the_towns_units_with_open_cases_and_last_fix(
    dispatcher: TestClient, county: dict[str, Any]
) -> None:
    units = county["units"]
    fix = dispatcher.patch(
        f"/units/{units['near'].id}", json={"lon": lonlat(610, 0)[0], "lat": lonlat(610, 0)[1]}
    )
    assert fix.status_code == 200, fix.text
    reply = dispatcher.get("/dispatch/board", params={"town": TOWN})
    assert reply.status_code == 200, reply.text
    board = {u["code"]: u for u in reply.json()["units"]}
    # The town's own units and the county's standing in it; another town's stands in it too.
    assert {"99C-NEAR", "99C-CTY", "99C-BUSY", "99C-OFF", "99C-MKT"} <= set(board)
    assert board["99C-NEAR"]["open_cases"] == 4  # overdue, settled, escalated, camera
    assert board["99C-NEAR"]["last_fix_at"] is not None
    assert board["99C-BUSY"]["last_fix_at"] is None and board["99C-BUSY"]["open_cases"] == 0
    # The type by its name, Chinese and English, beside the raw value.
    near = board["99C-NEAR"]
    assert (near["unit_type"], near["unit_type_zh"], near["unit_type_en"]) == (
        "police_station", "派出所", "police station"
    )  # fmt: skip
    assert board["99C-MKT"]["unit_type_zh"] == "市场监管所"
    # Whose units the town's dispatchers may change: the town's and the county's.
    assert reply.json()["jurisdiction"] == [TOWN, COUNTY]
    assert dispatcher.get("/dispatch/board", params={"town": OTHER_TOWN}).status_code == 404


def test_responders_are_the_jurisdictions_units_by_drive_time_as_dispatch_nearest_says(
    dispatcher: TestClient, county: dict[str, Any]
) -> None:
    units, case = county["units"], county["cases"]["fresh"]
    reply = dispatcher.get(f"/incidents/{case.id}/responders", params={"k": 5})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["jurisdiction"] == [TOWN, COUNTY] and body["by"] == "drive_time"
    offered = [u["id"] for u in body["units"]]
    # Of this town and the county only, available only; fastest first.
    assert offered[:2] == [units["near"].id, units["county"].id]
    assert units["other"].id not in offered
    assert body["units"][0]["eta_s"] < body["units"][1]["eta_s"]
    assert body["units"][0]["route"]["type"] == "LineString"
    excluded = {u["id"]: u["reason"] for u in body["excluded"]}
    assert excluded[units["busy"].id] == "busy"
    assert excluded[units["off"].id] == "off_duty"
    assert excluded[units["other"].id] == "out_of_jurisdiction"
    assert units["market"].id not in excluded  # another type: not a candidate at all
    lon, lat = lonlat(120, 0)
    nearest = dispatcher.get(
        "/dispatch/nearest",
        params={
            "lon": lon, "lat": lat, "unit_type": "police_station", "platform": "governance",
            "by": "drive_time", "k": 5, "jurisdiction": TOWN,
        },
    )  # fmt: skip
    assert nearest.status_code == 200, nearest.text
    assert [u["id"] for u in nearest.json()["units"]] == offered
    assert [u["eta_s"] for u in nearest.json()["units"]] == [u["eta_s"] for u in body["units"]]
    bad = dispatcher.get(
        "/dispatch/nearest", params={"lon": lon, "lat": lat, "jurisdiction": "990100"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_code"


def test_responders_of_another_towns_case_are_not_found(
    dispatcher: TestClient, county: dict[str, Any]
) -> None:
    case = county["cases"]["elsewhere"]
    assert dispatcher.get(f"/incidents/{case.id}/responders").status_code == 404
    assert dispatcher.get("/incidents/999999999/responders").status_code == 404


def test_assigning_makes_the_unit_busy_and_the_case_leaves_the_queue(
    dispatcher: TestClient, county: dict[str, Any], session: Session
) -> None:
    units, case = county["units"], county["cases"]["fresh"]
    reply = dispatcher.post(
        f"/incidents/{case.id}/actions",
        json={
            "action": "assign",
            "unit_id": units["near"].id,
            "note": "from the console",
            "expected_unit_id": 0,
        },
    )
    assert reply.status_code == 200, reply.text
    session.refresh(units["near"])
    assert units["near"].status == "busy"
    queue = dispatcher.get("/dispatch/queue", params={"town": TOWN}).json()
    assert case.id not in ids(queue["items"])
    # The overdue case, re-dispatched to another unit, leaves the queue too.
    overdue = county["cases"]["overdue"]
    moved = dispatcher.post(
        f"/incidents/{overdue.id}/actions",
        json={
            "action": "reassign",
            "unit_id": units["county"].id,
            "reason": "overdue: the county unit is free",
            "expected_unit_id": units["near"].id,
        },
    )
    assert moved.status_code == 200, moved.text
    queue = dispatcher.get("/dispatch/queue", params={"town": TOWN}).json()
    assert overdue.id not in ids(queue["items"]) and queue["counts"]["overdue"] == 0


def test_an_assignment_on_a_stale_view_is_409_naming_who_assigned_first(
    app: Any, county: dict[str, Any]
) -> None:
    units, case = county["units"], county["cases"]["fresh"]
    with as_user(app, Role.DISPATCHER, [TOWN], name="dispatcher-one") as first:
        assert (
            first.post(
                f"/incidents/{case.id}/actions",
                json={"action": "assign", "unit_id": units["near"].id, "expected_unit_id": 0},
            ).status_code
            == 200
        )
    with as_user(app, Role.DISPATCHER, [TOWN], name="dispatcher-two") as second:
        reply = second.post(
            f"/incidents/{case.id}/actions",
            json={
                "action": "reassign",
                "unit_id": units["county"].id,
                "reason": "closer",
                "expected_unit_id": 0,
            },
        )
    assert reply.status_code == 409, reply.text
    body = reply.json()
    assert body["code"] == "assigned_elsewhere"
    assert body["assigned_by"] == "dispatcher-one" and body["unit_id"] == units["near"].id
    assert "dispatcher-one" in body["detail"]


def test_assigning_an_off_duty_unit_is_409_with_the_reason(
    dispatcher: TestClient, county: dict[str, Any], session: Session
) -> None:
    units, case = county["units"], county["cases"]["fresh"]
    went = dispatcher.patch(f"/units/{units['county'].id}", json={"status": "off_duty"})
    assert went.status_code == 200
    reply = dispatcher.post(
        f"/incidents/{case.id}/actions",
        json={"action": "assign", "unit_id": units["county"].id, "expected_unit_id": 0},
    )
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "unit_unavailable" and "off duty" in reply.json()["detail"]
    session.refresh(case)
    assert case.unit_id is None and case.status == "reported"  # nothing written
