"""Follow-ups (support/followups.py): the work a commit asks for is a row of that commit,
sent to the broker after it, merged while it waits, retried after a failure and taken
back from a worker that died. The broker is replaced by a recorder here; the real one,
stopped and restarted, is in tests/reliability/."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from portal.celery import app
from support import followups
from support.followups import TASK_ID_PREFIX, backoff, enqueue_on_commit, relay_due
from support.models import FollowUp

# Committed for real: after-commit sending runs as in production.
pytestmark = pytest.mark.django_db(transaction=True)

runs: list[tuple] = []


@app.task(name="tests.support.probe")
def probe(line: int, fail: bool = False) -> None:
    """Stands for a follow-up task: records each run, fails when asked to."""
    runs.append((line,))
    if fail:
        raise ConnectionError("the network did not answer")


@pytest.fixture
def broker(monkeypatch):
    """What the relay sends, as (args, task id, countdown); ``broker.down`` refuses."""

    class Recorder(list):
        down = False

    sent = Recorder()

    def apply_async(args=None, task_id=None, countdown=None, **options):
        if sent.down:
            raise ConnectionRefusedError("redis is down")
        sent.append((tuple(args), task_id, countdown))

    monkeypatch.setattr(probe, "apply_async", apply_async)
    runs.clear()
    return sent


def deliver(message) -> None:
    """A worker takes the message: the run as Celery makes it, with the message's id."""
    args, task_id, _countdown = message
    probe.apply(args=args, task_id=task_id).get()


def test_a_rolled_back_change_asks_for_nothing_and_a_committed_one_is_sent_after_commit(
    broker,
):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(probe, 1)
        raise RuntimeError("the change failed")
    with transaction.atomic():
        enqueue_on_commit(probe, 2)
        assert broker == [], "nothing is sent before the commit"

    assert list(FollowUp.objects.values_list("args", flat=True)) == [[2]]
    ((args, task_id, _),) = broker
    assert args == (2,) and task_id.startswith(TASK_ID_PREFIX)


def test_the_same_work_asked_for_while_its_message_is_out_is_one_message_and_one_run(broker):
    for _ in range(50):  # fifty commits asking for the same work
        with transaction.atomic():
            enqueue_on_commit(probe, 7)
    enqueue_on_commit(probe, 8)  # other work is its own message

    assert [args for args, _, _ in broker] == [(7,), (8,)]
    for message in broker:
        deliver(message)
    deliver(broker[0])  # the broker delivers a message twice

    assert runs == [(7,), (8,)]
    assert not FollowUp.objects.exists(), "a run that succeeded removes what it did"


def test_a_broker_that_is_down_loses_nothing_and_the_relay_sends_it_when_back(broker):
    broker.down = True
    enqueue_on_commit(probe, 3)  # no exception reaches the page

    assert broker == [] and FollowUp.objects.get().due_at <= timezone.now()
    broker.down = False
    assert relay_due() == 1
    deliver(broker[0])
    assert runs == [(3,)] and not FollowUp.objects.exists()


def test_a_message_lost_with_the_broker_is_sent_again_after_the_redelivery_time(broker):
    enqueue_on_commit(probe, 4)
    assert len(broker) == 1  # sent, then Redis restarted empty: the message is gone

    assert relay_due() == 0, "not while the message may still be in the queue"
    later = timezone.now() + timedelta(seconds=91)
    assert relay_due(now=later) == 1
    deliver(broker[-1])
    assert runs == [(4,)]


