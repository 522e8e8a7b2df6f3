"""The satellite network is sick: down for minutes, then slow for some lines.

A real worker and a real beat run on a Redis of the test's own against a real HTTP stand-in
for the network, with the backoffs scaled from minutes to seconds. What issue 9 measured
before: 500 declines during an outage became 505 retry chains and 3,987 POSTs, and one
batch slower than the client's timeout was POSTed 46 times while 1,435 other lines were
never tried. Here the POSTs follow the clock and the backoff, not the number of commits,
and a slow batch waits out its own backoff while the other lines go through.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from subscriptions.models import Subscription
from support.channels import Channel
from support.followups import key_of
from support.models import FollowUp
from tests.factories import OperatorUserFactory, UserFactory
from tests.faults import FAST_RELIABILITY_SETTINGS, RedisBroker, fleet
from tests.reliability.conftest import duplicates
from tests.upgrades.conftest import make_lines
from tests.upgrades.network import FakeNetwork
from tests.worker import wait_for
from upgrades.models import SpeedGrant
from upgrades.services.blanket import declare_disaster, respond_to_grants
from upgrades.tasks import reconcile_speeds

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Minutes scaled to seconds: a batch the network fails waits 1 s, then 2 s, then 4 s
# at most (each less up to half, the jitter); a failed reconcile run waits 1-4 s too
# (FAST_RELIABILITY_SETTINGS), and beat asks for one every 3 s.
BACKOFF_BASE, BACKOFF_MAX, BATCH, MAX_FAILED_BATCHES = 1, 4, 50, 2
SICK_NETWORK_SETTINGS = {
    "PROVISIONING_BACKEND": "http",
    "PROVISIONING_BACKOFF_BASE_SECONDS": str(BACKOFF_BASE),
    "PROVISIONING_BACKOFF_MAX_SECONDS": str(BACKOFF_MAX),
    "PROVISIONING_BATCH_SIZE": str(BATCH),
    "PROVISIONING_MAX_FAILED_BATCHES": str(MAX_FAILED_BATCHES),
}
RECONCILE_KEY = key_of(reconcile_speeds.name, ())


def declare(*, title: str, prefecture: str) -> None:
    declare_disaster(
        operator=OperatorUserFactory(),
        title=title,
        nationwide=False,
        prefectures=[prefecture],
        idempotency_key=title,
        now=timezone.now(),
    )


def declared_and_applied(lines: int, customer) -> list[Subscription]:
    """``lines`` lines of ``customer`` upgraded by a disaster, fast on the network."""
    subscriptions = make_lines(lines, prefecture="14", customer=customer)
    declare(title="神奈川県西部地震", prefecture="14")
    assert wait_for(
        lambda: Subscription.objects.filter(speed__applied_upgraded=True).count() == lines, 60
    ), "the disaster was not applied before the network fell sick"
    return subscriptions


def in_sync() -> bool:
    return not Subscription.objects.out_of_sync().exists()


def changes_of(lines: list[Subscription], *, version: int) -> list[str]:
    """The change ids the network knows the lines' ``version``-th speed change by."""
    return [f"{line.pk}-{version}" for line in lines]


def pks(lines: list[Subscription]) -> list[int]:
    return [line.pk for line in lines]


def runs_in(worker_log: str) -> int:
    """Reconcile runs in the worker's log (a message that found its work done is none)."""
    ended = [
        line
        for line in worker_log.splitlines()
        if "Task upgrades.tasks.reconcile_speeds[" in line
        and ("] succeeded" in line or "] raised" in line)
    ]
    return len(ended) - worker_log.count("reconcile_speeds(): nothing waits")


def most_posts_of_a_line(seconds: float) -> int:
    """The most times the network can see one line in ``seconds`` while it fails it each
    time: each POST comes at least half the line's previous backoff after the one before."""
    posts, earliest = 1, 0.0
    while (earliest := earliest + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (posts - 1)) / 2) < seconds:
        posts += 1
    return posts


