"""Readiness: monthly reminders, re-checks after a disaster, the operators' chart."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from incidents.models import CheckIn, ReadinessReminder
from incidents.readiness import (
    ask_to_recheck_after_disaster,
    readiness_by_prefecture,
    remind_unchecked_sites,
)
from tests.factories import DisasterFactory, OperatorUserFactory, UserFactory
from tests.upgrades.conftest import make_lines

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 10, tzinfo=ZoneInfo("Asia/Tokyo"))


def check(site, days_ago):
    CheckIn.objects.create(
        site=site, checked_at=NOW - timedelta(days=days_ago), web_ok=True, source="portal"
    )


def test_customers_are_asked_monthly_once_about_sites_not_checked_lately(send_emails):
    user = UserFactory(email="tanaka@town.example.jp")
    fresh, stale, never = (line.site for line in make_lines(3, customer=user.customer))
    check(fresh, days_ago=10)
    check(stale, days_ago=200)

    first = remind_unchecked_sites(now=NOW)
    again = remind_unchecked_sites(now=NOW + timedelta(days=3))
    next_month = remind_unchecked_sites(now=NOW + timedelta(days=31))

    assert (first, again, next_month) == (1, 0, 1)
    body = send_emails()[0].body
    assert stale.name in body and never.name in body and fresh.name not in body
    assert "tanaka@town.example.jp" in send_emails()[0].to


def test_after_a_disaster_the_sites_in_its_scope_are_asked_to_recheck_once(send_emails):
    saitama = make_lines(2, prefecture="11")
    make_lines(1, prefecture="39")
    UserFactory(customer=saitama[0].site.customer)
    disaster = DisasterFactory(nationwide=False, prefectures=["11"])

    sent = ask_to_recheck_after_disaster(disaster_id=disaster.pk, now=NOW)
    again = ask_to_recheck_after_disaster(disaster_id=disaster.pk, now=NOW)

    assert (sent, again) == (1, 0)
    assert ReadinessReminder.objects.get().reason == "after_disaster"
    assert disaster.title in send_emails()[0].body


def test_the_operator_dashboard_charts_readiness_by_prefecture(client):
    saitama = make_lines(4, prefecture="11")
    make_lines(1, prefecture="39")
    check(saitama[0].site, days_ago=1)
    check(saitama[1].site, days_ago=1)
    client.force_login(OperatorUserFactory())

    rows = {row.code: (row.checked, row.sites) for row in readiness_by_prefecture(now=NOW)}
    page = client.get(reverse("operator-dashboard"))

    assert rows == {"11": (2, 4), "39": (0, 1)}
    assert "埼玉県" in page.text and "<svg" in page.text


def test_a_day_after_a_disaster_ends_beat_asks_its_sites_to_recheck_once(send_emails):
    from incidents.readiness import disasters_due_for_recheck
    from tests.factories import OperatorUserFactory
    from upgrades.services.blanket import declare_disaster, end_disaster

    saitama = make_lines(2, prefecture="11")
    UserFactory(customer=saitama[0].site.customer)
    operator = OperatorUserFactory()
    blanket = declare_disaster(
        operator=operator, title="秩父豪雨", nationwide=False, prefectures=["11"],
        idempotency_key="k", now=NOW,
    )  # fmt: skip
    ended = NOW + timedelta(days=1)
    end_disaster(disaster=blanket.disaster, operator=operator, now=ended)

    # the "disaster ended" e-mails go first; the equipment check a day later, once
    assert disasters_due_for_recheck(now=ended + timedelta(hours=23)) == []
    due = disasters_due_for_recheck(now=ended + timedelta(hours=25))
    assert due == [blanket.disaster_id]
    ask_to_recheck_after_disaster(disaster_id=due[0], now=ended + timedelta(hours=25))
    assert disasters_due_for_recheck(now=ended + timedelta(hours=26)) == []
    (sent,) = [m for m in send_emails() if "秩父豪雨" in m.body]
    assert saitama[0].site.name in sent.body
