"""POST/GET /incidents over HTTP: the reply shape, idempotency, filters and every bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.settings import Settings
from tests.conftest import count
from tests.services.intake_fixtures import GRID_A, GRID_B, TOWN_1, VILLAGE_1, Area, area

__all__ = ["area"]


def body(lon: float = 110.005, lat: float = 30.005, **extra: Any) -> dict[str, Any]:
    """A valid report body at (lon, lat)."""
    return {
        "category": "public_security_hazard",
        "location": {"lon": lon, "lat": lat},
        "description": "可疑人员 — someone trying car doors",
        "reporter": {"kind": "grid_member", "id": "M-1"},
        "photos": ["https://example.org/p/1.jpg"],
        **extra,
    }


@pytest.fixture
def api(client: Any, area: Area, admin_headers: dict[str, str]) -> Any:
    """The test client, as an admin, with the hand-made county in the test's transaction."""
    client.headers.update(admin_headers)
    return client


def test_report_returns_201_with_grid_platform_unit_and_deadline(api: Any, area: Area) -> None:
    response = api.post("/incidents", json=body())
    assert response.status_code == 201, response.text
    reply = response.json()
    assert response.headers["Location"] == f"/incidents/{reply['id']}"
    assert "Idempotent-Replayed" not in response.headers
    assert reply["status"] == "assigned"
    assert reply["platform"] == "governance"
    assert reply["category"] == {"code": "public_security_hazard", "name": "治安隐患"}
    assert reply["grid"] == {
        "id": reply["grid"]["id"],
        "code": GRID_A,
        "name": "网格T1-A",
        "member": {"id": area.member_a, "name": "张网格"},
    }
    assert reply["village"] == {"code": VILLAGE_1, "name": "一村"}
    assert reply["town"] == {"code": TOWN_1, "name": "一号镇"}
    assert reply["unit"]["id"] == area.units["police_t1"]
    assert reply["unit"]["distance_m"] == pytest.approx(385.6, abs=0.5)
    assert reply["location_quality"] == "inside"
    assert reply["location"] == {"lon": 110.005, "lat": 30.005}
    assert reply["source"] == {"crs": "EPSG:4326", "lon": 110.005, "lat": 30.005}
    assert [c["id"] for c in reply["cameras"]] == [area.camera]
    assert reply["possible_duplicates"] == []
    reported = datetime.fromisoformat(reply["reported_at"])
    assert datetime.fromisoformat(reply["due_at"]) - reported == timedelta(hours=24)
    assert reply["photos"] == ["https://example.org/p/1.jpg"]


def test_second_report_nearby_lists_the_first_as_possible_duplicate(api: Any) -> None:
    first = api.post("/incidents", json=body()).json()
    second = api.post("/incidents", json=body(lon=110.0051)).json()
    assert [p["id"] for p in second["possible_duplicates"]] == [first["id"]]


