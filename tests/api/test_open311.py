"""Open311 GeoReport v2 over HTTP, as civic apps and FixMyStreet's client speak it.

Every XML reply is parsed with the standard library and checked against the spec's element names;
the JSON replies are the same fields. A request filed here is assigned exactly as ``POST
/incidents`` assigns a report, and follows the same event log.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access
from gis.services.workflow import apply_action
from tests.conftest import count
from tests.photos import jpeg_with_gps, png
from tests.services.intake_fixtures import COUNTY, GRID_A, TOWN_1, TOWN_2, Area, area

__all__ = ["area"]

BASE = "/open311/v2"
# Inside grid A of the hand-made county (see tests/services/intake_fixtures.py).
LON, LAT = 110.005, 30.005


def token(session: Session, role: Role, towns: tuple[str, ...] = (), name: str = "") -> str:
    """A fresh token of ``role`` (rolled back with the test)."""
    user = access.add_user(
        session, name=name or f"o311-{role.value}-{len(towns)}", role=role, town_codes=towns
    )
    return access.issue_token(session, user)


@pytest.fixture
def reporter_key(session: Session, area: Area) -> str:
    """The api_key of the hotline's system account: a county-wide reporter."""
    return token(session, Role.COUNTY, name="hotline-12345")


def form(api_key: str, **extra: Any) -> dict[str, Any]:
    """The fields FixMyStreet's client posts for a new report."""
    return {
        "jurisdiction_id": COUNTY,
        "api_key": api_key,
        "service_code": "public_security_hazard",
        "lat": str(LAT),
        "long": str(LON),
        "description": "路灯下有人撬车门 someone trying car doors",
        "email": "citizen@example.org",
        "first_name": "小明",
        "last_name": "王",
        "phone": "13800000000",
        "attribute[lamp_id]": "L-17",
        **extra,
    }


def xml(response: Any) -> ET.Element:
    """The parsed XML body, after checking it is XML."""
    assert response.headers["content-type"].startswith("text/xml"), response.text
    return ET.fromstring(response.content)


def errors(response: Any) -> list[tuple[int, str]]:
    """The spec's error list of an XML or JSON error reply."""
    if response.headers["content-type"].startswith("text/xml"):
        root = xml(response)
        assert root.tag == "errors"
        return [
            (int(e.findtext("code") or 0), e.findtext("description") or "")
            for e in root.findall("error")
        ]
    return [(e["code"], e["description"]) for e in response.json()]


def file(client: Any, api_key: str, **extra: Any) -> int:
    """File a request and return its id."""
    response = client.post(f"{BASE}/requests.xml", data=form(api_key, **extra))
    assert response.status_code == 200, response.text
    return int(xml(response).findtext("request/service_request_id") or 0)


def test_discovery_lists_this_endpoint_in_both_formats(client: Any) -> None:
    root = xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("url", "").endswith("/open311/v2")
    assert [f.text for f in endpoint.findall("formats/format")] == ["text/xml", "application/json"]
    assert client.get(f"{BASE}/discovery.json").json()["endpoints"][0]["type"] == "production"


def test_services_are_our_categories_with_platform_as_group(client: Any, catalog: int) -> None:
    root = xml(client.get(f"{BASE}/services.xml"))
    services = root.findall("service")
    assert len(services) == catalog
    hazard = next(s for s in services if s.findtext("service_code") == "public_security_hazard")
    assert hazard.findtext("service_name") == "治安隐患 Public-security hazard"
    assert hazard.findtext("group") == "governance"
    assert hazard.findtext("type") == "realtime"
    assert hazard.findtext("metadata") == "false"
    assert "综治工作" in (hazard.findtext("keywords") or "")
    as_json = client.get(f"{BASE}/services.json").json()
    assert {s["service_code"] for s in as_json} == {s.findtext("service_code") for s in services}


