"""The editor's gestures through the API: each keeps the grids a coverage of the village, answers
the re-validated draft, and bad gestures are 4xx that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.users import Role
from gis.services.access import Principal
from tests.services.planfixtures import EAST, MID, NORTH, SOUTH, WEST, Village, make_village

PLANNER = Principal(user_id=None, name="planner-li", role=Role.PLANNER, town_codes=None)
LAT_MID = (SOUTH + NORTH) / 2


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made two-grid village."""
    return make_village(session)


@pytest.fixture
def planner(app: Any, village: Village) -> Iterator[TestClient]:
    """A client acting as a planner."""
    app.dependency_overrides[get_principal] = lambda: PLANNER
    with TestClient(app) as client:
        yield client


def _start(client: TestClient, village: Village) -> dict[str, Any]:
    response = client.post("/plans/editor/drafts", json={"village": village.village})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _edit(client: TestClient, plan_id: int, gesture: dict[str, Any], **extra: Any) -> Any:
    return client.post(f"/plans/{plan_id}/edits", json={"gesture": gesture, **extra})


def _geoms(plan: dict[str, Any]) -> dict[str, Any]:
    return {f["properties"]["code"]: shape(f["geometry"]) for f in plan["proposed"]["features"]}


def _tiles_exactly(plan: dict[str, Any], village_geom: Any) -> None:
    geoms = np.array(list(_geoms(plan).values()), dtype=object)
    assert shapely.coverage_is_valid(geoms)
    assert all(e.is_empty for e in shapely.coverage_invalid_edges(geoms))
    union = shapely.coverage_union_all(geoms)
    assert union.symmetric_difference(village_geom).area < 1e-15


VILLAGE_BOX = shapely.box(WEST, SOUTH, EAST, NORTH)


def test_draft_starts_from_the_current_grids_with_their_members(
    planner: TestClient, village: Village
) -> None:
    plan = _start(planner, village)
    assert plan["status"] == "draft" and plan["valid"] and plan["coverage"]["valid"]
    assert plan["history"] == {"done": 0, "undone": 0}
    rows = {g["code"]: g for g in plan["balance"]["grids"]}
    assert rows[village.west]["members"] == [village.member_w]
    assert plan["impact"]["open_cases_moving"] == 0
    _tiles_exactly(plan, VILLAGE_BOX)


def test_split_adds_a_grid_nodes_the_neighbour_and_stays_clean(
    planner: TestClient, village: Village
) -> None:
    plan = _start(planner, village)
    line = [[WEST - 0.001, LAT_MID], [MID + 0.002, LAT_MID]]  # across W, ending inside E
    response = _edit(planner, plan["id"], {"op": "split", "line": line}, head=0)
    assert response.status_code == 200, response.text
    after = response.json()
    assert len(after["balance"]["grids"]) == 3
    assert after["valid"], after["validation"]
    assert after["coverage"] == {
        "valid": True,
        "invalid_edges": None,
        "grids_with_invalid_edges": 0,
    }
    geoms = _geoms(after)
    # The east grid got the split point on its shared edge, so the edges still match.
    east = np.asarray(shapely.get_coordinates(geoms[village.east]))
    assert ((east[:, 0] == MID) & (east[:, 1] == LAT_MID)).any()
    _tiles_exactly(after, VILLAGE_BOX)
    new = (set(geoms) - {village.west, village.east}).pop()
    assert new.startswith(village.village + "-")
    assert after["history"] == {"done": 1, "undone": 0}
    # The case at lat 28.905 stays west (southern half is the larger-equal piece either way).
    assert after["impact"]["grids"]["added"] == [new]


def test_merge_then_undo_and_redo(planner: TestClient, village: Village) -> None:
    plan = _start(planner, village)
    merged = _edit(planner, plan["id"], {"op": "merge", "grids": [village.west, village.east]})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert list(_geoms(body)) == [village.west]
    assert body["valid"] and body["impact"]["grids"]["retired"] == [village.east]
    assert body["impact"]["open_cases_moving"] == 1  # the east case
    _tiles_exactly(body, VILLAGE_BOX)
    undone = planner.post(f"/plans/{plan['id']}/undo").json()
    assert sorted(_geoms(undone)) == sorted([village.west, village.east])
    assert undone["history"] == {"done": 0, "undone": 1}
    assert planner.post(f"/plans/{plan['id']}/undo").status_code == 409
    redone = planner.post(f"/plans/{plan['id']}/redo").json()
    assert list(_geoms(redone)) == [village.west]
    assert planner.post(f"/plans/{plan['id']}/redo").status_code == 409


