"""An agent's night, in a real browser: a customer writes at 3 a.m. on a Sunday, the
on-call agent is alerted, opens the queue, answers with a canned reply, merges the
customer's second message about the same matter, and the customer reads one
conversation."""

import re
from datetime import datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Browser, expect

from desk.models import CannedReply, Inquiry
from support.calendar import TOKYO
from support.models import AfterHoursAlert, OnCallShift, OutboundEmail
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from tests.upgrades.test_browser import enrol_second_factor, log_in


def next_sunday_night() -> datetime:
    """3 a.m. next Sunday in Japan: after hours whatever the calendar, and in the future,
    so the browser keeps the cookies the travelled server sets."""
    today = timezone.localdate()
    sunday = today + timedelta(days=(6 - today.weekday()) % 7 or 7)
    return datetime.combine(sunday, time(3, 0), tzinfo=TOKYO)


def ask(page, url, subject, question):
    page.goto(f"{url}/")
    page.get_by_role("link", name="お問い合わせ").first.click()
    page.get_by_label("件名").fill(subject)
    page.get_by_label("お問い合わせ内容").fill(question)
    page.get_by_role("button", name="問い合わせる").click()
    expect(page.get_by_role("heading", name=subject)).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_agents_night(live_server, browser: Browser):
    night = next_sunday_night()
    customer = UserFactory(email="somu@town.example.jp", customer__name="秩父町役場")
    make_lines(1, customer=customer.customer)
    agent = SupportUserFactory(email="yakin@bcp.example.jp")
    OnCallShift.objects.create(
        staff=agent, starts_at=night - timedelta(hours=3), ends_at=night + timedelta(hours=6)
    )
    CannedReply.objects.create(
        title="回線確認のお願い",
        body="{customer} ご担当者様\nアンテナの向きをご確認ください。(#{number})",
    )
    customer_page = browser.new_page(locale="ja-JP")
    agent_page = browser.new_page(locale="ja-JP")

    with time_machine.travel(night, tick=True):
        # 3 a.m.: the customer asks, then writes again about the same thing
        log_in(customer_page, live_server.url, "somu@town.example.jp")
        ask(customer_page, live_server.url, "回線がつながりません", "庁舎の回線が止まりました。")
        ask(customer_page, live_server.url, "至急: 回線", "まだつながりません。")
        first, second = Inquiry.objects.order_by("pk")

        # the agent on call is alerted of each, by e-mail through the outbox
        alerts = AfterHoursAlert.objects.filter(contact_kind="inquiry")
        assert sorted(alerts.values_list("contact_id", flat=True)) == [
            str(first.pk),
            str(second.pk),
        ]
        assert all(alert.recipients == ["yakin@bcp.example.jp"] for alert in alerts)
        assert OutboundEmail.objects.filter(key__startswith="after-hours:").count() == 2

        # the agent opens the queue from the admin: both are there, urgent
        log_in(agent_page, live_server.url, "yakin@bcp.example.jp")
        enrol_second_factor(agent_page)
        agent_page.goto(f"{live_server.url}/admin/")
        agent_page.get_by_role("link", name="サポート対応一覧").click()
        rows = agent_page.locator("#queue-rows tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("回線がつながりません")  # high first, oldest first

        # picks the first and answers with the canned reply
        agent_page.get_by_role("link", name="回線がつながりません").click()
        agent_page.get_by_label("定型文").select_option(label="回線確認のお願い")
        agent_page.get_by_role("button", name="保存", exact=True).click()
        expect(agent_page.locator(".messagelist")).to_contain_text("返信")

        # and merges the second into it from the inquiries' list
        agent_page.goto(f"{live_server.url}/admin/desk/inquiry/")
        agent_page.locator(f'input[name="_selected_action"][value="{second.pk}"]').check()
        agent_page.locator('select[name="action"]').select_option(label="別の受付にまとめる…")
        agent_page.get_by_role("button", name="実行").click()
        agent_page.get_by_label("まとめ先").select_option(value=str(first.pk))
        agent_page.get_by_role("button", name="まとめる").click()
        expect(agent_page.locator(".messagelist")).to_be_visible()

        # the customer reads one conversation: both messages and the answer
        customer_page.goto(f"{live_server.url}/inquiries/{second.pk}/")
        expect(customer_page.get_by_text("まとめました")).to_be_visible()
        customer_page.get_by_role("link", name=f"#{first.pk}").click()
        conversation = customer_page.locator("main")
        expect(conversation).to_contain_text("庁舎の回線が止まりました。")
        expect(conversation).to_contain_text("まだつながりません。")
        expect(conversation).to_contain_text("秩父町役場 ご担当者様")
        expect(conversation).to_contain_text(f"(#{first.pk})")

    # told once about the merge, and the reply: nothing about the second otherwise
    keys = sorted(
        re.sub(r"\d+", "N", email.key)
        for email in OutboundEmail.objects.all()
        if "somu@town.example.jp" in email.to
    )
    assert keys == ["inquiry-reply:N", "merged:inquiry:N"]
    second.refresh_from_db()
    assert (second.status, second.merged_into_id) == ("closed", first.pk)