def test_retry_with_the_same_key_returns_the_first_answer_and_writes_nothing(
    api: Any, session: Session
) -> None:
    headers = {"Idempotency-Key": "phone-42-report-7"}
    first = api.post("/incidents", json=body(), headers=headers)
    before = count(session, "incidents"), count(session, "incident_events")
    again = api.post("/incidents", json=body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["due_at"] == first.json()["due_at"]
    assert (count(session, "incidents"), count(session, "incident_events")) == before


def test_same_key_with_a_different_body_is_409(api: Any, session: Session) -> None:
    headers = {"Idempotency-Key": "k-409"}
    first = api.post("/incidents", json=body(), headers=headers).json()
    before = count(session, "incidents")
    response = api.post("/incidents", json=body(description="another"), headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert response.json()["incident_id"] == first["id"]
    assert count(session, "incidents") == before


def test_get_incident_returns_the_same_reply_as_the_report(api: Any) -> None:
    created = api.post("/incidents", json=body()).json()
    fetched = api.get(f"/incidents/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_unknown_incident_is_404_and_bad_id_is_422(api: Any) -> None:
    assert api.get("/incidents/999999999").status_code == 404
    assert api.get("/incidents/999999999").json()["code"] == "not_found"
    assert api.get("/incidents/0").status_code == 422
    assert api.get("/incidents/abc").status_code == 422


def test_list_is_geojson_filtered_and_paged(api: Any) -> None:
    a = api.post("/incidents", json=body()).json()
    b = api.post("/incidents", json=body(lon=110.015)).json()  # grid B
    c = api.post("/incidents", json=body(category="cooking_fume")).json()  # no unit: reported

    def ids(**params: Any) -> list[int]:
        response = api.get("/incidents", params=params)
        assert response.status_code == 200, response.text
        return [f["id"] for f in response.json()["features"]]

    everything = api.get("/incidents", params={"town": TOWN_1}).json()
    assert everything["type"] == "FeatureCollection"
    assert everything["number_matched"] == 3
    feature = everything["features"][-1]
    assert feature["geometry"] == {"type": "Point", "coordinates": [110.005, 30.005]}
    assert feature["properties"]["grid_code"] == GRID_A
    assert ids(town=TOWN_1) == [c["id"], b["id"], a["id"]]  # newest first
    assert ids(grid=GRID_B) == [b["id"]]
    assert ids(town=TOWN_1, status="reported") == [c["id"]]
    assert ids(town=TOWN_1, status=["reported", "assigned"]) == [c["id"], b["id"], a["id"]]
    assert ids(town=TOWN_1, platform="enforcement") == [c["id"]]
    assert ids(town=TOWN_1, category="public_security_hazard") == [b["id"], a["id"]]
    assert ids(bbox="110.01,29.99,110.02,30.01") == [b["id"]]
    assert ids(town=TOWN_1, limit=1, offset=1) == [b["id"]]
    now = datetime.now(UTC)
    assert ids(town=TOWN_1, since=(now - timedelta(hours=1)).isoformat()) == [
        c["id"],
        b["id"],
        a["id"],
    ]
    assert ids(town=TOWN_1, until=(now - timedelta(hours=1)).isoformat()) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bbox": "1,2,3"}, "four finite numbers"),
        ({"bbox": "nan,1,2,3"}, "four finite numbers"),
        ({"bbox": "110.02,30,110.01,30.1"}, "min < max"),
        ({"status": "lost"}, "status"),
        ({"platform": "fishing"}, "platform"),
        ({"since": "2026-11-01T00:00:00"}, "UTC offset"),
        ({"limit": 100_000_000}, "limit"),
    ],
)
def test_bad_list_filters_are_422_with_the_reason(
    api: Any, params: dict[str, Any], message: str
) -> None:
    response = api.get("/incidents", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def _raw(api: Any, content: str | bytes) -> Any:
    return api.post("/incidents", content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("content", "status", "code", "message"),
    [
        (json.dumps(body(lon=float("nan"))), 422, "invalid_coordinates", "finite"),
        (json.dumps(body(lat=float("inf"))), 422, "invalid_coordinates", "finite"),
        (json.dumps(body(lon=190.0)), 422, "invalid_coordinates", "outside"),
        (json.dumps(body(lon=30.005, lat=110.005)), 422, "invalid_coordinates", "swapped"),
        (json.dumps(body(lon=80.0, lat=45.0)), 422, "outside_coverage", "service area"),
        (
            json.dumps({**body(), "location": {"lon": 110.0, "lat": 30.0, "crs": "EPSG:3857"}}),
            422,
            "unknown_crs",
            "GCJ-02",
        ),
        (json.dumps(body(category="ufo")), 422, "unknown_code", "cooking_fume"),
        ('{"category": "public_security_hazard", "location": {', 400, "malformed_json", "JSON"),
        ("[1, 2]", 422, "validation_error", "dictionary"),
        (json.dumps(body(photos=["not a url"])), 422, "validation_error", "photos.0"),
        (json.dumps(body(photos=["ftp://x.org/a.jpg"])), 422, "validation_error", "photos.0"),
        (json.dumps(body(photos=["javascript:alert(1)"])), 422, "validation_error", "photos.0"),
        (
            json.dumps(body(occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())),
            422,
            "validation_error",
            "future",
        ),
        (
            json.dumps(body(occurred_at="2026-11-27T09:30:00")),
            422,
            "validation_error",
            "timezone",
        ),
        (json.dumps({**body(), "colour": "red"}), 422, "validation_error", "colour"),
        (json.dumps({k: v for k, v in body().items() if k != "reporter"}), 422, "", "reporter"),
        (json.dumps(body(reporter={"kind": "alien"})), 422, "validation_error", "reporter.kind"),
        (json.dumps(body(description="x" * 5000)), 422, "validation_error", "description"),
        (json.dumps({**body(), "location": {"lon": "east", "lat": 30}}), 422, "", "lon"),
    ],
    ids=[
        "nan",
        "inf",
        "lon-out-of-range",
        "swapped",
        "outside-coverage",
        "unknown-crs",
        "unknown-category",
        "malformed-json",
        "not-an-object",
        "photo-not-url",
        "photo-ftp",
        "photo-javascript",
        "future-occurred-at",
        "naive-occurred-at",
        "unknown-field",
        "missing-reporter",
        "unknown-reporter-kind",
        "description-too-long",
        "lon-not-a-number",
    ],
)
def test_bad_report_is_4xx_with_the_reason_and_writes_nothing(
    api: Any, session: Session, content: str, status: int, code: str, message: str
) -> None:
    before = count(session, "incidents"), count(session, "incident_events")
    response = _raw(api, content)
    assert response.status_code == status, response.text
    reply = response.json()
    assert set(reply) >= {"code", "detail"}
    if code:
        assert reply["code"] == code
    assert message in reply["detail"]
    assert (count(session, "incidents"), count(session, "incident_events")) == before


def test_nan_literal_in_the_body_is_422_not_500(api: Any, session: Session) -> None:
    # Python's json accepts the non-standard NaN literal; the reply must still be valid JSON.
    content = json.dumps(body()).replace("110.005", "NaN", 1)
    assert "NaN" in content
    response = _raw(api, content)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_coordinates"


def test_too_long_idempotency_key_is_422(api: Any) -> None:
    response = api.post("/incidents", json=body(), headers={"Idempotency-Key": "k" * 201})
    assert response.status_code == 422


@pytest.fixture
def small_client(
    settings: Settings, session: Session, catalog: int, admin_headers: dict[str, str]
) -> Iterator[Any]:
    """A client whose body limit is 2 kB."""
    from gis.api import create_app
    from tests.conftest import use_session

    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}))
    use_session(app, session)
    with TestClient(app, headers=admin_headers) as test_client:
        yield test_client


