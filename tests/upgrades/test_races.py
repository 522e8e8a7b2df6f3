"""Races that only PostgreSQL's real concurrency can show (DESIGN invariants 1, 2, 3, 8).

Each test starts threads that meet at a barrier and then call the services at once; each
thread has its own database connection (Django keeps one per thread), opened before the
barrier so that connecting does not stagger the start, and closed when the thread ends.
The assertions hold whatever the interleaving: they check the end state, not who won.
The crowd test runs every job of the deadline at once over thousands of grants, at the
scale an outside measurement held (issue 9), in about 15 seconds.
"""

import logging
import queue
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from subscriptions.models import Subscription
from support import followups
from support.channels import Channel
from support.models import OutboundEmail
from support.outbox import send_queued_emails
from tests.factories import CustomerFactory, UserFactory
from tests.upgrades.conftest import NOW, make_lines
from upgrades.models import BlanketUpgradeEvent, CustomerNotice, ProvisioningChange, SpeedGrant
from upgrades.provisioning import RecordingBackend
from upgrades.selectors import blanket_progress
from upgrades.services import blanket as blanket_services
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    end_blanket_grants,
    end_disaster,
    respond_to_grants,
    revert_expired_grants,
)
from upgrades.services.provisioning import reconcile_speeds

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
# The crowd at the deadline (issue 9): thousands of grants in one run, not a few dozen.
# Sized to keep the test near 30 s on a 2-core machine; the invariants do not depend on it.
CROWD_GRANTS = 4000  # grants whose deadline passes during the run
CROWD_ENDING_GRANTS = 1000  # grants of a second disaster that an operator ends meanwhile
CROWD_CUSTOMERS = 8
CROWD_ANSWERERS = 5  # threads answering through the customers' service
# Every commit that changes a speed queues the reconcile task: workers run it side by side.
CROWD_RECONCILERS = 2
# Small chunks: the two revert jobs take turns and last as long as the answers come.
CROWD_CHUNK = 10


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL's row locks and real concurrency, not {connection.vendor}")


@pytest.fixture(autouse=True)
def enqueued(monkeypatch) -> list[str]:
    """The follow-ups the services ask for on commit (support/followups.py), recorded
    instead of sent to the broker.

    In a transactional test on-commit callbacks really run; without this they would
    write messages into the broker that a worker might run against this database.
    """
    sent: list[str] = []
    short = {"support.tasks.send_queued_emails": "send"}

    def record(*, keys, now=None):
        for key in keys:
            name = key.split(":")[0]
            sent.append(short.get(name, name.rsplit(".", 1)[-1]))
        return 0

    monkeypatch.setattr(followups, "relay_due", record)
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
            "pk", "speed__desired_upgraded"
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
    assert set(Subscription.objects.values_list("speed__desired_version", flat=True)) == {1}
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
    speeds = Counter(
        Subscription.objects.values_list("speed__desired_upgraded", "speed__desired_version")
    )
    assert speeds == {(False, 2): LINES}
    assert {"reconcile_speeds", "send"} <= set(enqueued), "speeds and e-mails follow on commit"
    # the operator's counts, kept by both jobs in their own transactions, add up
    progress = blanket_progress(blanket=blanket)
    assert (progress.total, progress.pending, progress.reverted) == (LINES, 0, LINES)

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


@dataclass(frozen=True)
class Answer:
    """One customer's answer as the portal, the API or an e-mail link sends it."""

    customer_id: int
    grant_ids: list[int] | None  # None: the "all my lines" button
    keep: bool
    now: datetime  # each answer its own instant, so its caller's lines are its own


def answer_in_turn(answers: list[Answer], users: dict, halfway: threading.Event):
    """Send ``answers`` one after the other; what each one answered (grant ids)."""
    answered = []
    for index, plan in enumerate(answers):
        if index == len(answers) // 2:
            halfway.set()
        grants = SpeedGrant.objects.for_customer(plan.customer_id)
        if plan.grant_ids is not None:
            grants = grants.filter(pk__in=plan.grant_ids)
        try:
            moved = respond_to_grants(
                grants=grants,
                keep=plan.keep,
                by=users[plan.customer_id],
                channel=Channel.PORTAL if plan.grant_ids is None else Channel.API,
                now=plan.now,
            )
        except ValidationError:
            moved = []
        answered.append((plan, [grant.pk for grant in moved]))
    return answered


