"""Races that only PostgreSQL's real concurrency can show (DESIGN invariants 1 and 3).

Each test starts threads that meet at a barrier and then call the services at once; each
thread has its own database connection (Django keeps one per thread), opened before the
barrier so that connecting does not stagger the start, and closed when the thread ends.
The assertions hold whatever the interleaving: they check the end state, not who won.
"""

import queue
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from subscriptions.models import Subscription
from support import tasks as support_tasks
from support.channels import Channel
from support.outbox import send_queued_emails
from tests.factories import UserFactory
from tests.upgrades.conftest import NOW, make_lines
from upgrades import tasks
from upgrades.models import CustomerNotice, SpeedGrant
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    respond_to_grants,
    revert_expired_grants,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

LOCMEM_EMAIL = "django.core.mail.backends.locmem.EmailBackend"
TRIALS = 30
GRANTS_PER_TRIAL = 20
# Enough lines that two revert jobs with small chunks take turns many times.
LINES = 2000
REVERT_CHUNK = 100
JOIN_TIMEOUT = 60  # seconds; a thread still alive after this means a hang (a lock wait)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL's row locks and real concurrency, not {connection.vendor}")


@pytest.fixture(autouse=True)
def enqueued(monkeypatch) -> list[str]:
    """The tasks the services queue on commit, recorded instead of sent to the broker.

    In a transactional test on-commit callbacks really run; without this they would
    write messages into the broker that a worker might run against this database.
    """
    sent: list[str] = []
    for name in ("apply_blanket_upgrade", "end_blanket_grants", "reconcile_speeds"):
        monkeypatch.setattr(
            tasks, name, SimpleNamespace(delay=lambda *args, _name=name: sent.append(_name))
        )
    monkeypatch.setattr(
        support_tasks, "send_queued_emails", SimpleNamespace(delay=lambda: sent.append("send"))
    )
    return sent


class Crowd:
    """Threads that run jobs all at once, round after round, each on its own connection.

    Every thread connects once, before its first round, and closes its connection when
    the crowd breaks up: connecting (several milliseconds) neither staggers the start
    of a round nor is paid again in every trial. In a round the jobs wait at a barrier
    and start together; a job's exception is returned in place of its result.
    """

    def __init__(self, size: int) -> None:
        self._inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(size)]
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(inbox,), name=f"race-{n}", daemon=True)
            for n, inbox in enumerate(self._inboxes)
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> "Crowd":
        return self

    def __exit__(self, *exc_info) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for thread in self._threads:
            thread.join(timeout=JOIN_TIMEOUT)
        hung = [thread.name for thread in self._threads if thread.is_alive()]
        assert not hung, f"threads still running after {JOIN_TIMEOUT}s: {hung}"

    def run(self, jobs: list[Callable[[], object]]) -> list[object]:
        assert len(jobs) <= len(self._inboxes), "more jobs than threads"
        barrier = threading.Barrier(len(jobs))
        for index, (inbox, job) in enumerate(zip(self._inboxes, jobs, strict=False)):
            inbox.put((index, barrier, job))
        results: list[object] = [None] * len(jobs)
        for _ in jobs:
            # A job stuck in a lock wait shows up here as queue.Empty, not as a hang.
            index, result = self._results.get(timeout=JOIN_TIMEOUT)
            results[index] = result
        return results

    def _work(self, inbox: queue.SimpleQueue) -> None:
        try:
            try:
                connection.ensure_connection()
                broken = None
            except Exception as error:
                broken = error
            while (task := inbox.get()) is not None:
                index, barrier, job = task
                try:
                    if broken:
                        barrier.abort()  # release the others instead of leaving them waiting
                        raise broken
                    barrier.wait(timeout=JOIN_TIMEOUT)
                    result = job()
                except BaseException as error:
                    result = error
                self._results.put((index, result))
        finally:
            connection.close()


