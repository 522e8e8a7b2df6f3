"""The support desk's page of one customer's whole story."""

import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from desk.models import Inquiry, InquiryMessage
from desk.services import open_inquiry
from incidents.models import CheckIn, DamageReport, FieldVisit
from subscriptions.models import Invoice
from tests.factories import (
    BlanketUpgradeFactory,
    CustomerFactory,
    SpeedGrantFactory,
    SupportUserFactory,
    UpgradeRequestFactory,
    UserFactory,
)
from tests.upgrades.conftest import make_lines
from upgrades.models import SpeedGrant

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 23, 5, tzinfo=TOKYO)


def hrefs(html: str, text: str) -> list[str]:
    """The targets of the links whose text contains ``text``."""
    return [
        unescape(href)
        for href, inner in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
        if text in unescape(inner)
    ]


def changelist_rows(html: str) -> int:
    """How many rows an admin changelist shows."""
    table = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', html, re.S)
    return table.group(1).count("<tr") if table else 0


def make_invoice(*, line, number: int) -> Invoice:
    return Invoice.objects.create(
        number=number,
        status=Invoice.Status.ISSUED,
        customer=line.site.customer,
        subscription=line,
        issued_on=date(2026, 4, 1),
        due_on=date(2026, 4, 30),
        issuer_name="衛星通信株式会社",
        issuer_registration_number="T1234567890123",
        subtotal_yen=100_000,
        tax_rate_percent=10,
        tax_yen=10_000,
        total_yen=110_000,
        created_at=timezone.now(),
    )


def story(customer, *, lines: int, each: int, number: int = 1):
    """A customer with ``lines`` sites of one line each and ``each`` of every other kind."""
    sites_lines = make_lines(lines, customer=customer)
    UserFactory.create_batch(each, customer=customer)
    blanket = BlanketUpgradeFactory(created_at=NIGHT, deadline=NIGHT + timedelta(days=3))
    for line in sites_lines[:each]:
        SpeedGrantFactory(subscription=line, blanket_upgrade=blanket, starts_at=NIGHT)
    for i in range(each):
        line = sites_lines[i % lines]
        UpgradeRequestFactory(customer=customer, sites=[line.site], received_at=NIGHT)
        report = DamageReport.objects.create(
            site=line.site, description=f"アンテナ傾き {i}", channel="phone", received_at=NIGHT
        )
        FieldVisit.objects.create(report=report, technician=f"技術者{i}")
        inquiry = Inquiry.objects.create(
            customer=customer, subject=f"質問 {i}", channel="portal", received_at=NIGHT
        )
        InquiryMessage.objects.create(inquiry=inquiry, body="本文", created_at=NIGHT)
        make_invoice(line=line, number=number * 1000 + i)
        CheckIn.objects.create(site=line.site, checked_at=NIGHT, web_ok=True, source="portal")
    return sites_lines


def test_the_inquiry_admin_links_to_the_customers_whole_story_in_japan_time(client):
    # given: a customer with something of every kind
    customer = CustomerFactory(name="秩父市役所", phone="0494-22-1111")
    user = UserFactory(customer=customer, full_name="山田 花子")
    line = make_lines(1, customer=customer)[0]
    blanket = BlanketUpgradeFactory(created_at=NIGHT, deadline=NIGHT + timedelta(days=3))
    SpeedGrantFactory(
        subscription=line,
        blanket_upgrade=blanket,
        state=SpeedGrant.State.ACTIVE,
        starts_at=NIGHT,
        responded_at=NIGHT + timedelta(hours=1),
        response_channel="phone",
    )
    UpgradeRequestFactory(customer=customer, sites=[line.site], received_at=NIGHT)
    report = DamageReport.objects.create(
        site=line.site, description="アンテナが傾いた", channel="phone", received_at=NIGHT
    )
    FieldVisit.objects.create(report=report, technician="佐藤")
    inquiry = open_inquiry(
        customer=customer, subject="請求書の宛名", body="宛名を変えたい", channel="portal",
        by=user, now=NIGHT,
    )  # fmt: skip
    make_invoice(line=line, number=4242)
    CheckIn.objects.create(site=line.site, checked_at=NIGHT, web_ok=True, source="portal")
    client.force_login(SupportUserFactory())

    # when: the agent follows the link on the inquiry's admin page
    admin_page = client.get(f"/admin/desk/inquiry/{inquiry.pk}/change/")
    (link,) = hrefs(admin_page.text, "顧客の経緯")
    page = client.get(link)

    # then
    assert page.status_code == 200
    text = page.text
    for expected in [
        "秩父市役所",
        customer.code,
        "0494-22-1111",
        "山田 花子",
        user.email,
        line.contract_number,
        "256 kbit/s",
        blanket.disaster.title,
        "アンテナが傾いた",
        "佐藤",
        "請求書の宛名",
        "INV-004242",
        "高速化申込",  # a request's number link text ("#n" + reason) in Japanese
    ]:
        assert expected in text, expected
    # 23:05 in Tokyo (14:05 UTC), the answer an hour later, the deadline three days on
    assert "2026-11-24 23:05" in text and "2026-11-25 00:05" in text
    assert "2026-11-27 23:05" in text
    assert "14:05" not in text


