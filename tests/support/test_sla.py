"""First-response targets: business time by the calendar in working hours, clock time
after hours (support/sla.py)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from support.sla import add_business_minutes, business_minutes_between, first_response_due

TOKYO = ZoneInfo("Asia/Tokyo")


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Tuesday morning: within the day.
        (jst(2026, 11, 24, 10, 0), jst(2026, 11, 24, 11, 0)),
        # Ends on the closing minute: still that day.
        (jst(2026, 11, 24, 17, 0), jst(2026, 11, 24, 18, 0)),
        # Friday 17:50: ten minutes that evening, fifty on Monday morning.
        (jst(2026, 11, 27, 17, 50), jst(2026, 11, 30, 9, 50)),
        # Friday before Marine Day (Monday 20 July): Tuesday.
        (jst(2026, 7, 17, 17, 50), jst(2026, 7, 21, 9, 50)),
        # Friday before Silver Week (19-23 September): Thursday.
        (jst(2026, 9, 18, 17, 50), jst(2026, 9, 24, 9, 50)),
        # The last working day of the year: the closure (29 Dec - 3 Jan) is skipped.
        (jst(2026, 12, 28, 17, 50), jst(2027, 1, 4, 9, 50)),
        # Stamped in UTC (08:50 UTC is 17:50 JST): the same target.
        (datetime(2026, 11, 27, 8, 50, tzinfo=UTC), jst(2026, 11, 30, 9, 50)),
    ],
)
def test_a_contact_in_working_hours_is_due_in_business_time(settings, received, due):
    settings.SUPPORT_FIRST_RESPONSE_MINUTES = {"high": 30, "normal": 60}

    assert first_response_due(priority="normal", after_hours=False, received_at=received) == due
    assert add_business_minutes(received, 60) == due


def test_a_60_minute_target_on_friday_evening_is_due_monday_morning(settings):
    settings.SUPPORT_FIRST_RESPONSE_MINUTES = {"high": 60, "normal": 240}

    due = first_response_due(
        priority="high", after_hours=False, received_at=jst(2026, 11, 27, 17, 50)
    )

    assert due == jst(2026, 11, 30, 9, 50)


@pytest.mark.parametrize(
    "received",
    [
        jst(2026, 11, 27, 23, 40),  # Friday night
        jst(2026, 11, 28, 12, 0),  # Saturday noon
        jst(2026, 12, 31, 10, 0),  # in the year-end closure
        jst(2026, 7, 20, 8, 0),  # a public holiday
    ],
)
def test_after_hours_the_target_is_clock_time(settings, received):
    settings.SUPPORT_FIRST_RESPONSE_MINUTES = {"high": 30, "normal": 240}

    due = first_response_due(priority="high", after_hours=True, received_at=received)

    assert (due - received).total_seconds() == 30 * 60


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        (jst(2026, 11, 24, 10, 0), jst(2026, 11, 24, 11, 30), 90),
        (jst(2026, 11, 24, 7, 0), jst(2026, 11, 24, 9, 30), 30),  # before opening
        (jst(2026, 11, 24, 17, 0), jst(2026, 11, 24, 23, 0), 60),  # past closing
        (jst(2026, 11, 27, 17, 0), jst(2026, 11, 30, 10, 0), 120),  # over a weekend
        (jst(2026, 7, 17, 17, 0), jst(2026, 7, 21, 10, 0), 120),  # and Marine Day
        (jst(2026, 12, 28, 17, 0), jst(2027, 1, 4, 9, 30), 90),  # the year-end closure
        (jst(2026, 11, 28, 10, 0), jst(2026, 11, 29, 20, 0), 0),  # all weekend
        (jst(2026, 11, 24, 11, 0), jst(2026, 11, 24, 10, 0), 0),  # end before start
        (jst(2026, 11, 24, 10, 0), jst(2026, 11, 25, 10, 0), 9 * 60),  # a whole day
        (datetime(2026, 11, 24, 1, 0, tzinfo=UTC), jst(2026, 11, 24, 11, 0), 60),
    ],
)
def test_business_minutes_between(start, end, minutes):
    assert business_minutes_between(start, end) == minutes


def test_business_minutes_between_undoes_adding_them():
    start = jst(2026, 12, 25, 16, 20)

    assert business_minutes_between(start, add_business_minutes(start, 500)) == 500