def test_moving_a_shared_vertex_moves_both_grids(planner: TestClient, village: Village) -> None:
    plan = _start(planner, village)
    moved = _edit(
        planner,
        plan["id"],
        {"op": "move_vertex", "from": [MID, NORTH], "to": [MID + 0.002, NORTH]},
    )
    # (MID, NORTH) lies on the village outline: moving it along the outline keeps the tiling.
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["valid"], body["validation"]
    _tiles_exactly(body, VILLAGE_BOX)
    geoms = _geoms(body)
    assert geoms[village.west].area > geoms[village.east].area


def test_moving_an_outline_vertex_inward_draws_a_gap_and_apply_refuses(
    planner: TestClient, village: Village
) -> None:
    plan = _start(planner, village)
    body = _edit(
        planner,
        plan["id"],
        {"op": "move_vertex", "from": [WEST, NORTH], "to": [WEST + 0.002, NORTH]},
    ).json()
    assert not body["valid"]
    gaps = [p for p in body["problems"] if p["kind"] == "gap"]
    assert gaps and gaps[0]["area_m2"] > 1000 and gaps[0]["geometry"]["type"] == "MultiPolygon"
    refused = planner.post(f"/plans/{plan['id']}/apply")
    assert refused.status_code == 422 and refused.json()["code"] == "plan_invalid"


def test_new_grid_is_carved_from_the_grids_it_overlaps(
    planner: TestClient, village: Village
) -> None:
    plan = _start(planner, village)
    square = shapely.box(MID - 0.002, SOUTH + 0.002, MID + 0.002, SOUTH + 0.004)
    ring = [list(xy) for xy in square.exterior.coords]
    body = _edit(planner, plan["id"], {"op": "add", "polygon": [ring], "name": "新小区"}).json()
    assert body["valid"], body["validation"]
    geoms = _geoms(body)
    assert len(geoms) == 3
    _tiles_exactly(body, VILLAGE_BOX)
    new = next(f for f in body["proposed"]["features"] if f["properties"]["name"] == "新小区")
    assert shape(new["geometry"]).symmetric_difference(square).area < 1e-15


def test_rename_and_member(planner: TestClient, village: Village) -> None:
    plan = _start(planner, village)
    _edit(planner, plan["id"], {"op": "rename", "grid": village.west, "grid_x": 1})
    renamed = _edit(planner, plan["id"], {"op": "rename", "grid": village.west, "name": "西片"})
    assert renamed.status_code == 200
    body = _edit(
        planner, plan["id"], {"op": "member", "grid": village.east, "members": [village.member_w]}
    ).json()
    props = {f["properties"]["code"]: f["properties"] for f in body["proposed"]["features"]}
    assert props[village.west]["name"] == "西片"
    assert props[village.east]["members"] == [village.member_w]
    moved = {m["member_id"]: m for m in body["impact"]["members"]}
    assert moved[village.member_w]["after"] == sorted([village.west, village.east])


@pytest.mark.parametrize(
    ("gesture", "status", "says"),
    [
        ({"op": "split", "grid": "X", "line": [[118.801, 28.9], [118.801, 28.92]]}, 422, "no grid"),
        (
            {"op": "split", "line": [[118.801, 28.901], [118.802, 28.902]]},
            422,
            "does not cross",
        ),
        ({"op": "merge", "grids": ["W", "W"]}, 422, "two different"),
        (
            {
                "op": "add",
                "polygon": [
                    [
                        [118.801, 28.901],
                        [118.803, 28.903],
                        [118.803, 28.901],
                        [118.801, 28.903],
                        [118.801, 28.901],
                    ]
                ],
            },
            422,
            "Self-intersection",
        ),
        (
            {
                "op": "add",
                "polygon": [[[118.9, 28.9], [118.91, 28.9], [118.91, 28.91], [118.9, 28.9]]],
            },
            422,
            "outside village",
        ),
        (
            {"op": "move_vertex", "from": [118.8011, 28.9011], "to": [118.8, 28.9]},
            422,
            "no grid has",
        ),
        (
            {"op": "move_vertex", "from": [WEST, SOUTH], "to": [MID + 0.002, NORTH - 0.001]},
            422,
            "invalid",
        ),
        ({"op": "split", "line": [[200.0, 28.9], [118.8, 28.91]]}, 422, "longitude"),
        ({"op": "teleport"}, 422, ""),
    ],
)
def test_bad_gestures_say_why_and_change_nothing(
    planner: TestClient, village: Village, gesture: dict[str, Any], status: int, says: str
) -> None:
    plan = _start(planner, village)
    response = _edit(planner, plan["id"], gesture)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    again = planner.get(f"/plans/{plan['id']}/editor").json()
    assert again["proposed"] == plan["proposed"] and again["history"]["done"] == 0


