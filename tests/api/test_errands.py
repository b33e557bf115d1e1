"""Errands over HTTP: the catalog, a request routed to the member, progress, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.errands import load_services
from gis.layers.users import Role
from gis.services.access import Principal
from tests.api.test_media import bearer, media_dir, upload
from tests.conftest import count
from tests.photos import jpeg_with_gps
from tests.services.workflow_fixtures import G2, TOWN_1, TOWN_2, County, build_county

__all__ = ["media_dir"]

BODY = {
    "service": "elderly_card",
    "applicant_name": "王大妈",
    "applicant_phone": "13812345678",
    "home": {"lon": 111.015, "lat": 31.005},
}


@pytest.fixture
def county(session: Session) -> County:
    load_services(session)
    return build_county(session)


@pytest.fixture
def hotline(app: Any) -> Iterator[TestClient]:
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None, name="12345热线", role=Role.COUNTY
    )
    with TestClient(app) as client:
        yield client


def test_service_catalog_is_public(client: TestClient, county: County) -> None:
    rows = client.get("/services").json()
    codes = {row["code"] for row in rows}
    assert {"homestead_check", "timber_permit", "birth_approval", "elderly_card"} <= codes
    in_person = client.get("/services", params={"proxy_allowed": "false"}).json()
    assert in_person and all(row["proxy_note"] for row in in_person)


def test_request_is_routed_and_runs_to_delivery(hotline: TestClient, county: County) -> None:
    reply = hotline.post("/errands", json=BODY)
    assert reply.status_code == 201, reply.text
    errand = reply.json()
    assert errand["member"]["id"] == county.members[G2]
    assert errand["grid_code"] == G2
    assert errand["allowed_actions"] == ["assign", "collect", "cancel"]
    assert reply.headers["location"] == f"/errands/{errand['id']}"
    for action in ("collect", "submit", "approve"):
        step = hotline.post(f"/errands/{errand['id']}/actions", json={"action": action})
        assert step.status_code == 200, step.text
    done = hotline.post(
        f"/errands/{errand['id']}/actions", json={"action": "deliver", "applicant_trips": 0}
    ).json()
    assert (done["status"], done["applicant_trips"]) == ("delivered", 0)
    log = hotline.get(f"/errands/{errand['id']}").json()["events"]
    assert [e["action"] for e in log] == ["request", "collect", "submit", "approve", "deliver"]
    figures = hotline.get("/stats/errands").json()["rows"][0]
    assert (figures["delivered"], figures["zero_trip_share"]) == (1, 1.0)


def test_home_outside_every_grid_waits_in_the_town_queue(
    hotline: TestClient, county: County
) -> None:
    reply = hotline.post("/errands", json={**BODY, "home": {"lon": 111.038, "lat": 31.005}})
    assert reply.status_code == 201, reply.text
    assert (reply.json()["member"], reply.json()["town_code"]) == (None, TOWN_2)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"service": "marriage_registration"}, 422, "validation_error"),
        ({"service": "moon_landing"}, 422, "unknown_code"),
        ({"applicant_phone": "12"}, 422, "validation_error"),
        ({"home": {"lon": 31.005, "lat": 111.015}}, 422, "invalid_coordinates"),
        ({"home": {"lon": 60.0, "lat": 50.0}}, 422, "outside_coverage"),
        ({"home": {"lon": 111.015, "lat": 31.005, "crs": "EPSG:9999"}}, 422, "unknown_crs"),
        ({"colour": "red"}, 422, "validation_error"),
    ],
)
def test_bad_requests_are_422_and_write_nothing(
    hotline: TestClient, session: Session, county: County, change: dict, status: int, code: str
) -> None:
    reply = hotline.post("/errands", json={**BODY, **change})
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code
    assert count(session, "errands") == 0


def test_out_of_order_action_is_409(hotline: TestClient, county: County) -> None:
    errand = hotline.post("/errands", json=BODY).json()
    reply = hotline.post(
        f"/errands/{errand['id']}/actions", json={"action": "deliver", "applicant_trips": 0}
    )
    assert reply.status_code == 409
    assert reply.json()["allowed_actions"] == ["assign", "collect", "cancel"]


def test_unknown_errand_is_404(hotline: TestClient, county: County) -> None:
    assert hotline.get("/errands/987654321").status_code == 404


def test_errand_list_shows_a_grid_member_only_their_own_newest_first(
    app: Any, hotline: TestClient, county: County
) -> None:
    first = hotline.post("/errands", json=BODY).json()
    second = hotline.post("/errands", json=BODY).json()
    elsewhere = hotline.post(
        "/errands", json={**BODY, "home": {"lon": 111.035, "lat": 31.005}}
    ).json()
    assert elsewhere["member"] is None or elsewhere["member"]["id"] != county.members[G2]
    listed = [e["id"] for e in hotline.get("/errands").json()]
    assert listed[:3] == [elsewhere["id"], second["id"], first["id"]]  # county: all, newest first
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None,
        name="member",
        role=Role.GRID_MEMBER,
        town_codes=frozenset({first["town_code"]}),
        member_id=county.members[G2],
        grid_codes=frozenset({G2}),
    )
    mine = hotline.get("/errands").json()
    assert [e["id"] for e in mine] == [second["id"], first["id"]]
    assert hotline.get("/errands", params={"status": "delivered"}).json() == []
    app.dependency_overrides[get_principal] = lambda: Principal(
        user_id=None, name="other", role=Role.COMMAND_ROOM, town_codes=frozenset({TOWN_2})
    )
    assert first["id"] not in [e["id"] for e in hotline.get("/errands").json()]


def test_an_action_keeps_its_photos_for_whoever_may_read_the_errand(
    client: TestClient, session: Session, county: County, media_dir: Path
) -> None:
    member = bearer(session, Role.GRID_MEMBER, (TOWN_1,), name="e-member")
    stranger = bearer(session, Role.DISPATCHER, (TOWN_1,), name="e-stranger")
    errand = client.post("/errands", json=BODY, headers=member).json()
    assert errand["town_code"] == TOWN_1
    photo = upload(client, member, jpeg_with_gps(colour="orange")).json()
    events_before = count(session, "errand_events")
    taken = client.post(
        f"/errands/{errand['id']}/actions",
        json={"action": "collect", "photos": [photo["ref"]]},
        headers=stranger,
    )
    assert taken.status_code == 422 and taken.json()["code"] == "validation_error"
    assert "another user" in taken.json()["detail"]
    assert count(session, "errand_events") == events_before
    assert client.get(f"/errands/{errand['id']}", headers=member).json()["status"] == "requested"
    # Before any errand names it, the photo is its uploader's only.
    assert client.get(photo["thumbnail_url"], headers=stranger).status_code == 404
    done = client.post(
        f"/errands/{errand['id']}/actions",
        json={"action": "collect", "note": "材料已收齐", "photos": [photo["ref"]]},
        headers=member,
    )
    assert done.status_code == 200, done.text
    assert done.json()["events"][-1]["data"]["photos"] == [photo["ref"]]
    reader = bearer(session, Role.COMMAND_ROOM, (TOWN_1,), name="e-reader")
    outsider = bearer(session, Role.COMMAND_ROOM, (TOWN_2,), name="e-outsider")
    assert client.get(f"/errands/{errand['id']}", headers=reader).status_code == 200
    assert client.get(photo["url"], headers=reader).status_code == 200
    assert client.get(photo["thumbnail_url"], headers=stranger).status_code == 200
    assert client.get(f"/errands/{errand['id']}", headers=outsider).status_code == 404
    assert client.get(photo["url"], headers=outsider).status_code == 404
    # A photo an errand's log names stays.
    kept = client.delete(f"/media/{photo['id']}", headers=member)
    assert kept.status_code == 409 and kept.json()["code"] == "conflict"