def declare_over(operator, *, prefecture: str, key: str, now):
    blanket = declare_disaster(
        operator=operator,
        title=f"競合試験 {key}",
        nationwide=False,
        prefectures=[prefecture],
        window_days=3,
        idempotency_key=key,
        now=now,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now)
    blanket.refresh_from_db()
    return blanket


def confirm(grant_id: int, *, by, now) -> bool:
    """True when this confirmation won, False when it was refused."""
    try:
        respond_to_grants(
            grants=SpeedGrant.objects.filter(pk=grant_id),
            keep=True,
            by=by,
            channel=Channel.PORTAL,
            now=now,
        )
    except ValidationError:
        return False
    return True


def broken_invariants(
    blanket, grant_ids: list[int], confirmed: set[int], reverted_count: int
) -> list[str]:
    """What went wrong with these grants after the race; empty when nothing did."""
    grants = {
        pk: (state, responded_at, subscription_id)
        for pk, state, responded_at, subscription_id in SpeedGrant.objects.filter(
            pk__in=grant_ids
        ).values_list("pk", "state", "responded_at", "subscription_id")
    }
    lines = dict(
        Subscription.objects.filter(pk__in=[sub for _, _, sub in grants.values()]).values_list(
            "pk", "desired_upgraded"
        )
    )
    notices = CustomerNotice.objects.filter(
        blanket_upgrade=blanket, kind=CustomerNotice.Kind.REVERTED
    )
    active = {pk for pk, (state, _, _) in grants.items() if state == SpeedGrant.State.ACTIVE}
    reverted = {pk for pk, (state, _, _) in grants.items() if state == SpeedGrant.State.REVERTED}
    problems = []
    if confirmed - active:
        problems.append(f"confirmed but not active: {sorted(confirmed - active)}")
    if active - confirmed:
        problems.append(f"active but the confirmation was refused: {sorted(active - confirmed)}")
    if lost := set(grants) - active - reverted:
        problems.append(f"neither active nor reverted: {sorted(lost)}")
    if reverted_count != len(reverted):
        problems.append(f"revert jobs counted {reverted_count}, {len(reverted)} reverted")
    if answered := {pk for pk in reverted if grants[pk][1] is not None}:
        problems.append(f"reverted yet marked answered: {sorted(answered)}")
    if slow := {pk for pk in active if not lines[grants[pk][2]]}:
        problems.append(f"active but the line is not upgraded: {sorted(slow)}")
    if fast := {pk for pk in reverted if lines[grants[pk][2]]}:
        problems.append(f"reverted but the line is still upgraded: {sorted(fast)}")
    # Every revert job of a trial runs at the same instant: one notice for the customer.
    if notices.count() != (1 if reverted else 0) or notices.filter(queued_at=None).exists():
        problems.append(f"{notices.count()} 'reverted' notices for {len(reverted)} reverted")
    return problems


def race_at_the_deadline(trial: int, crowd: Crowd, operator, shuffle) -> tuple[list[str], Counter]:
    """One trial: a fresh blanket's confirmations and revert jobs, all at its deadline."""
    # given a blanket upgrade over lines of its own (a prefecture per trial); each
    # trial's deadline is an hour before the previous one's, so its revert jobs cannot
    # touch an earlier trial's grants
    now = NOW - timedelta(hours=trial)
    prefecture = f"{trial + 1:02d}"
    lines = make_lines(GRANTS_PER_TRIAL, prefecture=prefecture)
    customer_user = UserFactory(customer=lines[0].site.customer)
    blanket = declare_over(operator, prefecture=prefecture, key=f"race-{trial}", now=now)
    grant_ids = list(blanket.grants.order_by("pk").values_list("pk", flat=True))
    assert len(grant_ids) == GRANTS_PER_TRIAL

    # when one or two revert jobs (whole chunks, or a few grants at a time) start at the
    # deadline while each grant's confirmation arrives a microsecond before it
    chunk_size = (None, 1, 5)[trial % 3]
    jobs = [
        ("revert", partial(revert_expired_grants, now=blanket.deadline, chunk_size=chunk_size))
        for _ in range(1 + trial % 2)
    ]
    just_in_time = blanket.deadline - timedelta(microseconds=1)
    jobs += [
        ("confirm", partial(confirm, pk, by=customer_user, now=just_in_time)) for pk in grant_ids
    ]
    shuffle(jobs)
    results = crowd.run([job for _, job in jobs])

    # then every grant has exactly one winner, and its line and notices agree
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, f"trial {trial}: a job failed: {errors[0]!r}"
    reverted = sum(
        result for (kind, _), result in zip(jobs, results, strict=True) if kind == "revert"
    )
    confirmed = {
        job.args[0]
        for (kind, job), result in zip(jobs, results, strict=True)
        if kind == "confirm" and result is True
    }
    won = Counter({"confirmation": len(confirmed), "revert job": reverted})
    return broken_invariants(blanket, grant_ids, confirmed, reverted), won


