"""The outbox: every e-mail is a row, sent by a worker to a real SMTP server, once."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from support.models import OutboundEmail
from support.outbox import queue_email, send_queued_emails
from tests.factories import OperatorUserFactory

pytestmark = pytest.mark.django_db


def queue(count: int, prefix: str = "test") -> None:
    for number in range(count):
        queue_email(
            key=f"{prefix}:{number}",
            to=[f"user{number}@town.example.jp"],
            subject=f"お知らせ {number}",
            body="本文",
        )


def test_a_subject_with_a_line_break_is_delivered_on_one_line(smtp_server):
    queue_email(
        key="subject-with-break",
        to=["Tanaka@Town.example.jp", "tanaka@town.example.jp", "not an address"],
        subject="アンテナが\r\n傾いた\nBcc: victim@example.com",
        body="一行目\n二行目",
    )

    report = send_queued_emails()

    (received,) = smtp_server.messages
    assert report.sent == 1
    assert received["to"] == ["tanaka@town.example.jp"]
    assert received["subject"] == "アンテナが 傾いた Bcc: victim@example.com"
    assert received["message"]["Bcc"] is None
    assert OutboundEmail.objects.get().status == "sent"


def test_queueing_the_same_key_twice_queues_once(smtp_server):
    first = queue_email(key="once", to=["a@town.example.jp"], subject="s", body="b")
    again = queue_email(key="once", to=["a@town.example.jp"], subject="s", body="b")

    send_queued_emails()
    send_queued_emails()

    assert first is not None and again is None
    assert len(smtp_server.messages) == 1


def test_a_mail_server_failing_for_a_while_loses_nothing_and_sends_nothing_twice(
    smtp_server, settings
):
    settings.OUTBOX_BATCH_SIZE = 10
    queue(30)
    start = timezone.now()

    # The server accepts 4, then answers "421 try again later" for a while.
    smtp_server.recorder.refuse_with = "421 4.3.2 System busy, try again later"
    smtp_server.recorder.accept_before_refusing = 4
    with time_machine.travel(start, tick=False):
        busy = send_queued_emails()
    # Then it is down altogether.
    smtp_server.stop()
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        down = send_queued_emails()
    waiting = OutboundEmail.objects.filter(status="queued").order_by("pk").first()
    # It comes back; the backoff has passed.
    smtp_server.recorder.refuse_with = None
    smtp_server.start()
    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        back = send_queued_emails()

    assert (busy.sent, down.sent, back.sent) == (4, 0, 26)
    assert busy.errors and down.errors and not back.errors
    assert "421" in busy.errors[0] and "ConnectionRefusedError" in down.errors[0]
    assert waiting.last_error and waiting.attempts == 2
    received = [m["to"][0] for m in smtp_server.messages]
    assert sorted(received) == sorted(f"user{n}@town.example.jp" for n in range(30))
    assert len({m["message_id"] for m in smtp_server.messages}) == 30
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}


def test_an_address_the_server_refuses_is_failed_and_shown_to_staff_with_its_error(
    smtp_server, client
):
    queue_email(key="refused", to=["nobody@town.example.jp"], subject="件名", body="b")
    smtp_server.recorder.refuse_with = "550 5.1.1 No such user"

    report = send_queued_emails()

    email = OutboundEmail.objects.get()
    assert (report.sent, report.failed) == (0, 1)
    assert email.status == "failed" and "No such user" in email.last_error
    client.force_login(OperatorUserFactory())
    changelist = client.get(reverse("admin:support_outboundemail_changelist") + "?status=failed")
    assert "件名" in changelist.text
    # Fixed: staff try it again from the list, and it goes out.
    smtp_server.recorder.refuse_with = None
    client.post(
        reverse("admin:support_outboundemail_changelist"),
        {"action": "retry", "_selected_action": [email.pk]},
    )
    send_queued_emails()
    assert OutboundEmail.objects.get().status == "sent"
    assert len(smtp_server.messages) == 1


def test_an_email_without_recipients_is_recorded_as_not_needed(smtp_server):
    queue_email(key="nobody", to=[], subject="s", body="b")

    send_queued_emails()

    assert smtp_server.messages == []
    assert OutboundEmail.objects.get().status == "skipped"


def test_after_too_many_attempts_an_email_is_failed_for_staff_to_see(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    queue(1)

    send_queued_emails()
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        send_queued_emails()

    email = OutboundEmail.objects.get()
    assert (email.status, email.attempts) == ("failed", 2)
    assert "Connection" in email.last_error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_email_once(smtp_server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and real concurrency, not sqlite")
    settings.OUTBOX_BATCH_SIZE = 5
    queue(60)
    reports = []

    def sender():
        reports.append(send_queued_emails())
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.sent for report in reports) == 60
    assert all(report.sent for report in reports)  # both took a share
    received = sorted(m["to"][0] for m in smtp_server.messages)
    assert received == sorted(f"user{n}@town.example.jp" for n in range(60))


def test_a_slow_server_does_not_let_the_rest_of_a_batch_fall_out_of_its_lease(
    smtp_server, monkeypatch, settings
):
    from support import outbox

    settings.OUTBOX_LEASE_SECONDS = 60
    for n in range(3):
        queue_email(key=f"slow:{n}", to=[f"u{n}@town.example.jp"], subject="s", body="b")
    ticks = iter(range(0, 1000, 31))  # each look at the clock, 31 s after the last
    monkeypatch.setattr(outbox, "_clock", lambda: float(next(ticks)))
    leases = []
    real_renew = outbox._renew_lease
    monkeypatch.setattr(
        outbox, "_renew_lease", lambda rows: (leases.append(len(rows)), real_renew(rows))
    )

    outbox.send_queued_emails()

    assert leases, "the lease of the rows still to send was renewed while sending"
    assert OutboundEmail.objects.filter(status="sent").count() == 3
    assert not outbox.has_due_emails(now=timezone.now())


def test_rows_a_dead_sender_holds_do_not_make_the_next_run_loop(settings):
    from support import outbox

    queue_email(key="held", to=["a@town.example.jp"], subject="s", body="b")
    OutboundEmail.objects.update(lease_until=timezone.now() + timedelta(minutes=2))

    assert not outbox.has_due_emails(now=timezone.now())
    assert outbox.has_due_emails(now=timezone.now() + timedelta(minutes=3))
