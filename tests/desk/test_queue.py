"""The support desk's one queue across contact kinds."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from desk.services import open_inquiry
from incidents.models import DamageReport
from tests.factories import SiteFactory, SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db
NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_open_contacts_of_every_kind_in_one_list_with_filters(
    client, django_assert_max_num_queries
):
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="phone", now=NIGHT
    )
    DamageReport.objects.create(
        site=SiteFactory(), description="傾いた", channel="phone", received_at=timezone.now()
    )
    open_inquiry(
        customer=user.customer, subject="請求書について", body="宛名", channel="portal", by=user,
        now=timezone.now(),
    )  # fmt: skip
    client.force_login(SupportUserFactory())

    with django_assert_max_num_queries(15):
        everything = client.get(reverse("support-desk"))
    night_only = client.get(reverse("support-desk"), {"after_hours": "1"})
    inquiries = client.get(reverse("support-desk"), {"kind": "inquiry"})

    assert "傾いた" in everything.text and "請求書について" in everything.text
    assert "高速化申込" in everything.text
    assert "傾いた" not in night_only.text and "高速化申込" in night_only.text
    assert "請求書について" in inquiries.text and "傾いた" not in inquiries.text


def test_customers_cannot_open_the_desk(client):
    client.force_login(UserFactory())

    assert client.get(reverse("support-desk")).status_code == 403
