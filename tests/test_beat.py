"""Beat's schedule names real tasks, and the e-mail jobs it runs do their work when run.

A misspelt task name in CELERY_BEAT_SCHEDULE would make beat send a message no worker
knows, every minute, and every other test would stay green.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from portal.celery import app as celery_app
from support.models import OutboundEmail
from support.outbox import queue_email
from tests.factories import OperatorUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.models import CustomerNotice
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster


def registered_tasks() -> set[str]:
    celery_app.loader.import_default_modules()
    return set(celery_app.tasks)


@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_registered_task(entry):
    assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] in registered_tasks()


def run_beat_entry(name: str) -> None:
    """Run the task of a beat entry in this process, as a worker would."""
    task = celery_app.tasks[settings.CELERY_BEAT_SCHEDULE[name]["task"]]
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
        assert not line.desired_upgraded
    assert CustomerNotice.objects.filter(kind="reverted").count() == 1
