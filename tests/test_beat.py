"""Beat's schedule names real tasks, and the e-mail jobs it runs do their work when run.

A misspelt task name in CELERY_BEAT_SCHEDULE would make beat send a message no worker
knows, every minute, and every other test would stay green.
"""

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from desk.models import Inquiry
from desk.services import open_inquiry
from incidents.broadcasts import send_mass_message
from incidents.models import ReadinessReminder
from portal.celery import app as celery_app
from portal.models import Heartbeat
from subscriptions.models import RenewalReminder, Subscription
from support.followups import relay_due
from support.models import AfterHoursAlert, FollowUp, OutboundEmail
from support.outbox import queue_email
from tests.factories import (
    OperatorUserFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)
from tests.imapserver import IMAPServer
from tests.upgrades.conftest import make_lines
from upgrades.models import CustomerNotice, ProvisioningChange
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster, end_disaster


def registered_tasks() -> set[str]:
    celery_app.loader.import_default_modules()
    return set(celery_app.tasks)


@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_registered_task(entry):
    assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] in registered_tasks()


def run_beat_entry(name: str) -> None:
    """Run the task of a beat entry in this process, as a worker would."""
    registered_tasks()
    task = celery_app.tasks[settings.CELERY_BEAT_SCHEDULE[name]["task"]]  # loads them all
    result = task.apply()
    result.get(propagate=True)


@pytest.mark.django_db
def test_the_outbox_safety_net_sends_what_is_queued(mailoutbox):
    queue_email(key="beat-test", to=["tanaka@town.example.jp"], subject="件名", body="本文")

    run_beat_entry("send-queued-emails")

    assert [m.to for m in mailoutbox] == [["tanaka@town.example.jp"]]
    assert OutboundEmail.objects.get().status == "sent"


@pytest.mark.django_db
def test_the_deadline_reminder_job_reminds_each_customer_once(mailoutbox, settings):
    settings.BLANKET_REMINDER_HOURS = 24
    UserFactory(customer=make_lines(2)[0].site.customer)
    now = timezone.now()
    blanket = declare_disaster(
        operator=OperatorUserFactory(),
        title="t",
        nationwide=True,
        prefectures=[],
        window_days=1,  # the deadline is within the reminder's 24 hours
        idempotency_key="k",
        now=now - timedelta(hours=1),
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now - timedelta(hours=1))

    run_beat_entry("remind-pending-grants")
    run_beat_entry("remind-pending-grants")

    assert CustomerNotice.objects.filter(kind="deadline_reminder").count() == 1


@pytest.mark.django_db
def test_the_revert_job_returns_unconfirmed_lines_to_normal(settings):
    lines = make_lines(3)
    now = timezone.now()
    blanket = declare_disaster(
        operator=OperatorUserFactory(),
        title="t",
        nationwide=True,
        prefectures=[],
        window_days=1,
        idempotency_key="k",
        now=now - timedelta(days=2),
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now - timedelta(days=2))

    run_beat_entry("revert-expired-grants")

    assert set(blanket.grants.values_list("state", flat=True)) == {"reverted"}
    for line in lines:
        line.refresh_from_db()
        assert not line.speed.desired_upgraded
    assert CustomerNotice.objects.filter(kind="reverted").count() == 1


# The other entries. Each runs its task as beat's message would, with Celery eager so
# that the follow-ups a sweeper asks for run too, and checks what it did.


