"""Deadlines: clock hours, working time that skips weekends and holidays, and working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gis.errors import ValidationError
from gis.layers.base import LOCAL_TZ
from gis.services.deadlines import calendar_with, due_at

FRIDAY_20H = datetime(2026, 3, 6, 20, 0, tzinfo=LOCAL_TZ)


def test_clock_hours_ignore_the_weekend() -> None:
    assert due_at(FRIDAY_20H, 24, working_hours=False) == FRIDAY_20H + timedelta(hours=24)


def test_working_time_skips_the_weekend() -> None:
    # 4 h left on Friday, Saturday and Sunday skipped, 20 h of Monday.
    assert due_at(FRIDAY_20H, 24, working_hours=True) == datetime(
        2026, 3, 9, 20, 0, tzinfo=LOCAL_TZ
    )


def test_120_working_hours_are_five_working_days() -> None:
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=LOCAL_TZ)
    assert due_at(monday, 120, working_hours=True) == datetime(2026, 3, 9, 10, 0, tzinfo=LOCAL_TZ)


def test_report_on_a_saturday_starts_counting_on_monday() -> None:
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=LOCAL_TZ)
    assert due_at(saturday, 2, working_hours=True) == datetime(2026, 3, 9, 2, 0, tzinfo=LOCAL_TZ)


def test_weekend_is_judged_in_shanghai_not_utc() -> None:
    # Friday 23:00 UTC is already Saturday 07:00 in Shanghai: nothing counts until Monday.
    friday_utc = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    assert due_at(friday_utc, 1, working_hours=True) == datetime(2026, 3, 9, 1, 0, tzinfo=LOCAL_TZ)


def test_holidays_are_skipped_and_make_up_days_count() -> None:
    calendar = calendar_with(holidays=[date(2026, 3, 9)], workdays=[date(2026, 3, 7)])
    # Friday 20:00 + 24 h: Friday 4 h, Saturday (make-up day) 20 h.
    assert due_at(FRIDAY_20H, 24, working_hours=True, calendar=calendar) == datetime(
        2026, 3, 7, 20, 0, tzinfo=LOCAL_TZ
    )
    # Friday 20:00 + 30 h: Saturday full (24 h), Sunday off, Monday holiday, Tuesday 2 h.
    assert due_at(FRIDAY_20H, 30, working_hours=True, calendar=calendar) == datetime(
        2026, 3, 10, 2, 0, tzinfo=LOCAL_TZ
    )


def test_working_days_end_at_close_of_office() -> None:
    calendar = calendar_with()
    assert calendar.add_working_days(FRIDAY_20H, 1) == datetime(2026, 3, 9, 17, 30, tzinfo=LOCAL_TZ)
    assert calendar.add_working_days(FRIDAY_20H, 5) == datetime(
        2026, 3, 13, 17, 30, tzinfo=LOCAL_TZ
    )


@pytest.mark.parametrize("hours", [0, -1])
def test_non_positive_limit_is_refused(hours: float) -> None:
    with pytest.raises(ValidationError):
        due_at(FRIDAY_20H, hours, working_hours=True)
    with pytest.raises(ValidationError):
        due_at(FRIDAY_20H, hours, working_hours=False)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        due_at(datetime(2026, 3, 6, 20, 0), 24, working_hours=False)


def test_a_calendar_without_working_days_fails_clearly() -> None:
    calendar = calendar_with()
    never = type(calendar)(weekdays=frozenset())
    with pytest.raises(ValidationError, match="check the calendar"):
        never.add_working_time(FRIDAY_20H, 1)