def test_service_definition_and_unknown_service(client: Any, catalog: int) -> None:
    root = xml(client.get(f"{BASE}/services/cooking_fume.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "cooking_fume"
    missing = client.get(f"{BASE}/services/no_such_thing.json")
    assert missing.status_code == 404
    assert errors(missing)[0][0] == 404


def test_form_encoded_request_is_assigned_like_intake(
    client: Any, session: Session, reporter_key: str, area: Area
) -> None:
    response = client.post(f"{BASE}/requests.xml", data=form(reporter_key))
    assert response.status_code == 200, response.text
    root = xml(response)
    assert root.tag == "service_requests"
    request_id = int(root.findtext("request/service_request_id") or 0)
    assert root.findtext("request/grid_code") == GRID_A
    notice = root.findtext("request/service_notice") or ""
    assert "已受理" in notice
    # The same assignment as POST /incidents: the unit and the deadline.
    admin = {"Authorization": f"Bearer {token(session, Role.ADMIN, name='o311-admin')}"}
    case = client.get(f"/incidents/{request_id}", headers=admin).json()
    assert case["unit"]["id"] == area.units["police_t1"]
    assert root.findtext("request/agency_responsible") == case["unit"]["name"]
    assert case["reporter"]["kind"] == "citizen"


def test_multipart_request_without_files_is_accepted(
    client: Any, reporter_key: str, area: Area
) -> None:
    fields = {k: (None, v) for k, v in form(reporter_key).items()}
    response = client.post(f"{BASE}/requests.json", files=fields)
    assert response.status_code == 200, response.text
    assert response.json()[0]["grid_code"] == GRID_A


def test_uploaded_photos_are_stored_and_shown_to_staff_only(
    client: Any, app: Any, session: Session, reporter_key: str, area: Area, tmp_path: Path
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"media_dir": str(tmp_path)})
    fields = {k: (None, v) for k, v in form(reporter_key, service_code="cooking_fume").items()}
    photos = {
        "photo1": ("a.jpg", jpeg_with_gps(), "image/jpeg"),
        "photo2": ("b.png", png(), "image/png"),
    }
    response = client.post(f"{BASE}/requests.xml", files={**fields, **photos})
    assert response.status_code == 200, response.text
    request_id = int(xml(response).findtext("request/service_request_id") or 0)
    staff = client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": reporter_key})
    media_url = staff.json()[0]["media_url"]
    assert "/media/" in media_url
    photo = client.get(media_url, headers={"Authorization": f"Bearer {reporter_key}"})
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert count(session, "media") == 2
    public = client.get(f"{BASE}/requests/{request_id}.json")
    assert public.json()[0]["media_url"] is None  # stored photos are not published


def test_a_damaged_upload_writes_nothing_and_leaves_no_file(
    client: Any, app: Any, session: Session, reporter_key: str, area: Area, tmp_path: Path
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"media_dir": str(tmp_path)})
    before = count(session, "incidents"), count(session, "media")
    photos = [
        ("photo1", ("a.jpg", jpeg_with_gps(), "image/jpeg")),
        ("photo2", ("b.jpg", jpeg_with_gps()[:300], "image/jpeg")),
    ]
    response = client.post(f"{BASE}/requests.xml", data=form(reporter_key), files=photos)
    assert response.status_code == 400
    assert "truncated" in errors(response)[0][1]
    assert (count(session, "incidents"), count(session, "media")) == before
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_file_in_another_field_is_refused(client: Any, reporter_key: str, area: Area) -> None:
    files = {"document": ("a.pdf", b"%PDF", "application/pdf")}
    response = client.post(f"{BASE}/requests.xml", data=form(reporter_key), files=files)
    assert response.status_code == 400
    assert "photo1" in errors(response)[0][1]


def test_json_body_and_gcj02_extension(client: Any, reporter_key: str, area: Area) -> None:
    body = form(reporter_key, crs="GCJ-02")
    response = client.post(f"{BASE}/requests.json", json=body)
    assert response.status_code == 200, response.text
    # GCJ-02 is ~500 m off near here, so the same numbers land elsewhere than in WGS84.
    assert response.json()[0]["service_request_id"] > 0


def test_reading_back_maps_status_deadline_and_unit(
    client: Any, session: Session, reporter_key: str
) -> None:
    request_id = file(client, reporter_key)
    read = client.get(f"{BASE}/requests/{request_id}.xml", params={"api_key": reporter_key})
    request = xml(read).find("request")
    assert request is not None
    assert request.findtext("status") == "open"
    assert request.findtext("extended_status") == "ACTION_SCHEDULED"
    assert request.findtext("service_code") == "public_security_hazard"
    assert float(request.findtext("lat") or 0) == pytest.approx(LAT)
    assert float(request.findtext("long") or 0) == pytest.approx(LON)
    assert request.findtext("expected_datetime")
    assert request.findtext("agency_responsible")
    # Staff see the reporter's contacts.
    assert request.findtext("contact/email") == "citizen@example.org"
    for action in ("accept", "start", "resolve"):
        apply_action(session, request_id, action, actor="unit:test", note=f"{action} done")
    apply_action(session, request_id, "close", actor="command_room", note="核实办结 verified")
    closed = client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": reporter_key})
    row = closed.json()[0]
    assert (row["status"], row["extended_status"]) == ("closed", "FIXED")
    assert row["status_notes"] == "核实办结 verified"


