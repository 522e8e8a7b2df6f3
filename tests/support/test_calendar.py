"""The business calendar: working hours, weekends, holidays, year-end closure."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from support.calendar import holiday_name, is_after_hours, is_working_time

TOKYO = ZoneInfo("Asia/Tokyo")


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("at", "working"),
    [
        (jst(2026, 11, 24, 8, 59), False),  # Tuesday, before 9:00
        (jst(2026, 11, 24, 9, 0), True),  # opens at 9:00 sharp
        (jst(2026, 11, 24, 17, 59), True),
        (jst(2026, 11, 24, 18, 0), False),  # closes at 18:00
        (jst(2026, 11, 28, 11, 0), False),  # Saturday
        (jst(2026, 11, 29, 11, 0), False),  # Sunday
        (jst(2026, 11, 23, 11, 0), False),  # Labour Thanksgiving Day (Monday)
        (jst(2026, 1, 12, 11, 0), False),  # Coming of Age Day
        (jst(2026, 5, 6, 11, 0), False),  # substitute holiday for Constitution Day
        (jst(2026, 9, 22, 11, 0), False),  # "national holiday" between two holidays
        (jst(2026, 12, 28, 11, 0), True),  # the last working day of the year
        (jst(2026, 12, 29, 11, 0), False),  # year-end closure
        (jst(2027, 1, 4, 11, 0), True),  # back to work
        (jst(2027, 1, 1, 11, 0), False),
    ],
)
def test_working_time_in_japan(at, working):
    assert is_working_time(at) is working
    assert is_after_hours(at) is not working


def test_the_boundary_is_japan_time_whatever_the_zone_of_the_timestamp():
    # 00:00 UTC is 9:00 in Tokyo; 08:59 UTC is 17:59, 09:00 UTC is 18:00
    assert is_working_time(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))
    assert is_working_time(datetime(2026, 11, 24, 8, 59, tzinfo=UTC))
    assert not is_working_time(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


def test_hours_and_closure_follow_the_settings(settings):
    settings.SUPPORT_HOURS = ("08:30", "20:00")
    settings.SUPPORT_WORKDAYS = frozenset({1, 2, 3, 4, 5, 6})

    assert is_working_time(jst(2026, 11, 24, 19, 0))
    assert is_working_time(jst(2026, 11, 28, 8, 30))  # Saturday now works
    assert not is_working_time(jst(2026, 11, 29, 12, 0))  # Sunday does not


def test_holidays_have_names():
    assert holiday_name(jst(2026, 5, 6).date()) is not None
    assert holiday_name(jst(2026, 11, 24).date()) is None
