"""E-mails: a reminder before the deadline, request decisions; each sent once."""

from datetime import timedelta

import pytest
from django.core import mail

from support.channels import Channel
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import NOW, make_lines
from upgrades.models import Notification
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster
from upgrades.services.notifications import queue_deadline_reminders, send_notifications
from upgrades.services.requests import (
    approve_upgrade_request,
    reject_upgrade_request,
    request_upgrade,
)

pytestmark = pytest.mark.django_db


def test_a_reminder_is_queued_once_when_the_deadline_is_near(operator, settings):
    settings.BLANKET_REMINDER_HOURS = 24
    make_lines(2)
    blanket = declare_disaster(
        operator=operator, title="t", nationwide=True, prefectures=[], idempotency_key="k", now=NOW
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW)

    early = queue_deadline_reminders(now=blanket.deadline - timedelta(hours=25))
    due = queue_deadline_reminders(now=blanket.deadline - timedelta(hours=23))
    again = queue_deadline_reminders(now=blanket.deadline - timedelta(hours=22))

    assert (early, due, again) == (0, 2, 0)
    assert Notification.objects.filter(kind="deadline_reminder").count() == 2


def test_decisions_on_requests_are_mailed_to_the_organisations_users_once():
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

    sent = send_notifications(now=NOW)
    send_notifications(now=NOW + timedelta(minutes=10))

    assert sent == 2 and len(mail.outbox) == 2
    subjects = " ".join(m.subject for m in mail.outbox)
    assert "承認しました" in subjects and "approved" in subjects
    assert any("重複" in m.body for m in mail.outbox)
    assert all("tanaka@town.example.jp" in m.to for m in mail.outbox)
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_a_failing_mail_server_leaves_the_notice_to_be_sent_later(operator, monkeypatch):
    UserFactory(customer=make_lines(1)[0].site.customer)
    blanket = declare_disaster(
        operator=operator, title="t", nationwide=True, prefectures=[], idempotency_key="k", now=NOW
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW)

    def refuse(self, messages):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    with pytest.raises(ConnectionRefusedError):
        send_notifications(now=NOW)
    monkeypatch.undo()

    assert Notification.objects.get().sent_at is None
    assert send_notifications(now=NOW + timedelta(minutes=1)) == 0  # still leased
    assert send_notifications(now=NOW + timedelta(minutes=6)) == 1  # the lease has ended