def test_public_reads_hide_contacts_and_private_platforms(
    client: Any, session: Session, reporter_key: str
) -> None:
    private = file(client, reporter_key)  # governance: private by default
    public = file(client, reporter_key, service_code="cooking_fume", lat="30.0051")
    anonymous = client.get(f"{BASE}/requests/{public}.xml")
    request = xml(anonymous).find("request")
    assert request is not None
    assert request.find("contact") is None
    assert "citizen@example.org" not in anonymous.text
    assert client.get(f"{BASE}/requests/{private}.xml").status_code == 404
    listed = client.get(f"{BASE}/requests.json", params={"jurisdiction_id": COUNTY}).json()
    ids = {r["service_request_id"] for r in listed}
    assert public in ids and private not in ids


def test_another_towns_dispatcher_sees_nothing(
    client: Any, session: Session, reporter_key: str
) -> None:
    request_id = file(client, reporter_key)
    other = token(session, Role.DISPATCHER, (TOWN_2,), name="o311-t2")
    own = token(session, Role.DISPATCHER, (TOWN_1,), name="o311-t1")
    assert (
        client.get(f"{BASE}/requests/{request_id}.xml", params={"api_key": other}).status_code
        == 404
    )
    assert (
        client.get(f"{BASE}/requests/{request_id}.xml", params={"api_key": own}).status_code == 200
    )


def test_filters_by_ids_service_status_and_dates(
    client: Any, session: Session, reporter_key: str
) -> None:
    first = file(client, reporter_key)
    second = file(client, reporter_key, service_code="cooking_fume", lat="30.0052")
    key = {"api_key": reporter_key, "jurisdiction_id": COUNTY}
    by_ids = client.get(
        f"{BASE}/requests.json", params={**key, "service_request_id": f"{first},{second}"}
    )
    assert {r["service_request_id"] for r in by_ids.json()} == {first, second}
    by_code = client.get(f"{BASE}/requests.json", params={**key, "service_code": "cooking_fume"})
    assert [r["service_request_id"] for r in by_code.json()] == [second]
    closed = client.get(f"{BASE}/requests.json", params={**key, "status": "closed"})
    assert {first, second}.isdisjoint(r["service_request_id"] for r in closed.json())
    now = datetime.now(UTC)
    window = {
        "start_date": (now - timedelta(hours=1)).isoformat(),
        "end_date": (now + timedelta(minutes=1)).isoformat(),
    }
    recent = client.get(f"{BASE}/requests.xml", params={**key, **window})
    assert {int(r.findtext("service_request_id") or 0) for r in xml(recent).findall("request")} >= {
        first,
        second,
    }


