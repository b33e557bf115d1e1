"""Cameras over HTTP: create, edit (view follows), seeing, the layer, coverage and alerts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Polygon, shape
from sqlalchemy.orm import Session

from gis.layers.users import Role
from tests.conftest import count
from tests.services.dispatch_fixtures import add_grid, add_regions, client_as, lonlat

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def admin(app: Any, session: Session) -> Iterator[TestClient]:
    add_regions(session)
    with client_as(app, Role.ADMIN) as client:
        yield client


def new_camera(client: TestClient, code: str, x: float, y: float, **fields: Any) -> Any:
    lon, lat = lonlat(x, y)
    reply = client.post(
        "/cameras", json={"code": code, "name": f"Camera {code}", "lon": lon, "lat": lat, **fields}
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_created_camera_has_a_sector_view_and_is_seen_from_ahead(admin: TestClient) -> None:
    body = new_camera(admin, "99H-1", 0, 0, heading_deg=90, fov_deg=60, range_m=200)
    assert body["view"]["type"] == "Polygon" and body["town_code"] == "990100001000"
    lon, lat = lonlat(0, 0)
    east_lon, east_lat, _ = GEOD.fwd(lon, lat, 90, 100)
    reply = admin.get("/cameras/seeing", params={"lon": east_lon, "lat": east_lat})
    assert reply.status_code == 200, reply.text
    seen = reply.json()["cameras"]
    assert [c["code"] for c in seen] == ["99H-1"]
    assert seen[0]["distance_m"] == pytest.approx(100, abs=0.01)
    assert seen[0]["bearing_deg"] == pytest.approx(90, abs=0.05)
    west_lon, west_lat, _ = GEOD.fwd(lon, lat, 270, 100)
    assert (
        admin.get("/cameras/seeing", params={"lon": west_lon, "lat": west_lat}).json()["cameras"]
        == []
    )


def test_patch_turns_the_camera_and_its_view(admin: TestClient) -> None:
    new_camera(admin, "99H-2", 0, 0, heading_deg=0, fov_deg=30, range_m=200)
    reply = admin.patch("/cameras/99H-2", json={"heading_deg": 180})
    assert reply.status_code == 200, reply.text
    view = shape(reply.json()["view"])
    _, lat = lonlat(0, 0)
    assert view.centroid.y < lat  # it now looks south


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"heading_deg": 360}, 422, "heading_deg"),
        ({"fov_deg": 0}, 422, "fov_deg"),
        ({"range_m": -1}, 422, "range_m"),
        ({"range_m": 9000}, 422, "range_m"),
        ({"kind": "drone"}, 422, "kind"),
        ({"code": "has space"}, 422, "code"),
        ({"town_code": "nowhere"}, 422, "unknown town"),
        ({"crs": "EPSG:9999"}, 422, "unknown coordinate"),
        ({"zoom": 3}, 422, "zoom"),
    ],
)
def test_bad_camera_is_4xx_and_writes_nothing(
    admin: TestClient, session: Session, body: dict[str, Any], status: int, says: str
) -> None:
    lon, lat = lonlat(0, 0)
    before = count(session, "cameras")
    reply = admin.post(
        "/cameras", json={"code": "99H-BAD", "name": "bad", "lon": lon, "lat": lat, **body}
    )
    assert reply.status_code == status, reply.text
    assert says in reply.json()["detail"]
    assert count(session, "cameras") == before


def test_duplicate_code_is_409_and_unknown_camera_404(admin: TestClient) -> None:
    new_camera(admin, "99H-3", 0, 0)
    lon, lat = lonlat(10, 0)
    again = admin.post("/cameras", json={"code": "99H-3", "name": "x", "lon": lon, "lat": lat})
    assert again.status_code == 409
    assert admin.patch("/cameras/99H-NONE", json={"heading_deg": 1}).status_code == 404
    assert admin.patch("/cameras/99H-3", json={"heading_deg": None}).status_code == 422


def test_camera_layer_is_geojson_points_or_views(admin: TestClient) -> None:
    new_camera(admin, "99H-4", 0, 0, kind="dome", range_m=50)
    new_camera(admin, "99H-5", 100, 0, status="offline")
    points = admin.get("/cameras", params={"status": "online", "town": "990100001000"}).json()
    assert [f["id"] for f in points["features"]] == ["99H-4"]
    assert points["features"][0]["geometry"]["type"] == "Point"
    views = admin.get(
        "/cameras", params={"geometry": "view", "kind": "dome", "town": "990100001000"}
    ).json()
    assert views["features"][0]["geometry"]["type"] == "Polygon"


def test_grid_coverage_endpoint_reports_shares_and_blind_spots(
    admin: TestClient, session: Session
) -> None:
    add_grid(session, "99G-API", Polygon([(0, 0), (400, 0), (400, 400), (0, 400)]))
    new_camera(admin, "99H-6", 0, 0, kind="dome", range_m=400)
    reply = admin.get("/grids/99G-API/coverage")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # A quarter circle of radius 400 m in a 400 m square: π/4 of it.
    assert body["area_share"] == pytest.approx(0.785, abs=0.005)
    assert body["road_share"] is None and body["cameras"] == 1
    assert body["blind_spots"]["type"] in {"Polygon", "MultiPolygon"}
    assert admin.get("/grids/99G-NOPE/coverage").status_code == 404


def test_camera_alert_creates_a_case_at_the_view_centre_through_intake(
    admin: TestClient, session: Session
) -> None:
    add_grid(
        session, "99G-ALR", Polygon([(-1000, -1000), (1000, -1000), (1000, 1000), (-1000, 1000)])
    )
    new_camera(admin, "99H-7", 0, 0, heading_deg=90, fov_deg=40, range_m=300)
    reply = admin.post(
        "/cameras/99H-7/alerts",
        json={"category": "car_surge", "note": "cars pouring into the village"},
        headers={"Idempotency-Key": "cam-99H-7-1"},
    )
    assert reply.status_code == 201, reply.text
    case = reply.json()
    assert case["reporter"] == {"kind": "camera", "id": "99H-7"}
    assert case["grid"]["code"] == "99G-ALR"
    lon, lat = lonlat(0, 0)
    centre_lon, centre_lat, _ = GEOD.fwd(lon, lat, 90, 150)
    assert (case["location"]["lon"], case["location"]["lat"]) == pytest.approx(
        (centre_lon, centre_lat)
    )
    assert [c["code"] for c in case["cameras"]] == ["99H-7"]
    replay = admin.post(
        "/cameras/99H-7/alerts",
        json={"category": "car_surge", "note": "cars pouring into the village"},
        headers={"Idempotency-Key": "cam-99H-7-1"},
    )
    assert replay.json()["id"] == case["id"]
    assert count(session, "incidents") >= 1


def test_alert_with_unknown_category_or_camera_writes_nothing(
    admin: TestClient, session: Session
) -> None:
    new_camera(admin, "99H-8", 0, 0)
    before = count(session, "incidents")
    bad = admin.post("/cameras/99H-8/alerts", json={"category": "ufo"})
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_code"
    assert admin.post("/cameras/99H-NONE/alerts", json={"category": "car_surge"}).status_code == 404
    assert count(session, "incidents") == before


def test_camera_endpoints_need_a_token(client: TestClient) -> None:
    assert client.get("/cameras").status_code == 401
    assert client.post("/cameras/X/alerts", json={"category": "car_surge"}).status_code == 401
