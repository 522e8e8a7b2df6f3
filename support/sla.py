"""First-response targets (SLA) for every contact kind.

A contact received in working hours is due within its priority's minutes of *business*
time: the clock stops at night, at weekends, on public holidays and over the year-end
closure (support/calendar.py), so a question at 17:50 on Friday with 60 minutes is due at
9:50 on Monday. A contact received after hours is due in *clock* time: the staff on call
answer it then, whatever the calendar says.
"""

from datetime import datetime, time, timedelta

from django.conf import settings

from support.calendar import TOKYO, is_working_day

# A contact's target is found within this many days of calendar (the year-end closure
# and a long weekend are under ten).
_SEARCH_DAYS = 30


def target_minutes(priority: str) -> int:
    return settings.SUPPORT_FIRST_RESPONSE_MINUTES[priority]


def first_response_due(*, priority: str, after_hours: bool, received_at: datetime) -> datetime:
    minutes = target_minutes(priority)
    if after_hours:
        return received_at + timedelta(minutes=minutes)
    return add_business_minutes(received_at, minutes)


def add_business_minutes(start: datetime, minutes: int) -> datetime:
    """``start`` plus ``minutes`` of the desk's working time (answered in Japan time)."""
    opens, closes = (time.fromisoformat(t) for t in settings.SUPPORT_HOURS)
    at = start.astimezone(TOKYO)
    remaining = timedelta(minutes=minutes)
    for _day in range(_SEARCH_DAYS):
        day_open = datetime.combine(at.date(), opens, tzinfo=TOKYO)
        day_close = datetime.combine(at.date(), closes, tzinfo=TOKYO)
        if is_working_day(at.date()) and at < day_close:
            at = max(at, day_open)
            if at + remaining <= day_close:
                return at + remaining
            remaining -= day_close - at
        at = datetime.combine(at.date() + timedelta(days=1), opens, tzinfo=TOKYO)
    raise ValueError(f"no working time within {_SEARCH_DAYS} days of {start}")


def business_minutes_between(start: datetime, end: datetime) -> int:
    """Working minutes from ``start`` to ``end`` (the age of a contact in desk time)."""
    if end <= start:
        return 0
    opens, closes = (time.fromisoformat(t) for t in settings.SUPPORT_HOURS)
    at, end = start.astimezone(TOKYO), end.astimezone(TOKYO)
    total = timedelta()
    while at < end:
        day_open = datetime.combine(at.date(), opens, tzinfo=TOKYO)
        day_close = datetime.combine(at.date(), closes, tzinfo=TOKYO)
        if is_working_day(at.date()):
            total += max(timedelta(), min(end, day_close) - max(at, day_open))
        at = datetime.combine(at.date() + timedelta(days=1), time(0), tzinfo=TOKYO)
    return int(total.total_seconds() // 60)
