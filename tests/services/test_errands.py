"""Errand runners (跑小二): the catalog, routing to the grid member, the state table, figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gis.errors import (
    InvalidTransitionError,
    OutsideCoverageError,
    UnknownCodeError,
    ValidationError,
)
from gis.layers.base import LOCAL_TZ
from gis.layers.errands import load_services, read_services
from gis.services.errands import (
    ErrandRequest,
    allowed_errand_actions,
    apply_errand_action,
    check_phone,
    request_errand,
)
from gis.services.stats import errand_figures
from gis.settings import Settings
from tests.conftest import count
from tests.services.workflow_fixtures import G2, G3, TOWN_2, County, build_county

# Friday 6 March 2026, 10:00 in Shanghai.
NOW = datetime(2026, 3, 6, 2, 0, tzinfo=UTC)
REQUIRED = {"homestead_check", "timber_permit", "birth_approval", "elderly_card"}
REQUIRED |= {"accident_certificate"}


@pytest.fixture
def county(session: Session) -> County:
    load_services(session)
    return build_county(session)


def _ask(session: Session, settings: Settings, lon: float, lat: float, **kw: object) -> object:
    fields: dict = {
        "service": "elderly_card",
        "applicant_name": "王大妈",
        "applicant_phone": "13812345678",
    }
    fields.update(kw)
    return request_errand(
        session,
        ErrandRequest(lon=lon, lat=lat, **fields),
        settings=settings,
        now=NOW,  # type: ignore[arg-type]
    )


def test_catalog_has_the_quzhou_services_and_some_a_runner_may_not_do(session: Session) -> None:
    rows = {row["code"]: row for row in read_services()}
    assert set(rows) >= REQUIRED
    assert all(rows[code]["proxy_allowed"] for code in REQUIRED)
    in_person = [row for row in rows.values() if not row["proxy_allowed"]]
    assert in_person and all(row["proxy_note"] for row in in_person)
    assert all(row["materials"] and row["time_limit_days"] > 0 for row in rows.values())
    assert load_services(session) == len(rows)
    assert load_services(session) == len(rows)  # idempotent
    assert count(session, "services") == len(rows)


def test_catalog_entry_without_a_reason_for_no_proxy_is_refused(tmp_path: Path) -> None:
    bad = {"services": [{**read_services()[0], "proxy_allowed": False, "proxy_note": None}]}
    path = tmp_path / "services.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ValidationError, match="proxy_note"):
        read_services(path)


def test_errand_goes_to_the_member_of_the_home_grid(
    session: Session, county: County, settings: Settings
) -> None:
    errand = _ask(session, settings, 111.015, 31.005)
    assert errand.grid_code == G2
    assert errand.member_id == county.members[G2]
    assert errand.status == "requested"
    assert errand.location_quality == "inside"
    # Elderly card: 5 working days from Friday → the next Friday, 17:30 in Shanghai.
    assert errand.due_at == datetime(2026, 3, 13, 17, 30, tzinfo=LOCAL_TZ)


def test_home_outside_every_grid_goes_to_the_town_queue(
    session: Session, county: County, settings: Settings
) -> None:
    errand = _ask(session, settings, 111.038, 31.005)
    assert (errand.location_quality, errand.town_code, errand.member_id) == (
        "outside",
        TOWN_2,
        None,
    )
    assert count(session, "errand_events") == 1


def test_home_far_from_every_town_is_refused(
    session: Session, county: County, settings: Settings
) -> None:
    with pytest.raises(OutsideCoverageError):
        _ask(session, settings, 60.0, 50.0)
    assert count(session, "errands") == 0


def test_service_needing_the_applicant_in_person_is_refused(
    session: Session, county: County, settings: Settings
) -> None:
    with pytest.raises(ValidationError, match="本人"):
        _ask(session, settings, 111.015, 31.005, service="id_card_renewal")
    with pytest.raises(UnknownCodeError, match="known services"):
        _ask(session, settings, 111.015, 31.005, service="moon_landing")
    assert count(session, "errands") == 0


@pytest.mark.parametrize("phone", ["12345", "138-1234-567", "phone", "23812345678"])
def test_bad_phone_is_refused(phone: str) -> None:
    with pytest.raises(ValidationError, match="phone"):
        check_phone(phone)


@pytest.mark.parametrize("phone", ["13812345678", "+86 13812345678", "0570-1234567"])
def test_mainland_numbers_are_accepted(phone: str) -> None:
    assert check_phone(phone).replace("+", "").isdigit()


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        ("requested", ["assign", "collect", "cancel"]),
        ("collecting", ["assign", "submit", "cancel"]),
        ("submitted", ["approve", "reject"]),
        ("approved", ["deliver"]),
        ("rejected", ["deliver"]),
        ("delivered", []),
        ("cancelled", []),
    ],
)
def test_errand_table_matches_the_issue(status: str, allowed: list[str]) -> None:
    assert allowed_errand_actions(status) == allowed


def _walk(session: Session, errand_id: int, steps: list[tuple[float, str, dict]]) -> None:
    for hours, action, extra in steps:
        apply_errand_action(
            session, errand_id, action, actor="网格员", now=NOW + timedelta(hours=hours), **extra
        )


def test_errand_runs_to_delivery_with_zero_trips(
    session: Session, county: County, settings: Settings
) -> None:
    errand = _ask(session, settings, 111.015, 31.005)
    _walk(session, errand.id, [(1, "collect", {}), (5, "submit", {}), (30, "approve", {})])
    with pytest.raises(ValidationError, match="applicant_trips"):
        _walk(session, errand.id, [(50, "deliver", {})])
    _walk(session, errand.id, [(50, "deliver", {"applicant_trips": 0})])
    assert (errand.status, errand.applicant_trips) == ("delivered", 0)
    assert errand.delivered_at == NOW + timedelta(hours=50)
    assert count(session, "errand_events") == 5


def test_errand_actions_out_of_order_are_409(
    session: Session, county: County, settings: Settings
) -> None:
    errand = _ask(session, settings, 111.015, 31.005)
    with pytest.raises(InvalidTransitionError, match="allowed actions: assign, collect, cancel"):
        _walk(session, errand.id, [(1, "deliver", {"applicant_trips": 0})])
    with pytest.raises(ValidationError, match="reason"):
        _walk(session, errand.id, [(1, "cancel", {})])
    with pytest.raises(ValidationError, match="unknown"):
        _walk(session, errand.id, [(1, "teleport", {})])
    assert errand.status == "requested"


def test_errand_figures_count_zero_trips_and_time_to_delivery(
    session: Session, county: County, settings: Settings
) -> None:
    zero = _ask(session, settings, 111.015, 31.005)
    _walk(
        session,
        zero.id,
        [
            (1, "collect", {}),
            (2, "submit", {}),
            (20, "approve", {}),
            (24, "deliver", {"applicant_trips": 0}),
        ],
    )
    one_trip = _ask(session, settings, 111.03, 31.005, service="homestead_check")
    _walk(
        session,
        one_trip.id,
        [
            (1, "collect", {}),
            (2, "submit", {}),
            (40, "reject", {"note": "超面积"}),
            (48, "deliver", {"applicant_trips": 1}),
        ],
    )
    cancelled = _ask(session, settings, 111.015, 31.005)
    _walk(session, cancelled.id, [(1, "cancel", {"note": "已自行办理"})])
    _ask(session, settings, 111.038, 31.005)  # waits in the town queue
    window = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(days=1)}
    [total] = errand_figures(session, **window)
    assert total == {
        "requested": 4,
        "cancelled": 1,
        "in_queue": 1,
        "approved": 1,
        "rejected": 1,
        "delivered": 2,
        "zero_trip": 1,
        "zero_trip_share": 0.5,
        "delivered_on_time": 2,
        "on_time_rate": 1.0,
        "median_hours_to_delivery": 36.0,
        "p90_hours_to_delivery": 45.6,  # 24 + 0.9 × 24
    }
    by_grid = {
        row["grid_code"]: row for row in errand_figures(session, group_by=("grid",), **window)
    }
    assert by_grid[G3]["zero_trip_share"] == 0.0
    assert by_grid[G2]["requested"] == 2


def test_queued_errand_is_assigned_to_a_member(
    session: Session, county: County, settings: Settings
) -> None:
    errand = _ask(session, settings, 111.038, 31.005)
    with pytest.raises(ValidationError, match="member_id"):
        _walk(session, errand.id, [(1, "assign", {})])
    _walk(session, errand.id, [(1, "assign", {"member_id": county.members[G3]})])
    assert (errand.status, errand.member_id) == ("requested", county.members[G3])
    with pytest.raises(ValidationError, match="already"):
        _walk(session, errand.id, [(2, "assign", {"member_id": county.members[G3]})])
