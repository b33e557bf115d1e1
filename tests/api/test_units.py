"""GET /units (GeoJSON with filters), PATCH /units/{id} (status, AVL fix) and the track."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api.deps import server_clock
from gis.layers.users import Role
from tests.conftest import count
from tests.services.dispatch_fixtures import (
    COUNTY,
    OTHER_TOWN,
    TOWN,
    add_regions,
    add_unit,
    client_as,
    lonlat,
)


@pytest.fixture
def dispatcher(app: Any) -> Iterator[TestClient]:
    with client_as(app, Role.DISPATCHER) as client:
        yield client


@pytest.fixture
def units(session: Session) -> dict[str, int]:
    add_regions(session)
    return {
        "police": add_unit(session, "99UA-POL", 0, 0).id,
        "busy": add_unit(session, "99UA-BSY", 100, 0, status="busy").id,
        "market": add_unit(
            session, "99UA-MKT", 200, 0, unit_type="market_office", platform="market"
        ).id,
        "other_town": add_unit(session, "99UA-OTH", 6000, 0, town=OTHER_TOWN).id,
    }


def test_units_are_geojson_filtered_by_platform_type_status_and_town(
    dispatcher: TestClient, units: dict[str, int]
) -> None:
    def ids(**params: str) -> list[int]:
        reply = dispatcher.get("/units", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["type"] == "FeatureCollection"
        assert all(f["geometry"]["type"] == "Point" for f in body["features"])
        return [f["id"] for f in body["features"]]

    assert ids(platform="market", town=TOWN) == [units["market"]]
    assert units["police"] in ids(type="police_station", status="available", town=TOWN)
    assert units["busy"] not in ids(type="police_station", status="available", town=TOWN)
    assert ids(town=OTHER_TOWN) == [units["other_town"]]
    bad = dispatcher.get("/units", params={"status": "asleep"})
    assert bad.status_code == 422 and "available, busy, off_duty" in bad.json()["detail"]


def test_patch_moves_unit_changes_status_and_logs_the_fix(
    dispatcher: TestClient, session: Session, units: dict[str, int]
) -> None:
    lon, lat = lonlat(400, 300)
    reply = dispatcher.patch(
        f"/units/{units['police']}", json={"status": "busy", "lon": lon, "lat": lat}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "busy" and body["moved"] is True
    assert (body["lon"], body["lat"]) == pytest.approx((lon, lat))
    track = dispatcher.get(f"/units/{units['police']}/track").json()
    assert len(track["features"]) == 1
    assert track["features"][0]["geometry"]["coordinates"] == pytest.approx([lon, lat])


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"status": "asleep"}, 422, "status"),
        ({"lon": 117.5}, 422, "both lon and lat"),
        ({}, 422, "nothing to change"),
        ({"lon": 118.5, "lat": 30.5}, 422, "km from every town"),
        ({"lon": 30.5, "lat": 117.5}, 422, "swapped"),
        ({"lon": 117.5, "lat": 30.5, "crs": "mars"}, 422, "unknown coordinate"),
        ({"status": "busy", "colour": "red"}, 422, "colour"),
        ({"lon": 117.5, "lat": 30.5, "recorded_at": "2026-01-01T00:00:00"}, 422, "timezone"),
    ],
)
def test_bad_patch_is_4xx_and_writes_nothing(
    dispatcher: TestClient,
    session: Session,
    units: dict[str, int],
    body: dict[str, object],
    status: int,
    says: str,
) -> None:
    fixes = count(session, "unit_positions")
    reply = dispatcher.patch(f"/units/{units['police']}", json=body)
    assert reply.status_code == status, reply.text
    assert says in reply.json()["detail"]
    assert count(session, "unit_positions") == fixes
    assert dispatcher.get("/units", params={"status": "busy"}).json()["number_matched"] >= 1


def test_a_fix_keeps_the_device_time_beside_the_server_time_within_the_skew(
    dispatcher: TestClient, app: Any, session: Session, units: dict[str, int]
) -> None:
    server = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    app.dependency_overrides[server_clock] = lambda: server
    lon, lat = lonlat(400, 300)
    device = server + timedelta(minutes=2)  # a phone clock running ahead, within 300 s
    fix = {"lon": lon, "lat": lat, "recorded_at": device.isoformat()}
    assert dispatcher.patch(f"/units/{units['police']}", json=fix).status_code == 200
    [stored] = dispatcher.get(f"/units/{units['police']}/track").json()["features"]
    times = stored["properties"]
    assert datetime.fromisoformat(times["recorded_at"]) == device
    assert datetime.fromisoformat(times["received_at"]) == server
    fixes = count(session, "unit_positions")
    fix["recorded_at"] = (server + timedelta(minutes=10)).isoformat()
    reply = dispatcher.patch(f"/units/{units['police']}", json=fix)
    assert reply.status_code == 422 and "in the future" in reply.json()["detail"]
    assert count(session, "unit_positions") == fixes
    # The refusal is one the operation documents (a deeper schemathesis run found it was not).
    patch = app.openapi()["paths"]["/units/{unit_id}"]["patch"]["responses"]["422"]
    assert reply.json()["code"] in patch["x-domain-errors"]
    assert "GIS_DEVICE_CLOCK_SKEW_S" in patch["description"]


def test_patch_of_unknown_unit_is_404(dispatcher: TestClient) -> None:
    assert dispatcher.patch("/units/999999", json={"status": "busy"}).status_code == 404


def test_unit_token_may_only_update_its_own_unit(app: Any, units: dict[str, int]) -> None:
    with client_as(app, Role.UNIT, unit_id=units["police"]) as device:
        assert device.patch(f"/units/{units['police']}", json={"status": "busy"}).status_code == 200
        other = device.patch(f"/units/{units['market']}", json={"status": "busy"})
        assert other.status_code == 403


def test_a_towns_dispatcher_changes_its_own_and_county_units_but_another_towns_is_404(
    app: Any, session: Session, units: dict[str, int]
) -> None:
    county_unit = add_unit(session, "99UA-CTY", 300, 0, town=COUNTY).id
    with client_as(app, Role.DISPATCHER, towns=[TOWN]) as dispatcher:
        own = dispatcher.patch(f"/units/{units['police']}", json={"status": "off_duty"})
        assert own.status_code == 200 and own.json()["status"] == "off_duty"
        county = dispatcher.patch(f"/units/{county_unit}", json={"status": "busy"})
        assert county.status_code == 200 and county.json()["status"] == "busy"
        other = dispatcher.patch(f"/units/{units['other_town']}", json={"status": "off_duty"})
        assert other.status_code == 404 and other.json()["code"] == "not_found"
        # The same answer as for a unit that does not exist, and nothing was changed.
        assert other.json()["detail"] == f"no responder unit with id {units['other_town']}"
        assert dispatcher.get(f"/units/{units['other_town']}").json()["status"] == "available"
    with client_as(app, Role.DISPATCHER, towns=[OTHER_TOWN]) as theirs:
        mine = theirs.patch(f"/units/{units['police']}", json={"status": "available"})
        assert mine.status_code == 404


def test_one_unit_reads_back_its_position(dispatcher: TestClient, units: dict[str, int]) -> None:
    reply = dispatcher.get(f"/units/{units['police']}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["code"] == "99UA-POL"
    assert (reply.json()["lon"], reply.json()["lat"]) == pytest.approx(lonlat(0, 0))
    assert dispatcher.get("/units/999999").status_code == 404