def most_runs(seconds: float) -> int:
    """The reconcile runs ``seconds`` of failures allow: beat's, one every
    RECONCILE_INTERVAL_SECONDS, and the outbox's, one per backoff of the merged follow-up
    (at least half FOLLOWUP_BACKOFF_BASE_SECONDS), plus one of each under way. A commit
    landing during a failed run can start one more at once, so this is a budget with
    room for those (a run POSTs MAX_FAILED_BATCHES at most), not an exact count."""
    beat = float(FAST_RELIABILITY_SETTINGS["RECONCILE_INTERVAL_SECONDS"])
    retry = float(FAST_RELIABILITY_SETTINGS["FOLLOWUP_BACKOFF_BASE_SECONDS"]) / 2
    return int(seconds / beat + seconds / retry) + 2


class FollowUpSampler(threading.Thread):
    """Samples, every 50 ms, the reconcile follow-up: its rows (one per commit that asked),
    the due times they wait for (rows sharing one are merged: one message out, or one
    backoff), rows just committed and not merged yet, and the runs holding rows."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.most_rows = self.most_scheduled = self.most_unmerged = self.most_running = 0

    def run(self) -> None:
        try:
            while not self.stopping.wait(0.05):
                rows = list(
                    FollowUp.objects.filter(key=RECONCILE_KEY).values_list(
                        "due_at", "started_at", "run_id"
                    )
                )
                # After the query: a row committed just before it is due, not scheduled.
                now = timezone.now()
                waiting = [due for due, started, _ in rows if started is None]
                self.most_rows = max(self.most_rows, len(rows))
                self.most_scheduled = max(
                    self.most_scheduled, len({due for due in waiting if due > now})
                )
                self.most_unmerged = max(
                    self.most_unmerged, len([due for due in waiting if due <= now])
                )
                self.most_running = max(
                    self.most_running, len({run for _, started, run in rows if started})
                )
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def test_an_outage_costs_posts_by_the_clock_not_by_the_commits(monkeypatch):
    # Kanagawa's water utility runs 400 pumping stations on the BCP line. An earthquake
    # is declared and every line goes fast. Then the satellite network's management
    # system goes down, and over the next seconds the utility's staff, clearing the
    # banner station by station from four desks, return 300 lines to normal: 300
    # commits, each asking for a reconcile. The network comes back; every station runs
    # the speed wanted, each change taken once.
    utility = UserFactory(email="kanri@suido.example.jp")
    with (
        FakeNetwork() as network,
        RedisBroker() as broker,
        fleet(monkeypatch, broker, PROVISIONING_URL=network.url, **SICK_NETWORK_SETTINGS) as f,
    ):
        # given 400 lines upgraded by a disaster and applied
        lines = declared_and_applied(400, utility.customer)
        declined, kept = lines[:300], lines[300:]
        grants = list(
            SpeedGrant.objects.filter(subscription__in=declined)
            .order_by("subscription_id")
            .values_list("pk", flat=True)
        )

        # when the network goes down and the staff decline 300 lines, one commit each
        network.down = True
        posts_before = network.requests
        sampler = FollowUpSampler()
        sampler.start()
        outage_started = time.monotonic()

        def decline(share: list[int]) -> int:
            try:
                for grant in share:
                    respond_to_grants(
                        grants=SpeedGrant.objects.filter(pk=grant),
                        keep=False,
                        by=utility,
                        channel=Channel.PORTAL,
                        now=timezone.now(),
                    )
                    time.sleep(0.1)  # a click, the page, the next click
                return len(share)
            finally:
                connection.close()

        with ThreadPoolExecutor(4) as desks:
            commits = sum(desks.map(decline, [grants[i::4] for i in range(4)]))
        time.sleep(3)  # the outage goes on after the last decline
        outage = time.monotonic() - outage_started
        posts = network.requests - posts_before
        posted = {change: network.posted[change] for change in changes_of(declined, version=2)}
        sampler.stop()
        runs = runs_in(f.worker.output())

        # then the outage cost POSTs by the clock and the backoff, not by the commits
        print(
            f"\noutage {outage:.1f} s: {commits} commits, {runs} reconcile runs (budget "
            f"{most_runs(outage)}), {posts} POSTs "
            f"({posts / outage * 60:.0f} a minute; bound {2 * most_runs(outage)}), each "
            f"declined line POSTed at most {max(posted.values())} times "
            f"(bound {most_posts_of_a_line(outage)}); reconcile follow-up: at most "
            f"{sampler.most_rows} rows, {sampler.most_scheduled} due times, "
            f"{sampler.most_unmerged} not merged yet, {sampler.most_running} run(s) at once"
        )
        assert commits == 300
        assert min(posted.values()) >= 1, "a declined line was never tried"
        assert max(posted.values()) <= most_posts_of_a_line(outage)
        assert posts <= MAX_FAILED_BATCHES * most_runs(outage) < commits / 3
        assert sampler.most_scheduled <= 2, "reconcile follow-ups were not merged"
        assert sampler.most_unmerged <= 4  # one per desk, between its commit and its relay
        assert sampler.most_running <= 1
        assert network.applied.total() == 400, "the network took a change while down?"

        # and when the network comes back, every line converges
        network.down = False
        back = time.monotonic()
        assert wait_for(in_sync, 30), "lines still out of sync after the network returned"
        recovery = time.monotonic() - back
        print(f"network back: every line in sync {recovery:.1f} s later")

    # the network runs the wanted speeds and took each change once
    assert {network.speeds[line.contract_number] for line in declined} == {256}
    assert {network.speeds[line.contract_number] for line in kept} == {8192}
    assert duplicates(network.applied.elements()) == {}
    assert recovery < 2 * BACKOFF_MAX + 3


def test_a_slow_batch_waits_out_its_backoff_while_the_other_lines_go_through(monkeypatch):
    # A typhoon is declared over 300 lines in Okinawa. The network's management system is
    # sick for the 50 lines of the lowest ids (the first batch): it applies them but
    # answers in 1.5 s, and the portal waits 0.5 s. The other 250 lines go fast at once;
    # the slow batch is tried again after each of its backoffs, not on every run. Then
    # the network is well again and the slow batch goes through too.
    customer = UserFactory(email="bousai@naha.example.jp").customer
    lines = make_lines(300, prefecture="47", customer=customer)
    slow, others = lines[:BATCH], lines[BATCH:]
    with (
        FakeNetwork(slow_lines={line.contract_number for line in slow}, delay=1.5) as network,
        RedisBroker() as broker,
        fleet(
            monkeypatch,
            broker,
            PROVISIONING_URL=network.url,
            PROVISIONING_TIMEOUT_SECONDS="0.5",
            **SICK_NETWORK_SETTINGS,
        ) as f,
    ):
        # when the disaster is declared and the network first sees the slow batch
        declare(title="台風10号", prefecture="47")
        assert wait_for(lambda: network.requests, 30)
        declared = time.monotonic()

        # then the other lines go fast within seconds
        assert wait_for(
            lambda: (
                not Subscription.objects.out_of_sync().filter(pk__in=pks(others)).exists()
                and Subscription.objects.filter(
                    pk__in=pks(others), speed__applied_upgraded=True
                ).exists()
            ),
            15,
        ), "the slow batch held back the other lines"
        others_done = time.monotonic() - declared
        time.sleep(8)  # the network stays sick for the slow batch
        sick = time.monotonic() - declared
        slow_posts = max(network.posted[change] for change in changes_of(slow, version=1))
        assert Subscription.objects.out_of_sync().count() == BATCH

        # and when the network is well again, the slow batch goes through too
        network.slow_lines = set()
        well = time.monotonic()
        assert wait_for(in_sync, 30), "the slow batch never went through"
        recovery = time.monotonic() - well
        runs = runs_in(f.worker.output())
        print(
            f"\n{len(others)} other lines in sync {others_done:.1f} s after the slow batch's "
            f"first POST; the slow batch POSTed {slow_posts} times in {sick:.1f} s (bound "
            f"{most_posts_of_a_line(sick)}) and {network.requests} POSTs in all, "
            f"{runs} reconcile runs; network well: slow batch in sync {recovery:.1f} s later"
        )

    assert others_done < 5
    assert 2 <= slow_posts <= most_posts_of_a_line(sick)
    # the other lines: one POST each, never mixed with the slow batch
    assert all(network.posted[change] == 1 for change in changes_of(others, version=1))
    assert all(
        not set(batch) & {line.contract_number for line in slow}
        or set(batch) <= {line.contract_number for line in slow}
        for batch in network.batches
    )
    # the network took every slow repeat (unheard) under the same change id
    assert all(network.applied[c] == network.posted[c] for c in changes_of(slow, version=1))
    assert {network.speeds[line.contract_number] for line in lines} == {8192}
    assert recovery < 2 * BACKOFF_MAX + 3