def test_a_confirmation_racing_the_revert_job_at_the_deadline_never_loses_the_grant(operator):
    shuffle = random.Random(20261124).shuffle  # a fixed seed: the same start order each run
    problems: dict[int, list[str]] = {}
    won = Counter()
    with Crowd(GRANTS_PER_TRIAL + 2) as crowd:
        for trial in range(TRIALS):
            broken, trial_won = race_at_the_deadline(trial, crowd, operator, shuffle)
            won += trial_won
            if broken:
                problems[trial] = broken

    assert not problems, (
        f"{len(problems)} of {TRIALS} trials broke an invariant "
        f"(wins over all trials: {dict(won)}): {problems}"
    )


def test_two_revert_jobs_at_once_revert_and_notify_each_grant_once(
    operator, settings, mailoutbox, enqueued
):
    # given 2,000 unconfirmed grants past their deadline, their "upgraded" notices sent
    assert settings.EMAIL_BACKEND == LOCMEM_EMAIL, "the e-mail count below needs locmem"
    lines = make_lines(LINES, prefecture="11")
    blanket = declare_over(operator, prefecture="11", key="two-jobs", now=NOW)
    assert blanket.grants.count() == LINES
    assert set(Subscription.objects.values_list("desired_version", flat=True)) == {1}
    send_queued_emails()
    mailoutbox.clear()
    deadline = blanket.deadline
    enqueued.clear()

    # when two revert jobs start together, taking 100 grants at a time
    with Crowd(2) as crowd:
        counts = crowd.run(
            [partial(revert_expired_grants, now=deadline, chunk_size=REVERT_CHUNK)] * 2
        )

    # then between them they revert each grant once, lower each line once, notice each once
    assert all(isinstance(count, int) for count in counts), counts
    assert sum(counts) == LINES, counts
    assert set(blanket.grants.values_list("state", flat=True)) == {SpeedGrant.State.REVERTED}
    (notice,) = CustomerNotice.objects.filter(kind=CustomerNotice.Kind.REVERTED)
    assert notice.queued_at is not None
    speeds = Counter(Subscription.objects.values_list("desired_upgraded", "desired_version"))
    assert speeds == {(False, 2): LINES}
    assert {"reconcile_speeds", "send"} <= set(enqueued), "speeds and e-mails follow on commit"

    # when two senders start together
    with Crowd(2) as crowd:
        reports = crowd.run([partial(send_queued_emails, batch_size=1)] * 2)

    # then the customer gets exactly one e-mail, listing every reverted line once
    assert all(not isinstance(report, BaseException) for report in reports), reports
    assert sum(report.sent for report in reports) == 1
    (message,) = mailoutbox
    japanese = message.body.split("English")[0]
    sites_mailed = Counter(re.findall(r"\bsite \d+\b", japanese))
    assert sites_mailed == Counter({line.site.name: 1 for line in lines})
    assert japanese.count("通常の速度に戻しました") == LINES
    assert set(message.to) == {lines[0].site.customer.email}
