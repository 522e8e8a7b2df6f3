"""How an extension is priced. One rule, exact in integer yen.

**Pro-rating.** A period runs from its first day to its last day, both included. It is
counted as whole months from the first day (the same day of the month, or the month's
last day when that month is shorter), then the remaining days. The price of a line is

    annual price * (months / 12 + days / 365), rounded down to the yen, once.

So a full year (12 months, 0 days) costs exactly the annual price; every extra day adds
at most 1/365 of it and a month's worth of days (at most 30 left over) never outweighs the
1/12 of the whole month they become, so a longer period never costs less.

**Tax.** Consumption tax is computed once per invoice and per tax rate, on the sum of the
lines at that rate, and rounded down (Japan's qualified-invoice rules allow one rounding
per rate per invoice).

Worked example: a line that expired 2019-04-01 and is extended to 2021-12-31 at ¥100,000 a
year runs 2019-04-01 … 2021-12-31 = 33 months and 0 days → ¥275,000; tax 10% → ¥27,500;
total ¥302,500.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date

    def __post_init__(self):
        if self.last_day < self.first_day:
            raise ValueError("a period ends on or after its first day")

    @property
    def months_and_days(self) -> tuple[int, int]:
        end = self.last_day + timedelta(days=1)  # the first day after the period
        months = 0
        while add_months(self.first_day, months + 1) <= end:
            months += 1
        return months, (end - add_months(self.first_day, months)).days


def prorated_price(annual_yen: int, period: Period) -> int:
    """The price of ``period`` at ``annual_yen`` a year, by the rule above."""
    months, days = period.months_and_days
    return int(annual_yen * (Fraction(months, 12) + Fraction(days, 365)))


def consumption_tax(taxable_yen: int, rate_percent: int) -> int:
    """Tax on the sum of one invoice's lines at one rate, rounded down once."""
    return taxable_yen * rate_percent // 100
