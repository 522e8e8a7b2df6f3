"""An after-hours contact nobody picks up reminds the staff on call after 15 minutes and
reaches the whole support group after 30: once each, however often beat runs."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from desk.models import Inquiry
from desk.services import open_inquiry, reply_to_inquiry
from desk.tasks import escalate_unpicked_contacts
from support.models import AfterHoursAlert, OnCallShift, OutboundEmail
from tests.factories import SupportUserFactory, UserFactory

TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=TOKYO)
ON_CALL = "yakin@bcp.example.jp"
COLLEAGUE = "hiru@bcp.example.jp"


def staff_and_shift():
    on_call = SupportUserFactory(email=ON_CALL)
    SupportUserFactory(email=COLLEAGUE)
    OnCallShift.objects.create(
        staff=on_call, starts_at=NIGHT - timedelta(hours=6), ends_at=NIGHT + timedelta(hours=8)
    )
    return on_call


def night_inquiry(subject="回線がつながらない") -> Inquiry:
    user = UserFactory()
    return open_inquiry(
        customer=user.customer, subject=subject, body="夜分に失礼します", channel="portal",
        by=user, now=NIGHT,
    )  # fmt: skip


def beat_at(minutes: int, runs: int = 2) -> None:
    """Beat's task, run ``runs`` times ``minutes`` after the contact arrived."""
    with time_machine.travel(NIGHT + timedelta(minutes=minutes), tick=False):
        for _ in range(runs):
            escalate_unpicked_contacts.apply().get()


def emails(inquiry: Inquiry) -> dict[str, OutboundEmail]:
    alerts = AfterHoursAlert.objects.filter(contact_kind="inquiry", contact_id=str(inquiry.pk))
    return {alert.stage: alert.email for alert in alerts.select_related("email")}


@pytest.mark.django_db
def test_a_contact_nobody_picks_up_reminds_on_call_then_escalates_once_each():
    staff_and_shift()
    inquiry = night_inquiry()

    beat_at(14)
    assert set(emails(inquiry)) == {"first"}

    beat_at(16)
    reminder = emails(inquiry)["reminder"]
    assert reminder.to == [ON_CALL]
    assert "reminder" in reminder.subject and f"#{inquiry.pk}" in reminder.subject
    assert "waited 16 minutes" in reminder.body
    assert f"/admin/desk/inquiry/{inquiry.pk}/change/" in reminder.body

    beat_at(31)
    beat_at(45)
    sent = emails(inquiry)
    assert set(sent) == {"first", "reminder", "escalation"}
    escalation = sent["escalation"]
    assert sorted(escalation.to) == [COLLEAGUE, ON_CALL]
    assert "escalation" in escalation.subject and "waited 31 minutes" in escalation.body
    assert f"/admin/desk/inquiry/{inquiry.pk}/change/" in escalation.body
    assert OutboundEmail.objects.filter(key__startswith="after-hours:").count() == 3


@pytest.mark.django_db
def test_a_beat_that_was_away_sends_both_stages_once():
    staff_and_shift()
    inquiry = night_inquiry()

    beat_at(40)

    assert set(emails(inquiry)) == {"first", "reminder", "escalation"}


@pytest.mark.django_db
def test_no_reminder_once_someone_is_assigned_or_has_answered():
    on_call = staff_and_shift()
    assigned, answered, waiting = (night_inquiry(subject) for subject in ["a", "b", "c"])
    Inquiry.objects.filter(pk=assigned.pk).update(assignee=on_call)
    reply_to_inquiry(
        inquiry=answered, by=on_call, body="確認します", internal=False,
        now=NIGHT + timedelta(minutes=5),
    )  # fmt: skip

    beat_at(16)
    beat_at(31)

    assert set(emails(assigned)) == {"first"}
    assert set(emails(answered)) == {"first"}
    assert set(emails(waiting)) == {"first", "reminder", "escalation"}


@pytest.mark.django_db
def test_a_note_alone_is_no_response_and_a_day_contact_is_never_escalated():
    on_call = staff_and_shift()
    noted = night_inquiry()
    reply_to_inquiry(inquiry=noted, by=on_call, body="社内メモ", internal=True, now=NIGHT)
    user = UserFactory()
    day = open_inquiry(
        customer=user.customer, subject="昼", body="b", channel="portal", by=user,
        now=datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO),
    )  # fmt: skip

    beat_at(16)

    assert set(emails(noted)) == {"first", "reminder"}
    assert emails(day) == {}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_each_stage_once():
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL's real concurrency, not {connection.vendor}")
    staff_and_shift()
    inquiry = night_inquiry()
    barrier = threading.Barrier(2)
    errors = []

    def beat():
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            escalate_unpicked_contacts.apply().get()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    with time_machine.travel(NIGHT + timedelta(minutes=31), tick=False):
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    assert set(emails(inquiry)) == {"first", "reminder", "escalation"}
    assert OutboundEmail.objects.filter(key__startswith="after-hours:").count() == 3
