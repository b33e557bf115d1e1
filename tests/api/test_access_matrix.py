"""Role × endpoint × own/other town, against the demo county.

Decision: a resource of another town (or, for a grid member, another grid; for a unit, a case not
assigned to it) answers 404 exactly as if it did not exist; a role that may never use an endpoint
gets 403; no token gets 401. The expected statuses are written out by hand below."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access

ROLES = ["anonymous", *[r.value for r in Role]]


@dataclass(frozen=True)
class Place:
    """An open case of a town, with the grid, member and unit that go with it."""

    town: str
    village: str
    incident: int
    grid: str
    member: int
    unit: int


def _place(session: Session, town: str) -> Place:
    row = session.execute(
        sa.text(
            "SELECT i.id, i.grid_code, i.village_code, i.member_id, i.unit_id FROM incidents i "
            "WHERE i.town_code = :town AND i.status IN ('assigned', 'accepted', 'in_progress') "
            "AND i.unit_id IS NOT NULL AND i.member_id IS NOT NULL ORDER BY i.id LIMIT 1"
        ),
        {"town": town},
    ).one()
    # Every allowed caller must be able to accept it (rolled back with the test).
    session.execute(
        sa.text("UPDATE incidents SET status = 'assigned' WHERE id = :id"), {"id": row.id}
    )
    return Place(town, row.village_code, row.id, row.grid_code, row.member_id, row.unit_id)


@pytest.fixture
def places(session: Session, demo: dict[str, object]) -> tuple[Place, Place]:
    """An open, assigned case in each of two demo towns."""
    towns = session.scalars(
        sa.text(
            "SELECT code FROM regions WHERE level = 'town' AND code LIKE '3308%' "
            "ORDER BY code LIMIT 2"
        )
    ).all()
    return _place(session, towns[0]), _place(session, towns[1])


def _headers(session: Session, role: str, own: Place) -> dict[str, str]:
    if role == "anonymous":
        return {}
    parsed = Role(role)
    scoped = parsed in access.TOWN_SCOPED
    user = access.add_user(
        session,
        name=f"matrix-{role}",
        role=parsed,
        town_codes=[own.town] if scoped else [],
        unit_id=own.unit if parsed is Role.UNIT else None,
        member_id=own.member if parsed is Role.GRID_MEMBER else None,
    )
    return {"Authorization": f"Bearer {access.issue_token(session, user)}"}


def _call(client: Any, endpoint: str, place: Place, headers: dict[str, str]) -> int:
    if endpoint == "case events":
        return int(client.get(f"/incidents/{place.incident}/events", headers=headers).status_code)
    if endpoint == "accept case":
        response = client.post(
            f"/incidents/{place.incident}/actions",
            json={"action": "accept", "note": "matrix"},
            headers=headers,
        )
        return int(response.status_code)
    if endpoint == "suggested units":
        return int(
            client.get(f"/incidents/{place.incident}/suggested-units", headers=headers).status_code
        )
    if endpoint == "command-room map":
        return int(
            client.get(
                "/maps/command-room", params={"town": place.town}, headers=headers
            ).status_code
        )
    if endpoint == "town statistics":
        return int(
            client.get("/stats/towns", params={"town": place.town}, headers=headers).status_code
        )
    if endpoint == "plan base":
        return int(client.get(f"/plans/base/{place.village}", headers=headers).status_code)
    raise AssertionError(endpoint)


# Expected status for (own town, other town), by endpoint and role, written out by hand.
EXPECTED: dict[str, dict[str, tuple[int, int]]] = {
    "case events": {
        "anonymous": (401, 401),
        "grid_member": (200, 404),
        "unit": (200, 404),
        "dispatcher": (200, 404),
        "command_room": (200, 404),
        "planner": (403, 403),
        "county": (200, 200),
        "admin": (200, 200),
    },
    "accept case": {
        "anonymous": (401, 401),
        "grid_member": (200, 404),
        "unit": (200, 404),
        "dispatcher": (200, 404),
        "command_room": (200, 404),
        "planner": (403, 403),
        "county": (200, 200),
        "admin": (200, 200),
    },
    "suggested units": {
        "anonymous": (401, 401),
        "grid_member": (403, 403),
        "unit": (403, 403),
        "dispatcher": (200, 404),
        "command_room": (200, 404),
        "planner": (403, 403),
        "county": (200, 200),
        "admin": (200, 200),
    },
    "command-room map": {
        "anonymous": (401, 401),
        "grid_member": (403, 403),
        "unit": (403, 403),
        "dispatcher": (200, 404),
        "command_room": (200, 404),
        "planner": (200, 404),
        "county": (200, 200),
        "admin": (200, 200),
    },
    "town statistics": {
        "anonymous": (401, 401),
        "grid_member": (403, 403),
        "unit": (403, 403),
        "dispatcher": (200, 404),
        "command_room": (200, 404),
        "planner": (200, 404),
        "county": (200, 200),
        "admin": (200, 200),
    },
    "plan base": {
        "anonymous": (401, 401),
        "grid_member": (403, 403),
        "unit": (403, 403),
        "dispatcher": (403, 403),
        "command_room": (403, 403),
        "planner": (200, 404),
        "county": (403, 403),
        "admin": (200, 200),
    },
}

CASES = [
    (endpoint, role, which) for endpoint in EXPECTED for role in ROLES for which in ("own", "other")
]


@pytest.mark.parametrize(("endpoint", "role", "which"), CASES)
def test_access_matrix(
    client: Any,
    session: Session,
    places: tuple[Place, Place],
    endpoint: str,
    role: str,
    which: str,
) -> None:
    own, other = places
    headers = _headers(session, role, own)
    status = _call(client, endpoint, own if which == "own" else other, headers)
    expected = EXPECTED[endpoint][role][0 if which == "own" else 1]
    assert status == expected, f"{role} on {endpoint} ({which} town): {status} != {expected}"


def test_grid_member_does_not_see_another_grid_of_its_own_town(
    client: Any, session: Session, places: tuple[Place, Place]
) -> None:
    own = places[0]
    neighbour = session.scalar(
        sa.text(
            "SELECT id FROM incidents WHERE town_code = :town AND grid_code <> :grid "
            "ORDER BY id LIMIT 1"
        ),
        {"town": own.town, "grid": own.grid},
    )
    headers = _headers(session, "grid_member", own)
    assert client.get(f"/incidents/{own.incident}/events", headers=headers).status_code == 200
    assert client.get(f"/incidents/{neighbour}/events", headers=headers).status_code == 404


def test_unit_does_not_see_cases_assigned_to_another_unit(
    client: Any, session: Session, places: tuple[Place, Place]
) -> None:
    own = places[0]
    foreign = session.scalar(
        sa.text(
            "SELECT id FROM incidents WHERE town_code = :town AND unit_id <> :unit "
            "ORDER BY id LIMIT 1"
        ),
        {"town": own.town, "unit": own.unit},
    )
    headers = _headers(session, "unit", own)
    assert client.get(f"/incidents/{foreign}/events", headers=headers).status_code == 404


def test_expired_and_revoked_tokens_are_401(
    client: Any, session: Session, places: tuple[Place, Place]
) -> None:
    from datetime import timedelta

    own = places[0]
    user = access.add_user(session, name="matrix-old", role=Role.COUNTY)
    expired = access.issue_token(session, user, valid_for=timedelta(seconds=-1))
    response = client.get(
        f"/incidents/{own.incident}/events", headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    live = access.issue_token(session, user)
    headers = {"Authorization": f"Bearer {live}"}
    assert client.get(f"/incidents/{own.incident}/events", headers=headers).status_code == 200
    access.revoke(session, "matrix-old")
    response = client.get(f"/incidents/{own.incident}/events", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "field"),
    [("grid_member", "grid_code"), ("command_room", "town_code"), ("unit", "unit_id")],
)
def test_case_lists_hold_only_the_callers_cases(
    client: Any, session: Session, places: tuple[Place, Place], role: str, field: str
) -> None:
    own = places[0]
    headers = _headers(session, role, own)
    reply = client.get("/incidents", params={"limit": 1000}, headers=headers)
    assert reply.status_code == 200, reply.text
    features = reply.json()["features"]
    expected = {"grid_code": own.grid, "town_code": own.town, "unit_id": own.unit}[field]
    assert features, "the caller should see some cases"
    assert {f["properties"][field] for f in features} == {expected}
    # And the other town's case is not readable one by one either.
    assert client.get(f"/incidents/{places[1].incident}", headers=headers).status_code == 404


def test_county_lists_every_town(
    client: Any, session: Session, places: tuple[Place, Place]
) -> None:
    headers = _headers(session, "county", places[0])
    reply = client.get("/incidents", params={"limit": 1000}, headers=headers)
    towns = {f["properties"]["town_code"] for f in reply.json()["features"]}
    assert len(towns) >= 2
