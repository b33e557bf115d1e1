"""Statistics over HTTP: JSON and CSV, grouping, town jurisdiction, bad parameters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api.security import get_principal
from gis.layers.users import Role
from gis.services.access import Principal
from tests.services.workflow_fixtures import G1, TOWN_1, TOWN_2, build_history

WINDOW = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
AS_OF = {**WINDOW, "as_of": "2026-04-01T00:00:00Z"}


@pytest.fixture
def history(session: Session, catalog: int) -> dict[str, int]:
    return build_history(session)


def _client(app: Any, principal: Principal) -> Iterator[TestClient]:
    app.dependency_overrides[get_principal] = lambda: principal
    with TestClient(app) as client:
        yield client


@pytest.fixture
def county_room(app: Any) -> Iterator[TestClient]:
    # Scoped to the hand-made towns: the demo county may share the database.
    principal = Principal(
        user_id=None, name="county", role=Role.COUNTY, town_codes=frozenset({TOWN_1, TOWN_2})
    )
    yield from _client(app, principal)


@pytest.fixture
def town_2_room(app: Any) -> Iterator[TestClient]:
    principal = Principal(
        user_id=None, name="乙镇指挥室", role=Role.COMMAND_ROOM, town_codes=frozenset({TOWN_2})
    )
    yield from _client(app, principal)


def test_cases_grouped_by_platform_as_json(county_room: TestClient, history: dict) -> None:
    reply = county_room.get("/stats/cases", params={**AS_OF, "group_by": "platform"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["group_by"] == ["platform"]
    assert body["columns"][:3] == ["platform", "received", "cancelled"]
    rows = {row["platform"]: row for row in body["rows"]}
    assert rows["governance"]["closure_rate"] == 0.5714
    assert rows["market"]["reassigned"] == 1


def test_csv_by_parameter_and_by_accept_header(county_room: TestClient, history: dict) -> None:
    by_param = county_room.get("/stats/towns", params={**AS_OF, "format": "csv"})
    by_header = county_room.get("/stats/towns", params=AS_OF, headers={"Accept": "text/csv"})
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_header.text
    lines = by_param.text.lstrip("\ufeff").splitlines()
    assert lines[0] == (
        "town_code,town_name,received,closed,closure_rate,on_time_rate,overdue_open,summary"
    )
    assert "甲镇：受理 10 件，办结 5 件，办结率 62.5%" in lines[1]


def test_grids_for_the_choropleth(county_room: TestClient, history: dict) -> None:
    rows = county_room.get("/stats/grids", params=AS_OF).json()["rows"]
    assert rows[0] == {
        "grid_code": G1,
        "received": 7,
        "closed": 4,
        "closure_rate": 0.8,
        "on_time_rate": 0.75,
        "overdue_open": 1,
    }


def test_a_town_room_sees_only_its_town(town_2_room: TestClient, history: dict) -> None:
    rows = town_2_room.get("/stats/cases", params={**AS_OF, "group_by": "town"}).json()["rows"]
    assert [row["town_code"] for row in rows] == [TOWN_2]
    other = town_2_room.get("/stats/towns", params={**AS_OF, "town": TOWN_1})
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"group_by": "colour"}, "unknown grouping"),
        ({"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, "empty"),
        ({"platform": "weather"}, "unknown platform"),
        ({"from": "yesterday"}, "from"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_bad_parameters_are_422(county_room: TestClient, params: dict, fragment: str) -> None:
    reply = county_room.get("/stats/cases", params={**AS_OF, **params})
    assert reply.status_code == 422, reply.text
    assert fragment in reply.json()["detail"]


def test_statistics_need_a_token(client: TestClient) -> None:
    assert client.get("/stats/cases").status_code == 401


def test_without_as_of_the_figures_come_from_the_last_refresh(
    county_room: TestClient, history: dict
) -> None:
    refreshed = county_room.post("/stats/refresh")
    assert refreshed.status_code == 200, refreshed.text
    reply = county_room.get("/stats/cases", params={**WINDOW, "group_by": "platform"}).json()
    assert reply["as_of"] == refreshed.json()["refreshed_at"]
    exact = county_room.get(
        "/stats/cases",
        params={**WINDOW, "group_by": "platform", "as_of": reply["as_of"]},
    ).json()
    assert reply["rows"] == exact["rows"]


def test_refresh_is_for_the_county(town_2_room: TestClient) -> None:
    assert town_2_room.post("/stats/refresh").status_code == 403


def test_stale_stored_facts_are_not_served_silently(
    county_room: TestClient, session: Session, history: dict
) -> None:
    # Never refreshed since long ago: the figures are computed exactly as of now instead.
    session.execute(sa.text("UPDATE stats_refreshes SET refreshed_at = '2020-01-01T00:00:00Z'"))
    reply = county_room.get("/stats/cases", params=WINDOW).json()
    as_of = datetime.fromisoformat(reply["as_of"])
    assert abs(as_of - datetime.now(UTC)) < timedelta(minutes=5)
    assert reply["rows"][0]["received"] == 12


def test_months_are_dates_in_json(county_room: TestClient, history: dict) -> None:
    rows = county_room.get("/stats/cases", params={**AS_OF, "group_by": "month"}).json()["rows"]
    assert [row["month"] for row in rows] == ["2026-03-01"]


def test_a_cached_reply_is_reused_within_its_period_and_never_across_towns(
    app: Any, history: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis.services import stats

    builds: list[object] = []
    real = stats.case_figures

    def counted(*args: Any, **kwargs: Any) -> Any:
        builds.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, "case_figures", counted)
    county = Principal(
        user_id=None, name="county", role=Role.COUNTY, town_codes=frozenset({TOWN_1, TOWN_2})
    )
    town_2 = Principal(
        user_id=None, name="乙镇指挥室", role=Role.COMMAND_ROOM, town_codes=frozenset({TOWN_2})
    )
    params = {**AS_OF, "group_by": "town"}
    callers = {"county": county, "town_2": town_2}
    app.dependency_overrides[get_principal] = lambda: callers[current]
    with TestClient(app) as client:
        assert app.state.stats_cache.ttl_s > 0  # on by default (GIS_STATS_CACHE_S)
        current = "county"
        first = client.get("/stats/cases", params=params)
        assert first.status_code == 200 and first.headers["content-type"] == "application/json"
        assert {row["town_code"] for row in first.json()["rows"]} == {TOWN_1, TOWN_2}
        # Same parameters, another jurisdiction: its own reply, not the county's.
        current = "town_2"
        rows = client.get("/stats/cases", params=params).json()["rows"]
        assert [row["town_code"] for row in rows] == [TOWN_2]
        assert len(builds) == 2
        # Within the period the county's reply is served again, not computed again.
        current = "county"
        assert client.get("/stats/cases", params=params).content == first.content
        assert len(builds) == 2
        csv = client.get("/stats/cases", params={**params, "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