def test_a_failed_run_waits_for_its_backoff_and_sends_a_timed_retry(broker, settings):
    settings.FOLLOWUP_BACKOFF_BASE_SECONDS = 10
    enqueue_on_commit(probe, 5, True)
    before = timezone.now()

    with pytest.raises(ConnectionError):
        deliver(broker[0])

    row = FollowUp.objects.get()
    assert (row.attempts, row.started_at) == (1, None)
    assert "the network did not answer" in row.last_error
    (_, _, countdown) = broker[1]
    assert 5 <= countdown <= 10, "half the base delay plus jitter"
    # work asked for meanwhile joins the retry instead of going out at once
    enqueue_on_commit(probe, 5, True)
    assert len(broker) == 2
    assert relay_due() == 0
    assert row.due_at > before + timedelta(seconds=countdown)
    # a message that comes before the backoff ends (sent during the run) runs nothing
    runs.clear()
    deliver(broker[0])
    assert runs == []
    # the timed retry, at the end of the backoff, runs once for all that waits
    later = timezone.now() + timedelta(seconds=countdown)
    with time_machine.travel(later, tick=False), pytest.raises(ConnectionError):
        deliver(broker[1])
    assert runs == [(5,)]
    assert FollowUp.objects.get(key=row.key, pk=row.pk).attempts == 2


def test_work_asked_for_during_a_run_waits_for_the_next_run(broker, monkeypatch):
    enqueue_on_commit(probe, 6)

    def run_that_sees_a_new_commit(line, fail=False):
        runs.append((line,))
        enqueue_on_commit(probe, 6)  # a commit while the run reads the database

    monkeypatch.setattr(probe, "run", run_that_sees_a_new_commit)
    deliver(broker[0])

    assert runs == [(6,)]
    assert FollowUp.objects.count() == 1, "the new request was not taken by the run"
    assert len(broker) == 2, "and it went out for the next run"


def test_the_work_of_a_worker_that_died_is_sent_again_when_its_lease_passes(broker):
    enqueue_on_commit(probe, 9)
    FollowUp.objects.update(
        started_at=timezone.now(), run_id=f"{TASK_ID_PREFIX}dead", due_at=timezone.now()
    )  # a worker took it and was killed: no end, no keep-alive

    assert relay_due(now=timezone.now() + timedelta(seconds=1)) == 1
    row = FollowUp.objects.get()
    assert (row.started_at, row.attempts) == (None, 1)
    assert "worker lost" in row.last_error
    deliver(broker[-1])
    assert runs == [(9,)] and not FollowUp.objects.exists()


@override_settings(FOLLOWUP_LEASE_SECONDS=120)
def test_a_long_run_keeps_its_lease_between_chunks(broker, monkeypatch):
    enqueue_on_commit(probe, 10)
    leases = []

    def long_run(line, fail=False):
        monkeypatch.setattr(followups.time, "monotonic", lambda: 10_000.0)  # a while later…
        followups.keep_alive()
        leases.append(FollowUp.objects.get().due_at)

    monkeypatch.setattr(probe, "run", long_run)
    started = timezone.now()
    deliver(broker[0])

    assert leases[0] >= started + timedelta(seconds=119)


def test_backoff_doubles_to_its_cap_with_jitter(settings):
    settings.FOLLOWUP_BACKOFF_BASE_SECONDS = 10
    settings.FOLLOWUP_BACKOFF_MAX_SECONDS = 300
    for attempts, delay in [(1, 10), (2, 20), (3, 40), (6, 300), (40, 300)]:
        waits = {backoff(attempts).total_seconds() for _ in range(50)}
        assert all(delay / 2 <= wait <= delay for wait in waits)
        assert len(waits) > 40, "jittered, so work failed together comes back apart"


def test_a_follow_up_naming_no_task_is_set_aside_and_does_not_block_the_others(broker):
    FollowUp.objects.create(
        task="upgrades.tasks.renamed_away", args=[], key="upgrades.tasks.renamed_away:[]",
        created_at=timezone.now(), due_at=timezone.now(),
    )  # fmt: skip
    broker.down = True
    enqueue_on_commit(probe, 11)  # refused now, due for the relay
    broker.down = False

    assert relay_due() == 1
    assert [args for args, _, _ in broker] == [(11,)]
    lost = FollowUp.objects.get(task="upgrades.tasks.renamed_away")
    assert lost.last_error == "no task named upgrades.tasks.renamed_away"
    assert lost.due_at > timezone.now() + timedelta(hours=23)