def end_midway(halfway: threading.Event, *, blanket, operator, now: datetime) -> int:
    """The operator ends the other disaster once the answers are half-way through; its
    grants then end in chunks while the answers go on (the task, run at once)."""
    halfway.wait(timeout=JOIN_TIMEOUT)
    end_disaster(disaster=blanket.disaster, operator=operator, now=now)
    return end_blanket_grants(blanket_id=blanket.pk, now=now, chunk_size=CROWD_CHUNK)


class Countdown:
    """``over`` is set once ``count`` jobs wrapped by ``counting`` have returned."""

    def __init__(self, count: int) -> None:
        self._left, self._lock, self.over = count, threading.Lock(), threading.Event()

    def counting(self, job: Callable[[], object]) -> Callable[[], object]:
        def run():
            try:
                return job()
            finally:
                with self._lock:
                    self._left -= 1
                    if not self._left:
                        self.over.set()

        return run


class NetworkRecord(RecordingBackend):
    """The recording backend, keeping the id of every change the network was sent."""

    def __init__(self) -> None:
        self.change_ids: list[str] = []

    def apply(self, changes) -> None:
        super().apply(changes)
        self.change_ids.extend(change.change_id for change in changes)


def reconcile_until(over: threading.Event, *, network: NetworkRecord, now: datetime) -> int:
    """The reconcile task, run again and again while the other jobs are at work."""
    applied = 0
    while not over.is_set():
        applied += reconcile_speeds(backend=network, now=now, batch_size=200).applied
        over.wait(timeout=0.01)
    return applied


def plan_answers(grants_by_customer: dict[int, list[int]], rng, *, before) -> list[Answer]:
    """About half the lines answered one by one; ten answers of a few lines each per
    customer (the API); the "all my lines" button for two customers. Shuffled, each a
    microsecond apart, the last one a microsecond before ``before`` (the deadline)."""
    plans = []
    for customer_id, grant_ids in grants_by_customer.items():
        plans += [(customer_id, [pk], rng.random() < 0.6) for pk in grant_ids if rng.random() < 0.5]
        plans += [
            (customer_id, rng.sample(grant_ids, rng.randint(2, 8)), rng.random() < 0.6)
            for _ in range(10)
        ]
    plans += [
        (customer_id, None, rng.random() < 0.5)
        for customer_id in rng.sample(sorted(grants_by_customer), 2)
    ]
    rng.shuffle(plans)
    return [
        Answer(customer_id, grant_ids, keep, before - timedelta(microseconds=len(plans) - n))
        for n, (customer_id, grant_ids, keep) in enumerate(plans)
    ]


def broken_audit_chains(lines: list[int], network: NetworkRecord) -> list[str]:
    """Lines whose speed changes the audit does not tell in full, and changes sent twice.

    Each line's audit rows, in order, must chain from normal speed to the speed the
    network has now (each change starting where the previous one ended), and be exactly
    the changes the network was sent."""
    problems = []
    twice = [change for change, count in Counter(network.change_ids).items() if count > 1]
    if twice:
        problems.append(f"changes sent to the network twice: {twice[:10]}")
    audited = defaultdict(list)
    for row in (
        ProvisioningChange.objects.filter(subscription_id__in=lines)
        .order_by("subscription_id", "version")
        .values_list("subscription_id", "version", "from_kbps", "to_kbps")
    ):
        audited[row[0]].append(row[1:])
    sent = set(network.change_ids)
    recorded = {f"{line}-{version}" for line, rows in audited.items() for version, *_ in rows}
    if sent != recorded:
        problems.append(
            f"sent but not audited: {sorted(sent - recorded)[:10]}, "
            f"audited but not sent: {sorted(recorded - sent)[:10]}"
        )
    speeds = Subscription.objects.filter(pk__in=lines).values_list(
        "pk", "speed__applied_upgraded", "plan__normal_kbps", "plan__upgraded_kbps"
    )
    for line, upgraded, normal, fast in speeds:
        speed = normal
        for _, from_kbps, to_kbps in audited[line]:
            if from_kbps != speed:
                problems.append(f"line {line}: a change from {from_kbps}, the line was {speed}")
            speed = to_kbps
        if speed != (fast if upgraded else normal):
            problems.append(f"line {line}: audited to {speed}, upgraded on the network={upgraded}")
    return problems