def test_oversized_body_is_413_and_writes_nothing(
    small_client: Any, session: Session, area: Area
) -> None:
    before = count(session, "incidents")
    response = small_client.post("/incidents", json=body(description="x" * 3000))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert count(session, "incidents") == before


def test_the_apps_own_pool_and_sessions_commit_and_read_back(
    engine: Any, settings: Settings, catalog: int
) -> None:
    """Without the test session override: intake, locate and the token check on the app's
    asyncpg pool, the lists on its own (autocommit) sessions, as in production."""
    import sqlalchemy as sa

    from gis.api import create_app
    from gis.layers.incidents import Incident
    from gis.layers.users import Role, User
    from gis.services import access
    from tests.services.intake_fixtures import build_area, delete_area

    with Session(engine) as setup:
        build_area(setup)
        token = access.issue_token(setup, access.add_user(setup, name="real-1", role=Role.ADMIN))
        setup.commit()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(settings), headers=auth) as real:
            headers = {"Idempotency-Key": "real-1"}
            first = real.post("/incidents", json=body(), headers=headers)
            again = real.post("/incidents", json=body(), headers=headers)
            located = real.get("/locate", params={"lon": 110.005, "lat": 30.005})
            listed = real.get("/incidents", params={"town": TOWN_1})
            fetched = real.get(f"/incidents/{first.json()['id']}")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json()["id"] == first.json()["id"]
        assert located.json()["grid"]["code"] == GRID_A
        assert [f["id"] for f in listed.json()["features"]] == [first.json()["id"]]
        assert fetched.json()["id"] == first.json()["id"]
        with Session(engine) as check:
            saved = check.scalars(sa.select(Incident).where(Incident.idempotency_key == "real-1"))
            assert len(saved.all()) == 1
    finally:
        with Session(engine) as cleanup:
            delete_area(cleanup)
            cleanup.execute(sa.delete(User).where(User.name == "real-1"))
            cleanup.commit()
