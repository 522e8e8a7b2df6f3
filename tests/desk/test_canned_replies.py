"""Canned replies with placeholders: picked on the inquiry's page, filled when sent."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from desk.models import CannedReply
from desk.services import open_inquiry
from tests.desk.test_inquiries import _change_form_data
from tests.factories import (
    BlanketUpgradeFactory,
    SiteFactory,
    SpeedGrantFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
WORKING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
TEXT = "{customer} 様 #{number}\n拠点: {site}\n確認期限: {deadline}\n{ } はそのまま"


@pytest.fixture
def support(client):
    user = SupportUserFactory()
    client.force_login(user)
    return user


def _pick(client, url: str, title: str) -> str:
    """The option's value in the page's canned-reply select, as the agent picks it."""
    page = client.get(url).text
    select = re.search(r'<select name="canned_reply".*?</select>', page, re.S).group(0)
    return re.search(rf'<option value="(\d+)">{re.escape(title)}</option>', select).group(1)


def test_the_customer_reads_the_canned_reply_with_its_placeholders_filled(
    client, support, django_capture_on_commit_callbacks, send_emails
):
    # given a customer whose blanket upgrade waits for an answer until 3 days later
    customer_user = UserFactory(customer__name="秩父観光株式会社")
    site = SiteFactory(customer=customer_user.customer, name="本社")
    blanket = BlanketUpgradeFactory(
        created_at=WORKING, deadline=datetime(2026, 11, 27, 17, 0, tzinfo=TOKYO)
    )
    SpeedGrantFactory(subscription=SubscriptionFactory(site=site), blanket_upgrade=blanket)
    inquiry = open_inquiry(
        customer=customer_user.customer,
        site=site,
        subject="速度",
        body="まだ遅い",
        channel="portal",
        by=customer_user,
        now=WORKING,
    )
    CannedReply.objects.create(title="期限のご案内", body=TEXT)
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    # when the agent picks the canned reply on the inquiry's page and saves
    picked = _pick(client, url, "期限のご案内")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, _change_form_data(client, inquiry, canned_reply=picked))

    # then the customer's e-mail and portal page show the filled text
    assert response.status_code == 302
    filled = f"秩父観光株式会社 様 #{inquiry.pk}\n拠点: 本社\n確認期限: 2026-11-27 17:00"
    (email,) = send_emails()
    assert filled in email.body
    assert "{" + "customer}" not in email.body and "{ } はそのまま" in email.body
    client.force_login(customer_user)
    portal = client.get(reverse("desk:inquiry", args=[inquiry.pk])).text
    assert "秩父観光株式会社 様" in portal and "2026-11-27 17:00" in portal


def test_site_and_deadline_without_a_site_or_a_pending_upgrade(client, support):
    customer_user = UserFactory()
    SiteFactory(customer=customer_user.customer, name="A支店")
    SiteFactory(customer=customer_user.customer, name="B支店")
    inquiry = open_inquiry(
        customer=customer_user.customer,
        subject="質問",
        body="質問です",
        channel="portal",
        by=customer_user,
        now=WORKING,
    )
    CannedReply.objects.create(title="案内", body="{site} / {deadline}")
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    client.post(url, _change_form_data(client, inquiry, canned_reply=_pick(client, url, "案内")))

    sent = inquiry.messages.get(from_staff=True).body
    assert sent.startswith("A支店, B支店 / ")
    assert "{deadline}" not in sent and "確認" in sent


def test_an_unknown_placeholder_is_a_warning_on_the_form_not_a_reply(client, support):
    customer_user = UserFactory()
    inquiry = open_inquiry(
        customer=customer_user.customer,
        subject="質問",
        body="質問です",
        channel="portal",
        by=customer_user,
        now=WORKING,
    )
    # written before placeholders were checked (the admin refuses it now, see below)
    CannedReply.objects.create(title="古い返信", body="{custmer} 様")
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    response = client.post(
        url,
        _change_form_data(
            client, inquiry, reply="確認します", canned_reply=_pick(client, url, "古い返信")
        ),
    )

    assert response.status_code == 200
    assert "{custmer}" in response.text
    assert response.context["adminform"].form.errors["canned_reply"]
    assert "確認します" in response.text  # the typed text is kept
    assert not inquiry.messages.filter(from_staff=True).exists()


def test_the_canned_reply_admin_names_the_placeholders_and_refuses_unknown_ones(client, support):
    support.is_superuser = True
    support.save()
    add = reverse("admin:desk_cannedreply_add")

    page = client.get(add).text
    refused = client.post(add, {"title": "誤り", "body": "{custmer} 様"})
    accepted = client.post(add, {"title": "正しい", "body": "{customer} 様 {{ JSON }}"})

    assert all(f"{{{name}}}" in page for name in ["customer", "site", "deadline", "number"])
    assert refused.status_code == 200 and "{custmer}" in refused.text
    assert accepted.status_code == 302
    assert list(CannedReply.objects.values_list("title", flat=True)) == ["正しい"]