def test_merging_grids_that_do_not_touch_is_refused(planner: TestClient, village: Village) -> None:
    plan = _start(planner, village)
    # Split W into north/south, then merge the south-west piece with... the north piece of E's cut.
    _edit(
        planner,
        plan["id"],
        {
            "op": "split",
            "grid": village.west,
            "line": [[WEST - 1e-3, LAT_MID], [MID + 1e-3, LAT_MID]],
        },
    )
    body = _edit(
        planner,
        plan["id"],
        {
            "op": "split",
            "grid": village.east,
            "line": [[MID - 1e-3, LAT_MID], [EAST + 1e-3, LAT_MID]],
        },
    ).json()
    geoms = _geoms(body)
    south_west = min(
        (c for c in geoms if geoms[c].centroid.x < MID), key=lambda c: geoms[c].centroid.y
    )
    north_east = max(
        (c for c in geoms if geoms[c].centroid.x > MID), key=lambda c: geoms[c].centroid.y
    )
    response = _edit(planner, plan["id"], {"op": "merge", "grids": [south_west, north_east]})
    assert response.status_code == 422
    assert "do not share an edge" in response.json()["detail"]
    assert body["coverage"]["valid"]
    _tiles_exactly(body, VILLAGE_BOX)


def test_another_windows_edit_is_a_conflict(planner: TestClient, village: Village) -> None:
    plan = _start(planner, village)
    _edit(planner, plan["id"], {"op": "rename", "grid": village.west, "name": "甲"}, head=0)
    stale = _edit(planner, plan["id"], {"op": "rename", "grid": village.west, "name": "乙"}, head=0)
    assert stale.status_code == 409 and stale.json()["head"] == 1


def test_stale_apply_says_what_changed_and_rebase_recovers(
    planner: TestClient, village: Village
) -> None:
    first = _start(planner, village)
    second = _start(planner, village)
    _edit(planner, first["id"], {"op": "rename", "grid": village.west, "name": "甲"})
    assert planner.post(f"/plans/{first['id']}/apply").status_code == 200
    # The second draft was superseded by the apply; a third made before is the stale case.
    assert planner.get(f"/plans/{second['id']}").json()["status"] == "superseded"


def test_stale_apply_lists_the_changes(
    planner: TestClient, village: Village, session: Session
) -> None:
    from gis.layers.plans import Plan

    first = _start(planner, village)
    other = _start(planner, village)
    _edit(planner, other["id"], {"op": "rename", "grid": village.east, "name": "东"})
    assert planner.post(f"/plans/{other['id']}/apply").status_code == 200
    # Put the first draft back to draft, as if it had been made in another village session.
    plan = session.get(Plan, first["id"])
    assert plan is not None
    plan.status = "draft"
    session.commit()
    stale = planner.post(f"/plans/{first['id']}/apply")
    assert stale.status_code == 409
    changed = stale.json()["changed"]
    assert {(c["code"], c["change"]) for c in changed} >= {
        (village.east, "created"),
        (village.east, "retired"),
    }
    rebased = planner.post(f"/plans/{first['id']}/rebase")
    assert rebased.status_code == 200, rebased.text
    rebased = rebased.json()
    assert (
        rebased["based_on_version"]
        == planner.get(f"/plans/base/{village.village}").json()["based_on_version"]
    )
    assert planner.post(f"/plans/{first['id']}/apply").status_code == 200
