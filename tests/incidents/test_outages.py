"""Ground-station outages: declared and ended by operators, shown to everyone."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.models import Outage
from tests.factories import OperatorUserFactory, SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db
BANNER = "地上局(埼玉県秩父)が"


def test_an_outage_shows_on_every_page_and_the_public_status_page_until_it_ends(client):
    operator = OperatorUserFactory()
    client.force_login(operator)

    client.post(reverse("incidents:declare-outage"), {"cause": "heavy_rain", "message": "豪雨"})
    refused = client.post(reverse("incidents:declare-outage"), {"cause": "disaster"}, follow=True)
    client.logout()
    login_page = client.get(reverse("login"))
    status = client.get(reverse("incidents:status"))
    client.force_login(operator)
    client.post(reverse("incidents:end-outage", args=[Outage.objects.get().pk]))
    client.logout()
    after = client.get(reverse("incidents:status"))

    assert Outage.objects.count() == 1
    assert "すでに障害が発生中です" in refused.text
    assert BANNER in login_page.text and "豪雨" in login_page.text
    assert status.status_code == 200 and BANNER in status.text
    assert BANNER not in after.text
    assert "大雨" in after.text  # now among the past incidents


@pytest.mark.parametrize("factory", [UserFactory, SupportUserFactory])
def test_only_operators_declare_outages(client, factory):
    client.force_login(factory())

    response = client.post(reverse("incidents:declare-outage"), {"cause": "heavy_rain"})

    assert response.status_code == 403
    assert not Outage.objects.exists()


def test_a_request_received_during_an_outage_is_linked_to_it():
    outage = Outage.objects.create(
        cause="heavy_rain", started_at=timezone.now(), declared_by=OperatorUserFactory()
    )
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]

    upgrade_request = request_upgrade(
        customer=user.customer, sites=[line.site], reason="outage", channel="phone",
        now=timezone.now(),
    )  # fmt: skip

    assert upgrade_request.outage == outage


def test_the_outage_page_counts_every_contact_received_during_it(client):
    from desk.services import open_inquiry

    outage = Outage.objects.create(
        cause="disaster", started_at=timezone.now(), declared_by=OperatorUserFactory()
    )
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    request_upgrade(
        customer=user.customer, sites=[line.site], reason="outage", channel="phone",
        now=timezone.now(),
    )  # fmt: skip
    open_inquiry(
        customer=user.customer, subject="繋がらない", body="?", channel="portal", by=user,
        now=timezone.now(),
    )  # fmt: skip
    client.force_login(OperatorUserFactory())

    page = client.get(reverse("admin:incidents_outage_change", args=[outage.pk]))

    # every contact kind links to the outage it arrived in, inquiries too
    assert "高速化申込 1 件" in page.text
    assert "問い合わせ 1 件" in page.text
    assert "機器の破損報告 0 件" in page.text


def test_an_outage_shows_its_start_in_japan_time_on_the_dashboard_and_in_the_admin(client):
    operator = OperatorUserFactory()
    client.force_login(operator)
    started = datetime(2026, 11, 24, 17, 37, tzinfo=ZoneInfo("Asia/Tokyo"))  # 08:37 UTC
    with time_machine.travel(started, tick=False):
        client.post(reverse("incidents:declare-outage"), {"cause": "heavy_rain"})

    dashboard = client.get(reverse("operator-dashboard")).text
    client.force_login(UserFactory(customer=None, is_staff=True, is_superuser=True))
    listed = client.get(reverse("admin:incidents_outage_changelist")).text
    change = re.search(r'href="([^"]*/incidents/outage/\d+/change/)"', listed).group(1)
    title = re.search(r"<h2>(.*?)</h2>", client.get(change).text).group(1)

    assert "大雨 2026-11-24 17:37" in dashboard
    assert "08:37" not in dashboard
    assert title == "大雨 2026-11-24 17:37"
