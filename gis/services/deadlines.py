"""Time limits (限时办结): clock hours, or working time that skips weekends and holidays.

A category's ``time_limit_hours`` counts clock hours unless its ``working_hours`` flag is set; then
the clock runs only on working days (Asia/Shanghai, Monday to Friday, minus the public holidays and
plus the make-up working days 调休 given to the calendar), around the clock on those days. So
120 working hours are five working days, which is how the catalog's limits are meant (a "5 个工作日"
approval) and how intake computes deadlines. Office hours (08:30–17:30) are not used for category
limits: 120 office hours would be 13⅓ days. Errand services count whole working days: the deadline
is the close of office (17:30) on the N-th working day after the request day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gis.errors import ValidationError
from gis.layers.base import LOCAL_TZ

# More than ten years of working days: a bound that only a corrupt calendar could reach.
_MAX_DAYS = 4_000


@dataclass(frozen=True)
class WorkingCalendar:
    """Office hours of the command room and its units, in local time."""

    start: time = time(8, 30)
    end: time = time(17, 30)
    tz: ZoneInfo = LOCAL_TZ
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # weekend make-up days (调休)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationError("a working day must end after it starts")

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (weekday, not a holiday, or a make-up day)."""
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.start, tzinfo=self.tz),
            datetime.combine(day, self.end, tzinfo=self.tz),
        )

    def add_working_time(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` after ``start`` counting only the time of working days."""
        _check_aware(start)
        if hours <= 0:
            raise ValidationError("a time limit must be positive")
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.tz)
        for _ in range(_MAX_DAYS):
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.tz)
            if self.is_working_day(local.date()):
                if remaining <= midnight - local:
                    return (local + remaining).astimezone(start.tzinfo)
                remaining -= midnight - local
            local = midnight
        raise ValidationError(f"no working time within {_MAX_DAYS} days: check the calendar")

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after the day of ``start``."""
        _check_aware(start)
        if days <= 0:
            raise ValidationError("a time limit in working days must be positive")
        day = start.astimezone(self.tz).date()
        counted = 0
        for _ in range(_MAX_DAYS):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted == days:
                    return self._window(day)[1].astimezone(start.tzinfo)
        raise ValidationError(f"no working day within {_MAX_DAYS} days: check the calendar")


DEFAULT_CALENDAR = WorkingCalendar()


def calendar_with(holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkingCalendar:
    """The default office hours with a year's public holidays and make-up working days."""
    return WorkingCalendar(holidays=frozenset(holidays), workdays=frozenset(workdays))


def due_at(
    start: datetime,
    time_limit_hours: float,
    *,
    working_hours: bool,
    calendar: WorkingCalendar = DEFAULT_CALENDAR,
) -> datetime:
    """The deadline of a case received at ``start`` under its category's time limit."""
    _check_aware(start)
    if working_hours:
        return calendar.add_working_time(start, time_limit_hours)
    if time_limit_hours <= 0:
        raise ValidationError("a time limit must be positive")
    return start + timedelta(hours=time_limit_hours)


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{moment.isoformat()} has no time zone; send e.g. +08:00 or Z")
