"""The support desk's business calendar (FAQ Q3): when a contact counts as after hours.

Working hours are weekdays, 9:00-18:00 Japan time by default, except Japanese public
holidays (substitute and "national" holidays included, from the ``holidays`` library)
and the year-end closure (29 December to 3 January by default). Outside them phone calls
are forwarded automatically and the on-call staff are told at once.
"""

from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.utils.translation import get_language

TOKYO = ZoneInfo("Asia/Tokyo")


@lru_cache(maxsize=32)
def _japanese_holidays(year: int, language: str) -> holidays.HolidayBase:
    return holidays.Japan(years=year, language=language)


def holiday_name(day: date) -> str | None:
    """The public holiday's name in the active language (元日 / New Year's Day), or None."""
    # The library names holidays in "ja" and "en_US"; any other language reads English.
    language = "ja" if (get_language() or settings.LANGUAGE_CODE).startswith("ja") else "en_US"
    return _japanese_holidays(day.year, language).get(day)


def in_year_end_closure(day: date) -> bool:
    (start_month, start_day), (end_month, end_day) = settings.SUPPORT_YEAR_END_CLOSURE
    md = (day.month, day.day)
    # The closure wraps over New Year: 29 Dec … 31 Dec, then 1 Jan … 3 Jan.
    return md >= (start_month, start_day) or md <= (end_month, end_day)


def is_working_day(day: date) -> bool:
    return (
        day.isoweekday() in settings.SUPPORT_WORKDAYS
        and holiday_name(day) is None
        and not in_year_end_closure(day)
    )


def is_working_time(at: datetime) -> bool:
    """Whether ``at`` (any time zone) falls in the desk's working hours in Japan."""
    local = at.astimezone(TOKYO)
    opens, closes = (time.fromisoformat(t) for t in settings.SUPPORT_HOURS)
    return is_working_day(local.date()) and opens <= local.time() < closes


def is_after_hours(at: datetime) -> bool:
    return not is_working_time(at)