def test_the_other_admin_pages_link_to_the_same_page(client):
    customer = CustomerFactory()
    line = make_lines(1, customer=customer)[0]
    request = UpgradeRequestFactory(customer=customer, sites=[line.site], received_at=NIGHT)
    report = DamageReport.objects.create(
        site=line.site, description="傾き", channel="phone", received_at=NIGHT
    )
    client.force_login(SupportUserFactory())

    for admin_url in [
        f"/admin/subscriptions/customer/{customer.pk}/change/",
        f"/admin/upgrades/upgraderequest/{request.pk}/change/",
        f"/admin/incidents/damagereport/{report.pk}/change/",
    ]:
        (link,) = hrefs(client.get(admin_url).text, "顧客の経緯")
        page = client.get(link)
        assert page.status_code == 200, admin_url
        assert customer.name in page.text


def test_one_query_budget_whatever_the_rows_and_long_lists_say_how_many_more(
    client, django_assert_max_num_queries
):
    small, big = CustomerFactory(), CustomerFactory()
    story(small, lines=2, each=2, number=1)
    story(big, lines=40, each=30, number=2)
    other = CustomerFactory()
    story(other, lines=1, each=1, number=3)
    client.force_login(SupportUserFactory())
    client.get(f"/desk/customers/{small.pk}/")  # the session and the like, once

    with CaptureQueriesContext(connection) as small_queries:
        client.get(f"/desk/customers/{small.pk}/")
    with django_assert_max_num_queries(len(small_queries)):
        page = client.get(f"/desk/customers/{big.pk}/")

    # then: every long list says what it leaves out and links to all of them
    text = page.text
    assert "15 件は表示していません" in text  # 40 sites, 25 shown
    assert "10 件は表示していません" in text  # 30 of each, 20 shown
    assert "表示していません" not in client.get(f"/desk/customers/{small.pk}/").text
    all_links = {
        href: int(re.search(r"(\d+) 件すべて", inner).group(1))
        for href, inner in re.findall(r'<a href="([^"]+)">([^<]*管理画面[^<]*)</a>', text)
    }
    assert {unescape(href).split("?")[0] for href in all_links} >= {
        "/admin/accounts/user/",
        "/admin/subscriptions/site/",
        "/admin/upgrades/speedgrant/",
        "/admin/upgrades/upgraderequest/",
        "/admin/incidents/damagereport/",
        "/admin/desk/inquiry/",
        "/admin/subscriptions/invoice/",
    }
    for href, total in all_links.items():
        changelist = client.get(unescape(href))
        # the admin's list holds this customer's rows, all of them and no one else's
        assert changelist.status_code == 200, href
        assert changelist_rows(changelist.text) == total, href
        assert other.name not in changelist.text, href


def test_staff_only_and_unknown_customers_are_not_found(client):
    customer_user = UserFactory()
    url = f"/desk/customers/{customer_user.customer_id}/"

    anonymous = client.get(url)
    client.force_login(customer_user)
    as_customer = client.get(url)
    client.force_login(SupportUserFactory())
    unknown = client.get("/desk/customers/999999/")

    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert as_customer.status_code == 403
    assert unknown.status_code == 404
