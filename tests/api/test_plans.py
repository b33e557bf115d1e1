"""The plan endpoints end to end: base → propose → preview → apply → history and as-of queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping, shape
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.users import Role
from gis.services.access import Principal
from tests.services.planfixtures import (
    EAST,
    MID,
    NORTH,
    SOUTH,
    WEST,
    Village,
    collection,
    feature,
    make_village,
    straight_cut,
    thirds,
)

PLANNER = Principal(user_id=None, name="planner-zhao", role=Role.PLANNER, town_codes=None)


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village in the test's transaction."""
    return make_village(session)


@pytest.fixture
def planner(app: Any, village: Village) -> Iterator[TestClient]:
    """A client acting as a planner of every town."""
    app.dependency_overrides[get_principal] = lambda: PLANNER
    with TestClient(app) as client:
        yield client


def _base(client: TestClient, village: Village) -> dict[str, Any]:
    response = client.get(f"/plans/base/{village.village}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _post(client: TestClient, village: Village, proposed: dict[str, Any], **extra: Any) -> Any:
    token = extra.pop("based_on_version", None) or _base(client, village)["based_on_version"]
    return client.post(
        "/plans",
        json={"village": village.village, "based_on_version": token, "proposed": proposed, **extra},
    )


def test_base_lists_the_current_grids_and_a_version_token(
    planner: TestClient, village: Village
) -> None:
    base = _base(planner, village)
    assert len(base["based_on_version"]) == 16
    codes = [f["properties"]["code"] for f in base["grids"]["features"]]
    assert codes == sorted([village.east, village.west])


def test_plan_round_trip_apply_history_and_as_of_queries(
    planner: TestClient, village: Village
) -> None:
    before_apply = datetime.now(UTC) - timedelta(seconds=1)
    created = _post(planner, village, thirds(village), title="three strips")
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["valid"] and plan["status"] == "draft" and plan["created_by"] == "planner-zhao"
    assert plan["impact"]["open_cases_moving"] == 1
    assert planner.get(f"/plans/{plan['id']}").json()["impact"] == plan["impact"]

    page = planner.get(f"/plans/{plan['id']}/map")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Current grids (dashed)" in page.text and "dashArray" in page.text
    assert "Open cases changing grid" in page.text and "→" in page.text

    applied = planner.post(f"/plans/{plan['id']}/apply")
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "applied"
    assert applied.json()["result"]["cases"]["moved"] == 1
    again = planner.post(f"/plans/{plan['id']}/apply")
    assert again.status_code == 409 and again.json()["code"] == "conflict"

    history = planner.get(f"/grids/{village.west}/history", params={"geometry": True}).json()
    assert [(h["version"], h["created_by"], h["retired_by"]) for h in history] == [
        (1, "seed", "planner-zhao"),
        (2, "planner-zhao", None),
    ]
    assert history[0]["valid_to"] == history[1]["valid_from"]
    assert history[1]["plan_id"] == plan["id"] and history[0]["retired_by_plan_id"] == plan["id"]
    assert history[0]["area_m2"] > history[1]["area_m2"] > 0
    assert history[1]["geometry"]["type"] == "MultiPolygon"

    def grids_at(at: datetime) -> list[str]:
        body = planner.get("/grids", params={"village": village.village, "at": at.isoformat()})
        return sorted(f["properties"]["code"] for f in body.json()["features"])

    assert grids_at(before_apply) == sorted([village.east, village.west])
    assert len(grids_at(datetime.now(UTC) + timedelta(seconds=1))) == 3

    # The moving case's point belonged to the west grid before and to the middle grid now.
    def grid_of_point(at: datetime) -> str:
        found = planner.get("/locate", params={"lon": 118.804, "lat": 28.905, "at": at.isoformat()})
        assert found.status_code == 200, found.text
        return str(found.json()["grid"]["code"])

    assert grid_of_point(before_apply) == village.west
    assert grid_of_point(datetime.now(UTC) + timedelta(seconds=1)) == f"{village.village}-M"


def test_stale_base_version_is_409_with_the_current_version(
    planner: TestClient, village: Village
) -> None:
    response = _post(planner, village, thirds(village), based_on_version="0000000000000000")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and "GET /plans/base" in body["detail"]
    assert body["current_version"] == _base(planner, village)["based_on_version"]


def test_plan_with_a_gap_is_stored_but_apply_is_422(planner: TestClient, village: Village) -> None:
    created = _post(
        planner, village, collection(feature(village.west, box(WEST, SOUTH, MID, NORTH)))
    )
    assert created.status_code == 201
    assert not created.json()["valid"]
    gap = next(i for i in created.json()["validation"]["issues"] if i["kind"] == "gap")
    assert gap["geometry"]["type"] == "MultiPolygon" and gap["area_m2"] > 500_000
    page = planner.get(f"/plans/{created.json()['id']}/map")
    assert page.status_code == 200 and "#d32f2f" in page.text  # the gap, in red
    refused = planner.post(f"/plans/{created.json()['id']}/apply")
    assert refused.status_code == 422
    assert refused.json()["code"] == "plan_invalid"
    assert refused.json()["issues"][0]["kind"] == "gap"
    assert planner.get(f"/plans/{created.json()['id']}").json()["status"] == "draft"


@pytest.mark.parametrize(
    ("coordinates", "geometry_type", "code"),
    [
        ([[[float("nan"), SOUTH], [MID, SOUTH], [MID, NORTH], [WEST, SOUTH]]], "Polygon", None),
        (
            [[[SOUTH, WEST], [SOUTH, MID], [NORTH, MID], [SOUTH, WEST]]],
            "Polygon",
            "invalid_coordinates",
        ),
        ([[WEST, SOUTH], [EAST, NORTH]], "LineString", "invalid_geometry"),
        ([[[WEST, SOUTH], [MID, SOUTH]]], "Polygon", "invalid_geometry"),
    ],
)
def test_malformed_geometry_is_422_and_stores_nothing(
    planner: TestClient,
    village: Village,
    coordinates: Any,
    geometry_type: str,
    code: str | None,
) -> None:
    token = _base(planner, village)["based_on_version"]
    body = {
        "village": village.village,
        "based_on_version": token,
        "proposed": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": geometry_type, "coordinates": coordinates},
                    "properties": {"code": "X-1"},
                }
            ],
        },
    }
    response = planner.post(
        "/plans",
        content=json.dumps(body, allow_nan=True),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert set(response.json()) >= {"code", "detail"}
    if code is not None:
        assert response.json()["code"] == code
    assert planner.get("/plans", params={"scope": village.village}).json() == []


def test_scope_must_be_one_existing_village_or_town(planner: TestClient, village: Village) -> None:
    both = planner.post(
        "/plans",
        json={
            "village": village.village,
            "town": village.town,
            "based_on_version": "x",
            "proposed": thirds(village),
        },
    )
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    unknown = planner.post(
        "/plans",
        json={"village": "330899999999", "based_on_version": "x", "proposed": thirds(village)},
    )
    assert unknown.status_code == 404 and "330899999999" in unknown.json()["detail"]


def test_planning_needs_a_token_and_the_planner_role(app: Any, village: Village) -> None:
    with TestClient(app) as anonymous:
        response = anonymous.get(f"/plans/base/{village.village}")
        assert response.status_code == 401
    dispatcher = Principal(user_id=None, name="d", role=Role.DISPATCHER, town_codes=None)
    app.dependency_overrides[get_principal] = lambda: dispatcher
    with TestClient(app) as client:
        assert client.get(f"/plans/base/{village.village}").status_code == 403
    other_town = Principal(user_id=None, name="p", role=Role.PLANNER, town_codes=frozenset({"x"}))
    app.dependency_overrides[get_principal] = lambda: other_town
    with TestClient(app) as client:
        assert client.get(f"/plans/base/{village.village}").status_code == 404


def test_unknown_grid_history_is_404(planner: TestClient) -> None:
    response = planner.get("/grids/NO-SUCH-GRID/history")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_grids_as_of_a_time_without_offset_is_422(planner: TestClient, village: Village) -> None:
    response = planner.get(
        "/grids", params={"village": village.village, "at": "2026-06-01T00:00:00"}
    )
    assert response.status_code == 422 and "UTC offset" in response.json()["detail"]


def test_an_exact_split_of_a_demo_grid_through_the_api_is_valid_and_applies(
    planner: TestClient, demo: dict[str, object]
) -> None:
    # Issue 24 as reported: base → split the largest grid with a straight line → POST → apply.
    village_code = "330803110201"  # refused for a 9.5 m² "gap" at all three angles before
    for angle in (0.0, 45.0, 100.0):
        base = planner.get(f"/plans/base/{village_code}").json()
        features = base["grids"]["features"]
        largest = max(features, key=lambda f: shape(f["geometry"]).area)
        (grid,) = shape(largest["geometry"]).geoms
        centre = grid.centroid
        pieces = straight_cut(grid, (centre.x, centre.y), angle)
        assert len(pieces) == 2
        code = largest["properties"]["code"]
        proposed = [f for f in features if f is not largest] + [
            {"type": "Feature", "geometry": dict(mapping(p)), "properties": {"code": c}}
            for p, c in zip(pieces, (code, f"{code}S"), strict=True)
        ]
        created = planner.post(
            "/plans",
            json={
                "village": village_code,
                "based_on_version": base["based_on_version"],
                "proposed": {"type": "FeatureCollection", "features": proposed},
            },
        )
        assert created.status_code == 201, created.text
        errors = [i for i in created.json()["validation"]["issues"] if i["severity"] == "error"]
        assert created.json()["valid"] and not errors, errors
    applied = planner.post(f"/plans/{created.json()['id']}/apply")
    assert applied.status_code == 200, applied.text
    assert len(applied.json()["result"]["created"]) == 2
