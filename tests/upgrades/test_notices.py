"""What customers are told: one e-mail per organisation per event, true when it is sent."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from support.channels import Channel
from support.models import OutboundEmail
from support.outbox import send_queued_emails
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import NOW, follow_end_link, form_data, make_lines, post_forms
from upgrades.models import CustomerNotice
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    end_blanket_grants,
    end_disaster,
    respond_to_grants,
    revert_expired_grants,
)
from upgrades.services.notices import queue_deadline_reminders, queue_stranded_notices
from upgrades.services.requests import (
    approve_upgrade_request,
    reject_upgrade_request,
    request_upgrade,
)

pytestmark = pytest.mark.django_db


def declare(operator, *, message="", message_en="", key="k", prefectures=(), now=NOW):
    blanket = declare_disaster(
        operator=operator,
        title="令和8年 関東大震災",
        nationwide=not prefectures,
        prefectures=list(prefectures),
        message=message,
        message_en=message_en,
        idempotency_key=key,
        now=now,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now, chunk_size=300)
    blanket.refresh_from_db()
    return blanket


def body_of(received: dict) -> str:
    return received["message"].get_payload(decode=True).decode()


def approved_request_for(line, user):
    upgrade_request = request_upgrade(
        customer=user.customer,
        sites=[line.site],
        reason="disaster",
        channel=Channel.PORTAL,
        requested_by=user,
        now=NOW,
    )
    approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)
    return upgrade_request


def test_a_2000_line_customer_gets_one_e_mail_per_event(operator, smtp_server, settings):
    # given a customer with 2,000 lines and two users, and a small one
    settings.BLANKET_REMINDER_HOURS = 24
    big = UserFactory(email="soumu@city.example.jp")
    UserFactory(customer=big.customer, email="bousai@city.example.jp")
    lines = make_lines(2000, customer=big.customer)
    small = UserFactory(email="owner@shop.example.jp")
    make_lines(1, customer=small.customer)

    # when a disaster is declared, the deadline nears, passes, and the disaster ends
    blanket = declare(operator)
    send_queued_emails()
    queue_deadline_reminders(now=blanket.deadline - timedelta(hours=23))
    queue_deadline_reminders(now=blanket.deadline - timedelta(hours=22))  # again: no-op
    send_queued_emails()
    revert_expired_grants(now=blanket.deadline, chunk_size=300)
    send_queued_emails()
    messages = smtp_server.messages

    # then each customer got one e-mail per event, the big one listing every line
    to_big = [m for m in messages if "soumu@city.example.jp" in m["to"]]
    to_small = [m for m in messages if "owner@shop.example.jp" in m["to"]]
    assert len(to_big) == len(to_small) == 3
    assert sorted(to_big[0]["to"]) == sorted(
        ["bousai@city.example.jp", "soumu@city.example.jp", big.customer.email.lower()]
    )
    started, reminder, reverted = (body_of(m) for m in to_big)
    japanese = started.split("---------- English")[0]
    assert all(line.contract_number in japanese for line in lines)
    assert japanese.count("この回線への回答") == 2000  # a link for each line
    assert "2000 回線すべての高速化を継続" in japanese  # and one for all of them
    assert reminder.count("高速化中(ご回答待ち)") == 2000
    assert reverted.split("English")[0].count("通常の速度に戻しました") == 2000
    assert CustomerNotice.objects.filter(customer=big.customer).count() == 3


def test_lines_kept_fast_by_approved_requests_are_never_told_back_to_normal(operator, smtp_server):
    # given a customer's three lines, two of them also upgraded by two approved requests
    user = UserFactory()
    kept, also_kept, plain = make_lines(3, customer=user.customer)
    upgrade_request = approved_request_for(kept, user)
    other_request = approved_request_for(also_kept, user)
    send_queued_emails()
    smtp_server.messages.clear()

    # when a disaster upgrades both, nobody answers, and the revert job runs
    blanket = declare(operator)
    send_queued_emails()
    revert_expired_grants(now=blanket.deadline)
    send_queued_emails()
    started, reverted = (body_of(m) for m in smtp_server.messages)

    # then a line a request keeps fast is told so, never "returned to normal"
    def status_of(body: str, line, language="ja") -> str:
        text = body.split("---------- English")[language == "en"]
        return text.split(line.contract_number)[1].splitlines()[1].strip()

    assert f"お申し込み #{upgrade_request.pk}" in status_of(started, kept)
    assert "ご回答にかかわらず高速のまま" in status_of(started, kept)
    assert status_of(started, plain) == "高速化中(ご回答待ち)"
    assert status_of(reverted, kept) == (
        f"引き続き高速化中(高速化のお申し込み #{upgrade_request.pk})"
    )
    assert status_of(reverted, plain) == "通常の速度に戻しました"
    assert "Remains upgraded (upgrade request" in reverted.split("English")[1]
    # and each line of the same e-mail names its own request, in both languages
    for body in (started, reverted):
        assert f"#{other_request.pk})" in status_of(body, also_kept)
        assert f"upgrade request #{other_request.pk})" in status_of(body, also_kept, "en")
        assert f"upgrade request #{upgrade_request.pk})" in status_of(body, kept, "en")
    assert status_of(reverted, plain, "en") == "Returned to normal speed"
    kept.refresh_from_db()
    assert kept.speed.desired_upgraded  # and it is indeed still fast


def test_the_disaster_ended_notice_says_which_lines_stay_fast(operator, smtp_server, client):
    user = UserFactory()
    kept, plain = make_lines(2, customer=user.customer)
    approved_request_for(kept, user)
    blanket = declare(operator, message="地震のため回線を高速化しました。")
    send_queued_emails()
    smtp_server.messages.clear()

    # the operator ends it from the confirmation page, with a closing message
    client.force_login(operator)
    question = follow_end_link(client, blanket)
    assert 'name="message"' in question.text
    (form,) = [f for f in post_forms(question.text) if f["action"].endswith("/end/")]
    client.post(
        form["action"],
        form_data(form["fields"], message="秩父の地上局は通常運用に戻りました。"),
    )
    end_blanket_grants(blanket_id=blanket.pk, now=timezone.now())
    send_queued_emails()

    ended = next(body_of(m) for m in smtp_server.messages if "終了" in m["subject"])
    assert "引き続き高速化中" in ended.split(kept.contract_number)[1].split("\n- ")[0]
    assert "通常の速度に戻しました" in ended.split(plain.contract_number)[1].split("\n- ")[0]
    assert "秩父の地上局は通常運用に戻りました。" in ended  # the operator's closing words
    assert "地震のため回線を高速化しました。" not in ended  # not the declaration's


def test_the_operators_message_reaches_the_started_and_reminder_e_mails(operator, smtp_server):
    UserFactory(customer=make_lines(1)[0].site.customer)
    blanket = declare(
        operator,
        message="停電地域の皆様は非常用電源をご確認ください。",
        message_en="In areas without power, please check your emergency power supply.",
    )
    send_queued_emails()
    queue_deadline_reminders(now=blanket.deadline - timedelta(hours=1))
    send_queued_emails()

    started, reminder = (body_of(m) for m in smtp_server.messages)
    for body in (started, reminder):
        japanese, english = body.split("---------- English ----------")
        assert "運営からのお知らせ" in japanese
        assert "停電地域の皆様は非常用電源をご確認ください。" in japanese
        assert "Message from the operator" in english
        assert "please check your emergency power supply" in english


def test_a_reminder_whose_lines_were_all_answered_meanwhile_is_not_sent(operator, smtp_server):
    user = UserFactory()
    make_lines(2, customer=user.customer)
    blanket = declare(operator)
    send_queued_emails()
    queue_deadline_reminders(now=blanket.deadline - timedelta(hours=1))

    # the customer answers before the reminder goes out
    respond_to_grants(
        grants=blanket.grants.all(),
        keep=True,
        by=user,
        channel=Channel.PORTAL,
        now=blanket.deadline - timedelta(minutes=59),
    )
    report = send_queued_emails()

    assert (report.sent, report.skipped) == (0, 1)
    assert len(smtp_server.messages) == 1  # only the first, "upgraded" e-mail
    reminder = OutboundEmail.objects.get(key__startswith="upgrades.notice", status="skipped")
    assert reminder.body == ""


def test_decisions_on_requests_are_mailed_to_the_organisations_users_once(send_emails):
    user = UserFactory(email="tanaka@town.example.jp")
    line = make_lines(1, customer=user.customer)[0]
    staff = SupportUserFactory()
    approved, rejected = (
        request_upgrade(
            customer=user.customer,
            sites=[line.site],
            reason="disaster",
            channel=Channel.PORTAL,
            requested_by=user,
            now=NOW,
        )
        for _ in range(2)
    )
    approve_upgrade_request(upgrade_request=approved, by=staff, now=NOW)
    reject_upgrade_request(upgrade_request=rejected, by=staff, now=NOW, reason="重複")

    send_emails()
    sent = send_emails()

    assert len(sent) == 2
    subjects = " ".join(m.subject for m in sent)
    assert "承認しました" in subjects and "approved" in subjects
    assert any("重複" in m.body for m in sent)
    assert line.contract_number in next(m.body for m in sent if "承認" in m.subject)
    assert all("tanaka@town.example.jp" in m.to for m in sent)


def test_a_run_that_died_before_handing_over_its_notices_is_caught_by_the_sweeper(
    operator, monkeypatch, send_emails
):
    UserFactory(customer=make_lines(4)[0].site.customer)
    blanket = declare(operator)
    send_emails().clear()
    from upgrades.services import blanket as blanket_services

    def die(**kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(blanket_services, "hand_over_run", die)
    with pytest.raises(RuntimeError):
        revert_expired_grants(now=blanket.deadline)
    monkeypatch.undo()
    assert send_emails() == []  # nothing half-told

    early = queue_stranded_notices(now=blanket.deadline + timedelta(minutes=5))
    late = queue_stranded_notices(now=blanket.deadline + timedelta(minutes=11))
    (sent,) = send_emails()

    assert (early, late) == (0, 1)
    assert sent.body.split("English")[0].count("通常の速度に戻しました") == 4


def test_sending_a_batch_takes_constant_queries_plus_one_per_e_mail(operator, settings):
    """Composing is set-based for the batch; each e-mail's acceptance is recorded on its
    own, so a killed sender repeats at most one message."""
    settings.OUTBOX_BATCH_SIZE = 100

    def queries_to_send(customers: int, prefecture: str) -> int:
        for _ in range(customers):
            UserFactory(customer=make_lines(3, prefecture=prefecture)[0].site.customer)
        declare(operator, key=prefecture, prefectures=[prefecture])
        with CaptureQueriesContext(connection) as queries:
            report = send_queued_emails()
        assert report.sent == customers
        return len(queries)

    assert queries_to_send(40, "14") - queries_to_send(1, "13") == 39


def test_the_banner_the_upgrades_page_and_the_api_tell_the_same_truth(operator, client):
    # given a line kept fast by an approved request, and a disaster upgrade over it
    user = UserFactory()
    kept, plain = make_lines(2, customer=user.customer)
    approved_request_for(kept, user)
    blanket = declare(operator)
    client.force_login(user)

    # while the disaster grant waits, the banner says the answer changes nothing there
    home = client.get("/")
    banner = home.text.split('id="pending-h"')[1].split("</section>")[0]
    kept_item = banner.split(kept.site.name)[1].split("</li>")[0]
    plain_item = banner.split(plain.site.name)[1].split("</li>")[0]
    assert "ご回答にかかわらず" in kept_item and "ご回答にかかわらず" not in plain_item

    # after the revert, the page and the API show the kept line as still upgraded
    revert_expired_grants(now=blanket.deadline)
    page = client.get("/upgrades/").text
    disaster_rows = {
        row.split("</td>")[0]: row
        for row in page.split("<tr><td>")[1:]
        if blanket.disaster.title in row
    }
    kept_row, plain_row = disaster_rows[kept.site.name], disaster_rows[plain.site.name]
    assert "<td>期限までに回答なし</td>" in kept_row and "<td>高速化中</td>" in kept_row
    assert "<td>期限までに回答なし</td>" in plain_row and "<td>通常速度</td>" in plain_row
    api = APIClient()
    api.force_authenticate(user)
    grants = {
        g["subscription"]: g
        for g in api.get("/api/v1/grants/").json()["results"]
        if g["source"] == "blanket"
    }
    assert grants[kept.contract_number]["state"] == "reverted"
    assert grants[kept.contract_number]["line_upgraded"] is True
    assert grants[plain.contract_number]["line_upgraded"] is False


def test_ending_the_main_shock_hands_its_lines_to_the_aftershock_still_active(
    operator, smtp_server, client
):
    # given a main shock over Miyagi and an aftershock over Miyagi and Saitama, which
    # holds only the Saitama line (a line is held by one disaster at a time)
    user = UserFactory()
    (miyagi,) = make_lines(1, customer=user.customer, prefecture="04")
    (saitama,) = make_lines(1, customer=user.customer, prefecture="11")
    main = declare(operator, key="main", prefectures=["04"])
    after = declare_disaster(
        operator=operator,
        title="余震",
        nationwide=False,
        prefectures=["04", "11"],
        idempotency_key="after",
        confirm_overlap=True,
        now=NOW + timedelta(hours=1),
    )
    apply_blanket_upgrade(blanket_id=after.pk, now=NOW + timedelta(hours=1))
    assert set(after.grants.values_list("subscription_id", flat=True)) == {saitama.pk}
    send_queued_emails()
    smtp_server.messages.clear()

    # when the operator opens "end" for the main shock, then ends it
    client.force_login(operator)
    ended_at = NOW + timedelta(hours=2)
    with time_machine.travel(ended_at, tick=False):
        question = follow_end_link(client, main)
    end_disaster(disaster=main.disaster, operator=operator, now=ended_at)
    end_blanket_grants(blanket_id=main.pk, now=ended_at)
    send_queued_emails()

    # then the page said it stays fast, and it does, now waiting for the aftershock's answer
    assert '<dd id="kept">1</dd>' in question.text
    miyagi.refresh_from_db()
    assert miyagi.speed.desired_upgraded
    assert after.grants.get(subscription=miyagi).state == "pending"
    subjects = {m["subject"].split(" / ")[0]: body_of(m) for m in smtp_server.messages}
    ended = next(body for subject, body in subjects.items() if "終了" in subject)
    assert "引き続き高速化中(災害「余震」)" in ended.split(miyagi.contract_number)[1]
    started = next(body for subject, body in subjects.items() if "余震" in subject)
    assert miyagi.contract_number in started and "ご回答待ち" in started