def test_two_reconcilers_at_once_share_the_lines_and_push_each_change_once(operator):
    # given 2,000 lines a declaration upgraded, none applied on the network yet
    make_lines(LINES, prefecture="11")
    declare_over(operator, prefecture="11", key="two-reconcilers", now=NOW)
    network = NetworkRecord()

    # when two reconcile runs start together, 100 lines a batch
    with Crowd(2) as crowd:
        results = crowd.run(
            [partial(reconcile_speeds, backend=network, now=NOW, batch_size=100)] * 2
        )

    # then they shared the work (both pushed batches) and no line went twice
    assert all(not isinstance(result, BaseException) for result in results), results
    assert sum(result.applied for result in results) == LINES
    assert all(result.batches for result in results), "one run took every batch"
    assert len(network.change_ids) == LINES
    assert len(set(network.change_ids)) == LINES, "a change was pushed twice"
    assert not Subscription.objects.out_of_sync().exists()
    assert ProvisioningChange.objects.count() == LINES


HANDOVER_TRIALS = 2
HANDOVER_LINES = 60  # per prefecture and trial
HANDOVER_CHUNK = 10  # small chunks: the declaration and the ending take turns


def test_an_ending_handing_lines_over_while_the_other_disaster_grants_gives_each_line_one_grant(
    operator, monkeypatch
):
    # A granting chunk looks for grants of its blanket in its range, then inserts its own
    # without a conflict check: the look and the insert are held apart here, so that an
    # ending handing lines over into that range meanwhile would break the insert.
    grant_pending = blanket_services._grant_pending

    def grant_pending_after_a_pause(*, skip_conflicts=True, **kwargs):
        if not skip_conflicts:
            time.sleep(0.05)
        return grant_pending(skip_conflicts=skip_conflicts, **kwargs)

    monkeypatch.setattr(blanket_services, "_grant_pending", grant_pending_after_a_pause)
    problems = {}
    with Crowd(2) as crowd:
        for trial in range(HANDOVER_TRIALS):
            # given a main shock over one prefecture, its lines granted, and an
            # aftershock just declared over it and a second prefecture, not granted yet
            main_area, other_area = f"{2 * trial + 1:02d}", f"{2 * trial + 2:02d}"
            lines = make_lines(HANDOVER_LINES, prefecture=main_area) + make_lines(
                HANDOVER_LINES, prefecture=other_area
            )
            now = NOW + timedelta(minutes=trial)
            main = declare_over(operator, prefecture=main_area, key=f"main-{trial}", now=now)
            aftershock = declare_disaster(
                operator=operator,
                title=f"余震 {trial}",
                nationwide=False,
                prefectures=[main_area, other_area],
                idempotency_key=f"aftershock-{trial}",
                confirm_overlap=True,
                now=now,
            )
            end_disaster(disaster=main.disaster, operator=operator, now=now)

            # when the aftershock's granting and the main shock's ending run at once, the
            # ending handing its lines over to the aftershock
            results = crowd.run(
                [
                    partial(
                        apply_blanket_upgrade,
                        blanket_id=aftershock.pk,
                        now=now,
                        chunk_size=HANDOVER_CHUNK,
                    ),
                    partial(
                        end_blanket_grants, blanket_id=main.pk, now=now, chunk_size=HANDOVER_CHUNK
                    ),
                ]
            )

            # then neither failed and every line has one boosting grant, the aftershock's
            errors = [result for result in results if isinstance(result, BaseException)]
            per_line = Counter(
                SpeedGrant.objects.boosting()
                .filter(subscription__in=lines)
                .values_list("subscription_id", "blanket_upgrade_id")
            )
            expected = Counter({(line.pk, aftershock.pk): 1 for line in lines})
            if errors or per_line != expected:
                problems[trial] = (errors, per_line - expected, expected - per_line)

    assert not problems, problems