@pytest.fixture
def eager(monkeypatch):
    """Tasks sent to the broker run at once in this process (after their commit: the
    tests using this one commit for real)."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    monkeypatch.setattr(celery_app.conf, "task_eager_propagates", True)


@pytest.mark.django_db
def test_the_heartbeat_entry_records_that_beat_and_a_worker_are_alive():
    run_beat_entry("heartbeat")

    assert Heartbeat.objects.filter(name="beat").exists()


@pytest.mark.django_db
def test_the_relay_sends_the_follow_ups_a_down_broker_refused(monkeypatch, mailoutbox):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    with monkeypatch.context() as down:
        down.setattr(celery_app.tasks["support.tasks.send_queued_emails"], "apply_async", refuse)
        queue_email(key="k", to=["tanaka@town.example.jp"], subject="件名", body="本文")
        relay_due()  # after the commit: refused, the follow-up stays due
    assert FollowUp.objects.count() == 1 and mailoutbox == []

    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    run_beat_entry("relay-follow-ups")

    assert [m.to for m in mailoutbox] == [["tanaka@town.example.jp"]]
    assert not FollowUp.objects.exists()


def declared(*, minutes_ago: int, lines: int = 2, **fields):
    make_lines(lines)
    at = timezone.now() - timedelta(minutes=minutes_ago)
    blanket = declare_disaster(
        operator=OperatorUserFactory(), title="t", nationwide=True, prefectures=[],
        idempotency_key=f"k{minutes_ago}", now=at, **fields,
    )  # fmt: skip
    return blanket, at


@pytest.mark.django_db(transaction=True)
def test_the_resume_entry_grants_a_declaration_whose_follow_up_was_lost(eager):
    blanket, _ = declared(minutes_ago=10)
    FollowUp.objects.all().delete()  # lost: deleted by hand, or older than follow-ups

    run_beat_entry("resume-blanket-upgrades")

    blanket.refresh_from_db()
    assert blanket.status == "active" and blanket.grants.count() == 2


@pytest.mark.django_db
def test_the_reconcile_entry_pushes_out_of_sync_lines():
    blanket, at = declared(minutes_ago=1)
    apply_blanket_upgrade(blanket_id=blanket.pk, now=at)
    assert Subscription.objects.out_of_sync().count() == 2

    run_beat_entry("reconcile-speeds")

    assert not Subscription.objects.out_of_sync().exists()
    assert ProvisioningChange.objects.count() == 2


@pytest.mark.django_db
def test_the_stranded_notices_entry_hands_a_dead_runs_notices_to_the_outbox():
    blanket, at = declared(minutes_ago=3 * 60)
    UserFactory(customer=Subscription.objects.first().site.customer)
    apply_blanket_upgrade(blanket_id=blanket.pk, now=at)
    # the run died after writing its notice, before handing it over
    CustomerNotice.objects.update(queued_at=None)
    OutboundEmail.objects.all().delete()

    run_beat_entry("queue-stranded-notices")

    notice = CustomerNotice.objects.get()
    assert notice.queued_at is not None
    assert OutboundEmail.objects.get(composer_ref=notice.pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_the_resume_mass_messages_entry_queues_a_message_whose_follow_up_was_lost(eager):
    customer = make_lines(1, prefecture="13")[0].site.customer
    UserFactory(customer=customer, email="soumu@minato.example.jp")
    with time_machine.travel(timezone.now() - timedelta(minutes=10)):
        message = send_mass_message(
            operator=OperatorUserFactory(), audience="prefectures", prefectures=["13"],
            subject_ja="停電のお知らせ", body_ja="衛星回線をお使いください。",
            idempotency_key="m", now=timezone.now(),
        )  # fmt: skip
    FollowUp.objects.all().delete()

    run_beat_entry("resume-mass-messages")

    message.refresh_from_db()
    assert message.is_queued
    assert OutboundEmail.objects.get(key__startswith="mass-message:").status == "sent"


@pytest.mark.django_db(transaction=True)
def test_the_readiness_entry_asks_about_sites_not_checked_lately(eager, mailoutbox):
    customer = make_lines(1)[0].site.customer
    UserFactory(customer=customer, email="tanaka@town.example.jp")

    run_beat_entry("readiness-reminders")

    assert ReadinessReminder.objects.get().reason == "not_checked"
    assert any("tanaka@town.example.jp" in m.to for m in mailoutbox)


@pytest.mark.django_db(transaction=True)
def test_the_recheck_entry_asks_a_day_after_a_disaster_ended(eager, mailoutbox):
    blanket, at = declared(minutes_ago=3 * 24 * 60)
    UserFactory(customer=Subscription.objects.first().site.customer)
    end_disaster(
        disaster=blanket.disaster, operator=OperatorUserFactory(), now=at + timedelta(days=1)
    )

    run_beat_entry("recheck-after-disasters")

    assert ReadinessReminder.objects.get().reason == "after_disaster"
    blanket.disaster.refresh_from_db()
    assert blanket.disaster.recheck_requested_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_renewal_entry_reminds_a_line_whose_term_ends_soon(eager, mailoutbox):
    line = SubscriptionFactory(service_start=(timezone.now() - timedelta(days=5 * 365 - 30)).date())
    UserFactory(customer=line.site.customer, email="keiyaku@town.example.jp")

    run_beat_entry("renewal-reminders")

    assert RenewalReminder.objects.get().subscription == line
    assert any("keiyaku@town.example.jp" in m.to for m in mailoutbox)


@pytest.mark.django_db
def test_the_escalation_entry_reminds_the_on_call_staff_of_a_contact_nobody_took():
    SupportUserFactory(email="yakin@bcp.example.jp")
    night = datetime(2026, 11, 24, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    user = UserFactory()
    open_inquiry(
        customer=user.customer, subject="s", body="b", channel="portal", by=user, now=night
    )

    with time_machine.travel(night + timedelta(minutes=20), tick=False):
        run_beat_entry("escalate-unpicked-contacts")

    assert AfterHoursAlert.objects.filter(stage="reminder").get().email.to == [
        "yakin@bcp.example.jp"
    ]


@pytest.mark.django_db
def test_the_mailbox_entry_turns_an_email_into_an_inquiry(settings, tmp_path):
    with IMAPServer() as imap:
        for name, value in imap.settings().items():
            setattr(settings, name, value)
        settings.PRIVATE_MEDIA_ROOT = tmp_path
        user = UserFactory(email="tanaka@town.example.jp")
        imap.deliver(
            b"From: tanaka@town.example.jp\r\nSubject: test\r\n"
            b"Message-ID: <beat-1@town.example.jp>\r\n\r\nHello\r\n"
        )

        run_beat_entry("fetch-support-mailbox")

        assert Inquiry.objects.get().customer == user.customer
        assert imap.uids("INBOX") == []


def test_every_beat_entry_is_run_by_a_test_of_this_file():
    source = Path(__file__).read_text()
    run = set(re.findall(r'run_beat_entry\("([a-z-]+)"\)', source))

    assert run == set(settings.CELERY_BEAT_SCHEDULE)
