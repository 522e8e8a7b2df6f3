"""The pricing rule holds over many dates (property-based, hypothesis)."""

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from subscriptions.pricing import Period, add_months, consumption_tax, prorated_price

days_2016_2030 = st.dates(min_value=date(2016, 1, 1), max_value=date(2030, 12, 31))
annual = st.integers(min_value=0, max_value=10_000_000)


@given(start=days_2016_2030, price=annual)
def test_a_full_year_costs_exactly_the_annual_price(start, price):
    year = Period(start, add_months(start, 12) - timedelta(days=1))

    assert year.months_and_days == (12, 0)
    assert prorated_price(price, year) == price


@given(start=days_2016_2030, length=st.integers(0, 3000), extra=st.integers(1, 400), price=annual)
def test_a_longer_period_never_costs_less(start, length, extra, price):
    shorter = Period(start, start + timedelta(days=length))
    longer = Period(start, start + timedelta(days=length + extra))

    assert prorated_price(price, longer) >= prorated_price(price, shorter)


@given(start=days_2016_2030, length=st.integers(0, 3000), price=annual)
def test_price_is_whole_yen_and_never_above_the_exact_day_rate(start, length, price):
    period = Period(start, start + timedelta(days=length))
    months, days = period.months_and_days

    amount = prorated_price(price, period)
    assert isinstance(amount, int)
    assert 0 <= days <= 30
    exact = price * (Fraction(months, 12) + Fraction(days, 365))
    assert amount <= exact < amount + 1  # rounded down, once
    # whole months and days add up to the period
    assert add_months(start, months) + timedelta(days=days) == period.last_day + timedelta(days=1)


def test_the_readme_example_expired_2019_04_01_extended_to_2021_12_31():
    period = Period(date(2019, 4, 1), date(2021, 12, 31))

    assert period.months_and_days == (33, 0)
    assert prorated_price(100_000, period) == 275_000
    assert consumption_tax(275_000, 10) == 27_500


def test_months_and_days_count_from_the_first_day():
    assert Period(date(2020, 1, 15), date(2020, 3, 20)).months_and_days == (2, 6)
    # the month after 31 January starts on 28 February (the shorter month's last day)
    assert Period(date(2021, 1, 31), date(2021, 2, 26)).months_and_days == (0, 27)
    assert Period(date(2021, 1, 31), date(2021, 2, 27)).months_and_days == (1, 0)
    # a day at ¥100,000 a year: 100,000 / 365 = 273.97… → ¥273
    assert prorated_price(100_000, Period(date(2021, 5, 1), date(2021, 5, 1))) == 273


@given(taxable=st.integers(0, 10**9), rate=st.sampled_from([8, 10]))
def test_tax_is_rounded_down_once(taxable, rate):
    tax = consumption_tax(taxable, rate)

    assert tax <= taxable * rate / 100 < tax + 1
