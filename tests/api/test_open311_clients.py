"""Open311 with real clients over real HTTP: the ``georeport`` package from the index, and the
exchange FixMyStreet's Open311 client performs (written from the GeoReport v2 spec and the
updates extension FixMyStreet documents, not recorded from it): services, a form-encoded and a
multipart ``POST requests.xml`` with its usual fields, polling ``servicerequestupdates.xml`` by
hourly windows, and posting a comment back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.users import Role
from gis.services import access
from gis.services.workflow import apply_action
from gis.settings import Settings
from tests.conftest import use_session
from tests.live import serve
from tests.photos import jpeg_with_gps
from tests.services.intake_fixtures import COUNTY, GRID_A, Area, area

__all__ = ["area"]

LON, LAT = 110.005, 30.005


@pytest.fixture
def endpoint(
    settings: Settings, session: Session, catalog: int, area: Area, tmp_path: Path
) -> Iterator[str]:
    """The Open311 root of a live server whose sessions are the test's session."""
    app = use_session(create_app(settings.model_copy(update={"media_dir": str(tmp_path)})), session)
    with serve(app) as base:
        yield f"{base}/open311/v2"


@pytest.fixture
def api_key(session: Session, area: Area) -> str:
    """The token an Open311 client is configured with (a county-wide reporter)."""
    user = access.add_user(session, name="fixmystreet", role=Role.COUNTY)
    return access.issue_token(session, user)


def test_georeport_client_lists_services_and_reads_back_a_request(
    endpoint: str, api_key: str
) -> None:
    from georeport import GeoReport

    for fmt in ("xml", "json"):
        client = GeoReport(endpoint, jurisdiction=COUNTY, output_format=fmt)
        codes = {s["service_code"] for s in client.get_service_list()}
        assert {"cooking_fume", "public_security_hazard"} <= codes
        definition = client.get_service_definition("cooking_fume")
        assert definition["service_code"] == "cooking_fume"
    # georeport 0.3.1 has no call to file a request: file it as its README's API does, by form.
    filed = requests.post(
        f"{endpoint}/requests.json",
        data={
            "api_key": api_key,
            "jurisdiction_id": COUNTY,
            "service_code": "cooking_fume",
            "lat": LAT,
            "long": LON,
            "description": "油烟扰民 cooking fumes",
        },
        timeout=10,
    )
    assert filed.status_code == 200, filed.text
    request_id = str(filed.json()[0]["service_request_id"])
    client = GeoReport(endpoint, jurisdiction=COUNTY, output_format="xml")
    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id
    assert one["status"] == "open"
    assert one["service_code"] == "cooking_fume"
    many = GeoReport(endpoint, output_format="json").get_service_requests(
        service_request_id=request_id
    )
    assert [r["service_request_id"] for r in many] == [int(request_id)]


def _xml(response: requests.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.content)


def _fms_fields(api_key: str, **extra: Any) -> dict[str, Any]:
    # What FixMyStreet's send_service_request posts (Open311.pm): the report as fields.
    return {
        "jurisdiction_id": COUNTY,
        "api_key": api_key,
        "service_code": "public_security_hazard",
        "lat": LAT,
        "long": LON,
        "email": "resident@example.org",
        "first_name": "Mei",
        "last_name": "Li",
        "phone": "+86 138 0000 0000",
        "description": "title: 撬车门\n\ndetail: 有人在撬车门\n\nurl: https://fms.example/report/1",
        "media_url": "https://fms.example/photo/1.jpeg",
        "attribute[easting]": "500123",
        "attribute[northing]": "3300456",
        "attribute[fixmystreet_id]": "1",
        **extra,
    }


def test_fixmystreet_exchange(endpoint: str, api_key: str, session: Session) -> None:
    services = _xml(
        requests.get(f"{endpoint}/services.xml", params={"jurisdiction_id": COUNTY}, timeout=10)
    )
    assert services.tag == "services" and services.findall("service")

    form_encoded = _xml(
        requests.post(f"{endpoint}/requests.xml", data=_fms_fields(api_key), timeout=10)
    )
    assert form_encoded.tag == "service_requests"
    first = form_encoded.findtext("request/service_request_id")
    assert first and first.isdigit()
    assert form_encoded.findtext("request/grid_code") == GRID_A

    # The multipart form FixMyStreet sends when an endpoint takes uploads: the same fields and
    # the photos as parts photo1…photoN.
    multipart = {
        k: (None, str(v))
        for k, v in _fms_fields(api_key, media_url="", **{"attribute[fixmystreet_id]": "2"}).items()
    }
    photos = {
        "photo1": ("1.jpeg", jpeg_with_gps(), "image/jpeg"),
        "photo2": ("2.jpeg", jpeg_with_gps(colour="blue"), "image/jpeg"),
    }
    second = _xml(
        requests.post(f"{endpoint}/requests.xml", files={**multipart, **photos}, timeout=10)
    )
    second_id = second.findtext("request/service_request_id")
    assert second_id and second_id != first
    # Staff read it back with a link to the stored photo, which serves the cleaned JPEG.
    read = _xml(
        requests.get(
            f"{endpoint}/requests/{second_id}.xml", params={"api_key": api_key}, timeout=10
        )
    )
    photo_url = read.findtext("request/media_url") or ""
    assert photo_url.startswith(endpoint.removesuffix("/open311/v2") + "/media/")
    photo = requests.get(photo_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
    assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"

    apply_action(session, int(first), "accept", actor="unit:police")

    # FixMyStreet polls the updates by windows of an hour.
    now = datetime.now(UTC)
    seen: list[ET.Element] = []
    for hours in (2, 1):
        start, end = (
            now - timedelta(hours=hours),
            now - timedelta(hours=hours - 1) + timedelta(minutes=1),
        )
        window = _xml(
            requests.get(
                f"{endpoint}/servicerequestupdates.xml",
                params={
                    "jurisdiction_id": COUNTY,
                    "api_key": api_key,
                    "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                timeout=10,
            )
        )
        assert window.tag == "service_request_updates"
        seen += window.findall("request_update")
    accepted = [
        u
        for u in seen
        if u.findtext("service_request_id") == first
        and u.findtext("external_status_code") == "accept"
    ]
    assert len(accepted) == 1
    update = accepted[0]
    for name in ("update_id", "status", "updated_datetime", "description", "media_url"):
        assert update.find(name) is not None, name
    assert update.findtext("status") == "INVESTIGATING"

    # A resident's comment, posted back the way FixMyStreet posts one.
    comment = _xml(
        requests.post(
            f"{endpoint}/servicerequestupdates.xml",
            data={
                "jurisdiction_id": COUNTY,
                "api_key": api_key,
                "service_request_id": first,
                "update_id": "fms-42",
                "updated_datetime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": "OPEN",
                "description": "他们又来了 they came back",
                "email": "resident@example.org",
                "first_name": "Mei",
                "last_name": "Li",
            },
            timeout=10,
        )
    )
    assert comment.tag == "service_request_updates"
    assert (comment.findtext("request_update/update_id") or "").isdigit()
    # A repeated update id is refused in the spec's error format.
    repeat = requests.post(
        f"{endpoint}/servicerequestupdates.xml",
        data={
            "api_key": api_key,
            "service_request_id": first,
            "update_id": "fms-42",
            "status": "OPEN",
            "description": "again",
        },
        timeout=10,
    )
    assert repeat.status_code == 400
    assert ET.fromstring(repeat.content).tag == "errors"