def test_updates_extension_lists_changes_and_takes_comments_and_reopens(
    client: Any, session: Session, reporter_key: str
) -> None:
    request_id = file(client, reporter_key)
    apply_action(session, request_id, "accept", actor="unit:test")
    now = datetime.now(UTC)
    window = {
        "api_key": reporter_key,
        "start_date": (now - timedelta(hours=1)).isoformat(),
        "end_date": (now + timedelta(minutes=1)).isoformat(),
    }
    listed = xml(client.get(f"{BASE}/servicerequestupdates.xml", params=window))
    assert listed.tag == "service_request_updates"
    mine = [
        u
        for u in listed.findall("request_update")
        if u.findtext("service_request_id") == str(request_id)
    ]
    # Intake's own assignment is the first change; the report itself is not an update.
    assert [u.findtext("external_status_code") for u in mine] == ["assign", "accept"]
    assert [u.findtext("status") for u in mine] == ["ACTION_SCHEDULED", "INVESTIGATING"]

    comment = {
        "api_key": reporter_key,
        "service_request_id": str(request_id),
        "update_id": "fms-comment-1",
        "status": "OPEN",
        "description": "还在撬 still happening",
        # The client's clock, a minute fast: kept as data, never the event's time.
        "updated_datetime": (now + timedelta(minutes=1)).isoformat(),
    }
    wrong_clock = {**comment, "updated_datetime": "2031-01-01T00:00:00Z"}
    refused = client.post(f"{BASE}/servicerequestupdates.xml", data=wrong_clock)
    assert refused.status_code == 400 and "future" in errors(refused)[0][1]
    posted = client.post(f"{BASE}/servicerequestupdates.xml", data=comment)
    assert posted.status_code == 200, posted.text
    update_id = int(xml(posted).findtext("request_update/update_id") or 0)
    events = client.get(
        f"/incidents/{request_id}/events",
        headers={"Authorization": f"Bearer {reporter_key}"},
    ).json()
    last = events[-1] if isinstance(events, list) else events["events"][-1]
    assert last["id"] == update_id and last["action"] == "comment"
    assert datetime.fromisoformat(last["at"]) <= datetime.now(UTC)
    again = client.post(f"{BASE}/servicerequestupdates.xml", data=comment)
    assert again.status_code == 400 and "already" in errors(again)[0][1]

    for action in ("start", "resolve", "close"):
        apply_action(session, request_id, action, actor="unit:test", note=action)
    reopen = {**comment, "update_id": "fms-comment-2", "description": "没修好 not fixed"}
    assert client.post(f"{BASE}/servicerequestupdates.json", data=reopen).status_code == 200
    read = client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": reporter_key})
    assert read.json()[0]["status"] == "open"


def test_tokens_are_never_issued(client: Any) -> None:
    response = client.get(f"{BASE}/tokens/abc.xml")
    assert response.status_code == 404
    assert "synchronously" in errors(response)[0][1]


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"service_code": ""}, 400, "service_code"),
        ({"service_code": "no_such"}, 404, "no service"),
        ({"lat": "118.9", "long": "29.0"}, 400, "swapped"),
        ({"lat": "95", "long": "110"}, 400, "lat"),
        ({"lat": "abc"}, 400, "number"),
        ({"address_string": "一号镇政府"}, 400, "not both"),
        ({"lat": "", "long": "", "address_string": "一号镇政府"}, 400, "geocoder"),
        ({"lat": "", "long": ""}, 400, "location"),
        ({"api_key": "gis_nonsense"}, 403, "api_key"),
        ({"api_key": ""}, 403, "api_key"),
        ({"jurisdiction_id": "123"}, 404, "jurisdiction"),
        ({"jurisdiction_id": TOWN_2}, 400, "outside jurisdiction"),
        ({"media_url": "ftp://x"}, 400, "media_url"),
    ],
)
def test_bad_requests_get_spec_errors_and_write_nothing(
    client: Any,
    session: Session,
    reporter_key: str,
    change: dict[str, str],
    status: int,
    words: str,
) -> None:
    before = count(session, "incidents"), count(session, "open311_requests")
    for fmt in ("xml", "json"):
        response = client.post(f"{BASE}/requests.{fmt}", data=form(reporter_key) | change)
        assert response.status_code == status, response.text
        (code, description), *_ = errors(response)
        assert code == status
        assert words.lower() in description.lower(), description
    assert (count(session, "incidents"), count(session, "open311_requests")) == before


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
        ({"start_date": "yesterday"}, "W3C"),
        ({"start_date": "2026-01-01T00:00:00"}, "offset"),
        ({"status": "pending"}, "open or closed"),
        ({"service_request_id": "12,x"}, "numbers"),
        ({"page_size": "5000"}, "page_size"),
    ],
)
def test_bad_queries_get_spec_errors(client: Any, params: dict[str, str], words: str) -> None:
    response = client.get(f"{BASE}/requests.xml", params=params)
    assert response.status_code == 400, response.text
    assert words.lower() in errors(response)[0][1].lower()


def test_a_format_that_is_neither_xml_nor_json_is_a_spec_error(client: Any) -> None:
    response = client.get(f"{BASE}/services.csv")
    assert response.status_code == 400
    assert ".xml or .json" in errors(response)[0][1]


def test_private_setting_closes_public_reads(client: Any, app: Any) -> None:
    app.state.settings = app.state.settings.model_copy(update={"open311_public": False})
    response = client.get(f"{BASE}/requests.json")
    assert response.status_code == 403
    assert errors(response)[0][0] == 403
