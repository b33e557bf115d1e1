"""GET /dispatch/nearest and GET /incidents/{id}/suggested-units over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from gis.layers.incidents import Incident
from gis.layers.users import Role
from tests.services.dispatch_fixtures import (
    TOWN,
    add_regions,
    add_road,
    add_unit,
    client_as,
    lonlat,
)


@pytest.fixture
def dispatcher(app: Any) -> Iterator[TestClient]:
    with client_as(app, Role.DISPATCHER) as client:
        yield client


@pytest.fixture
def place(session: Session) -> dict[str, int]:
    """Two police units and a market office on one straight road."""
    add_regions(session)
    add_road(session, [(0, 0), (2000, 0)], 1, 2, speed_kmh=36)
    near = add_unit(session, "99A-NEAR", 500, 0)
    far = add_unit(session, "99A-FAR", 2000, 0)
    market = add_unit(session, "99A-MKT", 100, 0, unit_type="market_office", platform="market")
    busy = add_unit(session, "99A-BUSY", 50, 0, status="busy")
    return {"near": near.id, "far": far.id, "market": market.id, "busy": busy.id}


def test_nearest_by_distance_filters_by_unit_type_and_availability(
    dispatcher: TestClient, place: dict[str, int]
) -> None:
    lon, lat = lonlat(0, 0)
    reply = dispatcher.get(
        "/dispatch/nearest", params={"lon": lon, "lat": lat, "unit_type": "police_station", "k": 2}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [u["id"] for u in body["units"]] == [place["near"], place["far"]]
    assert body["units"][0]["distance_m"] == pytest.approx(500, abs=1)
    assert body["units"][0]["eta_s"] is None and body["by"] == "distance"
    everyone = dispatcher.get(
        "/dispatch/nearest", params={"lon": lon, "lat": lat, "available_only": "false", "k": 50}
    ).json()
    assert everyone["units"][0]["id"] == place["busy"]


@pytest.mark.parametrize(
    "params",
    [
        {"k": 2},
        {"k": 50, "available_only": "false"},
        {"unit_type": "police_station", "platform": "governance", "k": 3},
        {"platform": "market"},
    ],
)
def test_the_fast_nearest_answers_exactly_as_the_route(
    dispatcher: TestClient,
    place: dict[str, int],
    params: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The common question (by distance) is answered before the router on asyncpg; a parameter
    it does not take (here include_route, false as by default) sends it through the route: the
    two replies are the same bytes."""
    from gis.services import dispatch

    lon, lat = lonlat(300, 10)
    with monkeypatch.context() as patch:

        def routed_service(*args: object, **kwargs: object) -> None:
            raise AssertionError("the common question went through the route")

        patch.setattr(dispatch, "nearest_responders", routed_service)
        fast = dispatcher.get("/dispatch/nearest", params={"lon": lon, "lat": lat, **params})
    routed = dispatcher.get(
        "/dispatch/nearest", params={"lon": lon, "lat": lat, **params, "include_route": "false"}
    )
    assert fast.status_code == routed.status_code == 200, (fast.text, routed.text)
    assert fast.json()["units"], "the places have units nearby"
    assert fast.content == routed.content


def test_nearest_by_drive_time_reports_eta_and_route(
    dispatcher: TestClient, place: dict[str, int]
) -> None:
    lon, lat = lonlat(0, 0)
    reply = dispatcher.get(
        "/dispatch/nearest",
        params={"lon": lon, "lat": lat, "platform": "governance", "by": "drive_time", "k": 2},
    )
    assert reply.status_code == 200, reply.text
    first = reply.json()["units"][0]
    assert first["id"] == place["near"] and first["reachable"] is True
    assert first["eta_s"] == pytest.approx(50, abs=0.5)
    assert first["route_m"] == pytest.approx(500, abs=2)


@pytest.mark.parametrize(
    ("params", "status", "code", "says"),
    [
        ({"k": 0}, 422, "validation_error", "k: Input should be greater than or equal to 1"),
        ({"k": 51}, 422, "validation_error", "k: Input should be less than or equal to 50"),
        ({"platform": "police"}, 422, "unknown_code", "known platforms"),
        ({"unit_type": "sheriff"}, 422, "unknown_code", "known unit types"),
        ({"crs": "EPSG:3857"}, 422, "unknown_crs", "accepted"),
        ({"by": "helicopter"}, 422, "validation_error", "by"),
        ({"lon": "nan"}, 422, "invalid_coordinates", "finite"),
        ({"lon": 30.5, "lat": 117.5}, 422, "invalid_coordinates", "swapped"),
    ],
)
def test_bad_nearest_queries_are_4xx_with_reason(
    dispatcher: TestClient, params: dict[str, object], status: int, code: str, says: str
) -> None:
    lon, lat = lonlat(0, 0)
    reply = dispatcher.get("/dispatch/nearest", params={"lon": lon, "lat": lat, **params})
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code and says in reply.json()["detail"]


def test_nearest_needs_a_token_when_auth_is_on(client: TestClient) -> None:
    reply = client.get("/dispatch/nearest", params={"lon": 117.5, "lat": 30.5})
    assert reply.status_code == 401


def test_suggested_units_use_the_category_unit_type(
    dispatcher: TestClient, session: Session, place: dict[str, int]
) -> None:
    lon, lat = lonlat(150, 0)
    incident = Incident(
        category_code="elderly_fraud_sales",
        platform="market",
        status="reported",
        reporter_kind="citizen",
        geom=from_shape(Point(lon, lat), srid=4326),
        source_lon=lon,
        source_lat=lat,
        location_quality="inside",
        town_code=TOWN,
    )
    session.add(incident)
    session.flush()
    reply = dispatcher.get(f"/incidents/{incident.id}/suggested-units", params={"k": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["incident_id"] == incident.id and body["town_code"] == TOWN
    # The nearest market office is ours; any others are far away (the demo county, if loaded).
    assert body["units"][0]["id"] == place["market"]
    assert all(u["unit_type"] == "market_office" for u in body["units"])
    assert dispatcher.get("/incidents/999999999/suggested-units").status_code == 404


def test_nearest_by_drive_time_can_include_the_route(
    dispatcher: TestClient, place: dict[str, int]
) -> None:
    lon, lat = lonlat(0, 0)
    params = {
        "lon": lon,
        "lat": lat,
        "unit_type": "police_station",
        "by": "drive_time",
        "k": 1,
        "include_route": "true",
    }
    first = dispatcher.get("/dispatch/nearest", params=params).json()["units"][0]
    assert first["route"]["type"] == "LineString"
    assert first["route"]["coordinates"][0] == pytest.approx(list(lonlat(500, 0)))
    assert first["route"]["coordinates"][-1] == pytest.approx([lon, lat])
    plain = dispatcher.get("/dispatch/nearest", params={**params, "include_route": "false"})
    assert plain.json()["units"][0]["route"] is None
