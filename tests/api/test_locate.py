"""GET /locate: the grid, village, town and member of a point, in any accepted CRS and date."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.geo import wgs84_to_bd09, wgs84_to_gcj02
from gis.layers.grids import Grid
from tests.services.intake_fixtures import GRID_A, GRID_B, TOWN_1, Area, area

__all__ = ["area"]


@pytest.fixture
def api(client: Any, area: Area, admin_headers: dict[str, str]) -> Any:
    """The test client, as an admin, with the hand-made county in the test's transaction."""
    client.headers.update(admin_headers)
    return client


def test_point_inside_a_grid(api: Any, area: Area) -> None:
    response = api.get("/locate", params={"lon": 110.005, "lat": 30.005})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["quality"] == "inside"
    assert reply["grid"]["code"] == GRID_A
    assert reply["grid"]["member"] == {"id": area.member_a, "name": "张网格"}
    assert reply["town"] == {"code": TOWN_1, "name": "一号镇"}
    assert reply["county"]["code"] == "990100"
    assert reply["location"] == {"lon": 110.005, "lat": 30.005}


def test_point_on_a_vertex_of_three_grids_is_on_edge_lowest_code(api: Any) -> None:
    reply = api.get("/locate", params={"lon": 110.01, "lat": 30.01}).json()
    assert (reply["quality"], reply["grid"]["code"]) == ("on_edge", GRID_A)


@pytest.mark.parametrize("crs", ["GCJ-02", "gcj02", "BD-09"])
def test_same_place_in_an_obfuscated_crs_gives_the_same_grid(api: Any, crs: str) -> None:
    forward = wgs84_to_bd09 if crs == "BD-09" else wgs84_to_gcj02
    lon, lat = forward(110.0105, 30.002)
    reply = api.get("/locate", params={"lon": lon, "lat": lat, "crs": crs}).json()
    assert reply["grid"]["code"] == GRID_B
    assert reply["location"]["lon"] == pytest.approx(110.0105, abs=1e-8)
    assert reply["source"]["crs"] == ("BD-09" if crs == "BD-09" else "GCJ-02")


def test_at_selects_the_grid_version_in_force(api: Any, session: Session) -> None:
    grid = session.query(Grid).filter(Grid.code == GRID_A).one()
    grid.valid_from = datetime(2026, 6, 1, tzinfo=UTC)
    session.flush()
    before = api.get(
        "/locate", params={"lon": 110.005, "lat": 30.005, "at": "2026-01-01T00:00:00+08:00"}
    ).json()
    after = api.get(
        "/locate", params={"lon": 110.005, "lat": 30.005, "at": "2026-07-01T00:00:00Z"}
    ).json()
    assert before["quality"] == "outside" and before["grid"] is None
    assert after["grid"]["code"] == GRID_A


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"lon": "nan", "lat": 30.0}, "invalid_coordinates", "finite"),
        ({"lon": "inf", "lat": 30.0}, "invalid_coordinates", "finite"),
        ({"lon": 30.005, "lat": 110.005}, "invalid_coordinates", "swapped"),
        ({"lon": 110.0, "lat": 95.0}, "invalid_coordinates", "outside"),
        ({"lon": 110.0, "lat": 30.0, "crs": "EPSG:3857"}, "unknown_crs", "accepted"),
        ({"lon": 80.0, "lat": 45.0}, "outside_coverage", "km away"),
        ({"lon": "east", "lat": 30.0}, "validation_error", "lon"),
        ({"lat": 30.0}, "validation_error", "lon"),
        ({"lon": 110.0, "lat": 30.0, "at": "2026-01-01T00:00:00"}, "validation_error", "offset"),
    ],
)
def test_bad_locate_input_is_422_with_the_reason(
    api: Any, params: dict[str, Any], code: str, message: str
) -> None:
    response = api.get("/locate", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert message in response.json()["detail"]


def test_the_hot_path_answers_exactly_as_fastapi_routing_would(
    settings: Any, session: Session, area: Area, admin_headers: dict[str, str]
) -> None:
    """``HotPaths`` calls the endpoint directly; without it FastAPI routes to the same endpoint.
    Both must give the same status, body and headers, errors included."""
    from fastapi.testclient import TestClient

    from gis.api import create_app
    from gis.api.hot import HotPaths
    from tests.conftest import use_session

    def client(hot: bool) -> TestClient:
        app = use_session(create_app(settings), session)
        assert any(m.cls is HotPaths for m in app.user_middleware)
        if not hot:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]
        return TestClient(app)

    at = "2030-01-01T00:00:00+08:00"  # fixed, so both answers carry the same instant
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"lon": 110.005, "lat": 30.005, "at": at}, admin_headers),  # 200
        ({"lon": 110.01, "lat": 30.01, "at": at, "crs": "gcj02"}, admin_headers),
        ({"lon": "east", "lat": 30.0}, admin_headers),  # 422 not a number
        ({"lat": 30.0}, admin_headers),  # 422 missing
        ({"lon": "nan", "lat": 30.0}, admin_headers),  # 422 invalid coordinates
        ({"lon": 30.005, "lat": 110.005}, admin_headers),  # 422 swapped
        ({"lon": 110.0, "lat": 30.0, "crs": "EPSG:3857"}, admin_headers),  # 422 unknown crs
        ({"lon": 110.0, "lat": 30.0, "at": "2030-01-01T00:00:00"}, admin_headers),  # naive
        ({"lon": 10.0, "lat": 10.0}, admin_headers),  # 422 outside the service area
        ({"lon": 110.005, "lat": 30.005}, {}),  # 401 no token
        ({"lon": 110.005, "lat": 30.005}, {"Authorization": "Basic abc"}),  # 401 scheme
        ({"lon": 110.005, "lat": 30.005}, {"Authorization": "Bearer gis_nope"}),  # 401 unknown
    ]
    statuses = []
    with client(hot=True) as hot, client(hot=False) as routed:
        for params, headers in cases:
            a = hot.get("/locate", params=params, headers=headers)
            b = routed.get("/locate", params=params, headers=headers)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), params
            assert a.headers["content-type"] == b.headers["content-type"]
            statuses.append(a.status_code)
    assert statuses == [200, 200] + [422] * 7 + [401] * 3
