"""Recurring problems: closed cases of one category that keep coming back within a radius."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gis.errors import UnknownCodeError, ValidationError
from gis.services.recurring import RecurringQuery, find_recurring
from tests.services.analytics_fixtures import ORIGIN, TOWN, WEEK_0, add_case_points, build_lattice

UNTIL = WEEK_0 + timedelta(weeks=8)
# About 11 m per 0.0001° of latitude here: points 0.0002° apart are ~22 m apart.
SPOT = (ORIGIN[0] + 0.0123, ORIGIN[1] + 0.0123)
FAR = (ORIGIN[0] + 0.0400, ORIGIN[1] + 0.0400)


@pytest.fixture
def lattice(session: Session, catalog: int) -> None:
    build_lattice(session, 10, 10)


def _near(point: tuple[float, float], k: int) -> list[tuple[float, float]]:
    return [(point[0] + 0.0002 * (k % 2), point[1] + 0.0002 * (k // 2)) for k in range(k)]


def _weekly(n: int, first_week: int = 0) -> list:
    return [WEEK_0 + timedelta(weeks=first_week + k, hours=10) for k in range(n)]


def test_the_same_problem_closed_four_times_at_one_place_is_one_group(
    session: Session, lattice: None
) -> None:
    ids = add_case_points(session, _near(SPOT, 4), reported=_weekly(4))
    # Noise: the same category far away (alone), another category at the spot (twice), an open
    # case at the spot (not closed: not part of the pattern), an old case (outside the window).
    add_case_points(session, [FAR], reported=_weekly(1))
    add_case_points(
        session, _near(SPOT, 2), reported=_weekly(2), category="food_safety", platform="market"
    )
    add_case_points(session, [SPOT], reported=_weekly(1, 3), status="assigned")
    add_case_points(session, [SPOT], reported=[WEEK_0 - timedelta(weeks=20)])
    result = find_recurring(
        session, RecurringQuery(until=UNTIL, weeks=8, radius_m=50, min_cases=3, town_codes=(TOWN,))
    )
    assert len(result.groups) == 1
    group = result.groups[0]
    assert group.category_code == "noise_nuisance"
    assert group.case_ids == ids and group.cases == 4
    assert group.town_code == TOWN and group.platform == "enforcement"
    assert 10 < group.spread_m < 30
    assert group.first_reported_at < group.last_reported_at


def test_a_smaller_radius_or_a_higher_count_finds_nothing(session: Session, lattice: None) -> None:
    add_case_points(session, _near(SPOT, 4), reported=_weekly(4))
    tight = RecurringQuery(until=UNTIL, radius_m=10, min_cases=3, town_codes=(TOWN,))
    many = RecurringQuery(until=UNTIL, radius_m=50, min_cases=5, town_codes=(TOWN,))
    short = RecurringQuery(until=UNTIL, weeks=2, radius_m=50, min_cases=3, town_codes=(TOWN,))
    assert find_recurring(session, tight).groups == []
    assert find_recurring(session, many).groups == []
    assert find_recurring(session, short).groups == []  # only the last two weeks: two cases


def test_other_towns_are_not_searched(session: Session, lattice: None) -> None:
    add_case_points(session, _near(SPOT, 4), reported=_weekly(4))
    other = RecurringQuery(until=UNTIL, radius_m=50, town_codes=("970100002000",))
    assert find_recurring(session, other).groups == []


@pytest.mark.parametrize(
    ("query", "error", "reason"),
    [
        (RecurringQuery(radius_m=0), ValidationError, "radius_m"),
        (RecurringQuery(min_cases=1), ValidationError, "min_cases"),
        (RecurringQuery(weeks=0), ValidationError, "weeks"),
        (RecurringQuery(category="nope"), UnknownCodeError, "unknown category"),
        (RecurringQuery(until=datetime(1, 1, 2, tzinfo=UTC)), ValidationError, "out of range"),
    ],
)
def test_bad_parameters_are_refused(
    session: Session, catalog: int, query: RecurringQuery, error: type, reason: str
) -> None:
    with pytest.raises(error, match=reason):
        find_recurring(session, query)