def test_thousands_of_grants_past_their_deadline_meet_the_revert_jobs_answers_and_an_ending(
    operator, capsys, caplog
):
    started = time.monotonic()
    caplog.set_level(logging.WARNING, logger="upgrades.provisioning")  # a line per change
    # given thousands of lines of several customers upgraded by a disaster whose deadline
    # is now, and lines of the same customers upgraded by a later disaster, all of them
    # upgraded on the network too
    customers = CustomerFactory.create_batch(CROWD_CUSTOMERS)
    for customer in customers:
        make_lines(CROWD_GRANTS // CROWD_CUSTOMERS, prefecture="11", customer=customer)
        make_lines(CROWD_ENDING_GRANTS // CROWD_CUSTOMERS, prefecture="13", customer=customer)
    users = {customer.pk: UserFactory(customer=customer) for customer in customers}
    expiring = declare_over(operator, prefecture="11", key="crowd-expiring", now=NOW)
    ending = declare_over(
        operator, prefecture="13", key="crowd-ending", now=NOW + timedelta(days=1)
    )
    network = NetworkRecord()
    reconcile_speeds(backend=network, now=NOW + timedelta(days=1))
    grants = {
        pk: (blanket_id, subscription_id, customer_id)
        for pk, blanket_id, subscription_id, customer_id in SpeedGrant.objects.values_list(
            "pk", "blanket_upgrade_id", "subscription_id", "subscription__site__customer_id"
        )
    }
    assert Counter(blanket for blanket, _, _ in grants.values()) == {
        expiring.pk: CROWD_GRANTS,
        ending.pk: CROWD_ENDING_GRANTS,
    }
    lines = [line for _, line, _ in grants.values()]
    assert not Subscription.objects.out_of_sync().exists()
    grants_by_customer = defaultdict(list)
    for pk, (_, _, customer_id) in grants.items():
        grants_by_customer[customer_id].append(pk)
    deadline = expiring.deadline
    answers = plan_answers(grants_by_customer, random.Random(20261125), before=deadline)

    # when, at the deadline, two revert jobs (a millisecond apart, as two beat runs), the
    # customers' answers in several threads, two reconciles and, half-way, the ending of
    # the other disaster all run at once
    halfway = threading.Event()
    jobs = [
        partial(revert_expired_grants, now=deadline, chunk_size=CROWD_CHUNK),
        partial(
            revert_expired_grants,
            now=deadline + timedelta(milliseconds=1),
            chunk_size=CROWD_CHUNK,
        ),
        partial(end_midway, halfway, blanket=ending, operator=operator, now=deadline),
    ] + [
        partial(answer_in_turn, answers[n::CROWD_ANSWERERS], users, halfway)
        for n in range(CROWD_ANSWERERS)
    ]
    countdown = Countdown(len(jobs))
    race_started = time.monotonic()
    reconciles = [partial(reconcile_until, countdown.over, network=network, now=deadline)]
    with Crowd(len(jobs) + CROWD_RECONCILERS) as crowd:
        results = crowd.run(
            [countdown.counting(job) for job in jobs] + reconciles * CROWD_RECONCILERS
        )
    race_seconds = time.monotonic() - race_started
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, f"a job failed: {errors[0]!r}"
    reverted_by_job = results[:2]
    ended_count = results[2]
    answered = [pair for result in results[3 : len(jobs)] for pair in result]
    reconcile_speeds(backend=network, now=deadline + timedelta(minutes=5))

    # then each grant was answered at most once, by the caller the service told
    kept = Counter(pk for plan, pks in answered if plan.keep for pk in pks)
    declined = Counter(pk for plan, pks in answered if not plan.keep for pk in pks)
    twice = sorted(pk for pk, count in (kept + declined).items() if count > 1)
    assert not twice, f"grants answered more than once: {twice[:20]}"
    state = {
        pk: (grant_state, responded_at, ended_at)
        for pk, grant_state, responded_at, ended_at in SpeedGrant.objects.values_list(
            "pk", "state", "responded_at", "ended_at"
        )
    }
    silently = {pk for pk, (_, at, _) in state.items() if at is not None} - set(kept | declined)
    assert not silently, f"answered in the database, no caller told: {sorted(silently)[:20]}"

    # and each grant ended where its answer (or the lack of one) puts it: a confirmed one
    # is never reverted, a declined one declined, every other one reverted or ended, none
    # left pending or lost
    def expected(pk: int) -> str:
        if pk in declined:
            return SpeedGrant.State.DECLINED
        if grants[pk][0] == ending.pk:
            return SpeedGrant.State.ENDED
        return SpeedGrant.State.ACTIVE if pk in kept else SpeedGrant.State.REVERTED

    wrong = [(pk, state[pk][0], expected(pk)) for pk in grants if state[pk][0] != expected(pk)]
    assert not wrong, f"{len(wrong)} grants in the wrong state (grant, is, should): {wrong[:20]}"
    final = Counter(grant_state for grant_state, _, _ in state.values())
    assert sum(reverted_by_job) == final[SpeedGrant.State.REVERTED], reverted_by_job
    assert ended_count == final[SpeedGrant.State.ENDED]
    history = BlanketUpgradeEvent.objects.filter(
        blanket_upgrade=expiring, kind=BlanketUpgradeEvent.Kind.REVERTED
    )
    assert sum(event.detail["grants"] for event in history) == sum(reverted_by_job)

    # and each customer is told once per event (a revert run's instant, the ending) of the
    # lines it moved, and each notice becomes one e-mail
    for blanket, kind, moved_state in (
        (expiring, CustomerNotice.Kind.REVERTED, SpeedGrant.State.REVERTED),
        (ending, CustomerNotice.Kind.DISASTER_ENDED, SpeedGrant.State.ENDED),
    ):
        notices = CustomerNotice.objects.filter(blanket_upgrade=blanket, kind=kind)
        noticed = Counter(notices.values_list("customer_id", "created_at"))
        due = {(grants[pk][2], state[pk][2]) for pk in grants if state[pk][0] == moved_state}
        assert set(noticed) == due, (kind, set(noticed) ^ due)
        assert max(noticed.values()) == 1, (kind, noticed.most_common(3))
        assert not notices.filter(queued_at=None).exists(), f"{kind} notices not handed over"
        mailed = Counter(
            OutboundEmail.objects.filter(composer="upgrades.notice").values_list(
                "composer_ref", flat=True
            )
        )
        assert all(mailed[pk] == 1 for pk in notices.values_list("pk", flat=True)), kind

    # and each line is wanted fast exactly while a grant boosts it, and after the last
    # reconcile the network has every line at that speed
    boosted = {grants[pk][1] for pk in grants if state[pk][0] in SpeedGrant.BOOSTING}
    speeds = Subscription.objects.filter(pk__in=lines).values_list(
        "pk", "speed__desired_upgraded", "speed__applied_upgraded"
    )
    wanted_wrong = [line for line, desired, _ in speeds if desired != (line in boosted)]
    assert not wanted_wrong, f"desired speed not what the grants say: {wanted_wrong[:20]}"
    unsynced = [line for line, desired, applied in speeds if desired != applied]
    assert not unsynced, f"network not at the desired speed: {unsynced[:20]}"

    # and every speed change on the network is audited once, in an unbroken chain
    chains = broken_audit_chains(lines, network)
    assert not chains, chains[:20]

    with capsys.disabled():
        print(
            f"\ncrowd at the deadline: {len(grants)} grants ({CROWD_GRANTS} expiring, "
            f"{CROWD_ENDING_GRANTS} ending) of {CROWD_CUSTOMERS} customers; "
            f"{len(answers)} answers by {CROWD_ANSWERERS} threads "
            f"({sum(not pks for _, pks in answered)} refused) answered "
            f"{kept.total()} kept + {declined.total()} declined grants; "
            f"reverted {sum(reverted_by_job)} ({' + '.join(map(str, reverted_by_job))}), "
            f"ended {ended_count}; {len(network.change_ids)} changes sent to the network; "
            f"race {race_seconds:.1f} s, test {time.monotonic() - started:.1f} s"
        )
