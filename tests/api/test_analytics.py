"""Analytics over HTTP: GeoJSON a map can colour, the /stats readers and town scope, 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.users import Role
from gis.services.access import Principal
from tests.services.analytics_fixtures import (
    ONE_GRID_TOWN,
    ORIGIN,
    TOWN,
    WEEK_0,
    add_case_points,
    add_cases,
    build_lattice,
)

PERIOD = {
    "since": WEEK_0.isoformat(),
    "until": (WEEK_0 + timedelta(weeks=1)).isoformat(),
    "seed": 1,
}


@pytest.fixture
def lattice(session: Session, catalog: int) -> None:
    build_lattice(session, 8, 8)
    counts = np.random.default_rng(2).poisson(2.0, size=(8, 8))
    counts[2:5, 2:5] += 12
    add_cases(session, counts)


def _as(app: Any, role: Role, towns: frozenset[str] | None) -> Iterator[TestClient]:
    principal = Principal(user_id=None, name=role.value, role=role, town_codes=towns)
    app.dependency_overrides[get_principal] = lambda: principal
    with TestClient(app) as client:
        yield client


@pytest.fixture
def room(app: Any) -> Iterator[TestClient]:
    yield from _as(app, Role.COMMAND_ROOM, frozenset({TOWN}))


def test_hotspots_are_geojson_with_colour_ready_classes(room: TestClient, lattice: None) -> None:
    reply = room.get("/analytics/hotspots", params={"town": TOWN, **PERIOD})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 64
    feature = next(f for f in body["features"] if f["id"] == "L-03-03")
    assert feature["geometry"]["type"] == "MultiPolygon"
    props = feature["properties"]
    assert props["spot"].startswith("hot_") and props["colour"].startswith("#")
    assert props["count"] >= 12 and props["z"] > 3
    assert sum(body["summary"].values()) == 64 and body["cases"] > 9 * 12


def test_hotspots_per_square_cell(room: TestClient, lattice: None) -> None:
    reply = room.get("/analytics/hotspots", params={"town": TOWN, **PERIOD, "cell_m": 800})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["unit"] == "cell" and body["weights"] == "distance" and body["band_m"] == 1200
    assert body["features"][0]["id"].startswith("C") and body["cases"] > 9 * 12
    assert any(f["properties"]["spot"].startswith("hot_") for f in body["features"])
    bad = room.get(
        "/analytics/hotspots", params={"town": TOWN, **PERIOD, "weights": "queen", "band_m": 9}
    )
    assert bad.status_code == 422 and "band_m goes with weights=distance" in bad.text


def test_other_towns_and_other_roles_are_refused(app: Any, lattice: None) -> None:
    for client in _as(app, Role.COMMAND_ROOM, frozenset({ONE_GRID_TOWN})):
        reply = client.get("/analytics/hotspots", params={"town": TOWN, **PERIOD})
        assert reply.status_code == 404 and "jurisdiction" in reply.json()["detail"]
    for client in _as(app, Role.GRID_MEMBER, frozenset({TOWN})):
        assert client.get("/analytics/hotspots", params={"town": TOWN}).status_code == 403


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"town": TOWN, **PERIOD, "platform": "police"}, 422, "unknown platform"),
        ({"town": ONE_GRID_TOWN, **PERIOD}, 422, "1 current grid"),
        ({"town": TOWN, "since": "2025-01-01T00:00:00Z", "until": "2025-02-01T00:00:00Z"},
         422, "only 0 case"),
        ({"town": TOWN, **PERIOD, "permutations": 1}, 422, "permutations"),
        # The map's rule for a platform and category that do not go together (CaseFilter).
        ({"town": TOWN, **PERIOD, "platform": "market", "category": "noise_nuisance"},
         422, "belongs to platform 'enforcement'"),
    ],
)  # fmt: skip
def test_bad_hotspot_requests_get_a_4xx_with_the_reason(
    app: Any, lattice: None, params: dict[str, Any], status: int, reason: str
) -> None:
    for client in _as(app, Role.COUNTY, None):
        reply = client.get("/analytics/hotspots", params=params)
        assert reply.status_code == status, reply.text
        assert reason in reply.text


def test_emerging_lists_a_category_per_grid(room: TestClient, lattice: None) -> None:
    until = (WEEK_0 + timedelta(weeks=4)).isoformat()
    reply = room.get(
        "/analytics/emerging", params={**PERIOD, "town": TOWN, "until": until, "step": "week"}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["slices"]) == 4 and len(body["features"]) == 64
    props = body["features"][0]["properties"]
    assert len(props["counts"]) == 4 and props["colour"].startswith("#")
    bad = room.get("/analytics/emerging", params={"town": TOWN, "step": "day"})
    assert bad.status_code == 422


def test_recurring_lists_the_groups_with_their_cases(
    room: TestClient, session: Session, lattice: None
) -> None:
    spot = (ORIGIN[0] + 0.0101, ORIGIN[1] + 0.0101)
    times = [WEEK_0 + timedelta(weeks=k) for k in range(3)]
    ids = add_case_points(session, [spot] * 3, reported=times)
    reply = room.get(
        "/analytics/recurring",
        params={
            "until": (WEEK_0 + timedelta(weeks=4)).isoformat(),
            "radius_m": 30,
            "category": "noise_nuisance",
        },
    )
    assert reply.status_code == 200, reply.text
    groups = reply.json()["features"]
    assert [g["properties"]["case_ids"] for g in groups] == [ids]
    assert groups[0]["geometry"]["type"] == "Point"
    # Without the category filter the lattice's cases (all closed, nine per grid centre in the
    # block) are recurring problems too.
    everything = room.get("/analytics/recurring", params={"until": WEEK_0 + timedelta(weeks=4)})
    assert len(everything.json()["features"]) > 1
    assert room.get("/analytics/recurring", params={"radius_m": 0}).status_code == 422
