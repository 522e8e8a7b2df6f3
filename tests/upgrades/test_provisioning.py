"""Wanted speeds reach the network through a real HTTP endpoint, outages included."""

from datetime import timedelta

import pytest

from subscriptions.models import LineSpeed, OutOfSyncTally, Subscription
from tests.upgrades.conftest import NOW, make_lines
from tests.upgrades.network import FakeNetwork
from upgrades.models import ProvisioningChange
from upgrades.provisioning import HttpBackend, ProvisioningUnavailable, RecordingBackend
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster, revert_expired_grants
from upgrades.services.provisioning import (
    ReconcileIncomplete,
    ReconcileResult,
    reconcile_speeds,
    set_aside_delay,
)

pytestmark = pytest.mark.django_db

BASE, CEILING = 15, 600


@pytest.fixture(autouse=True)
def backoff(settings):
    # The schedule the bounds below are derived from: the defaults, pinned here.
    settings.PROVISIONING_BACKOFF_BASE_SECONDS = BASE
    settings.PROVISIONING_BACKOFF_MAX_SECONDS = CEILING
    settings.PROVISIONING_MAX_FAILED_BATCHES = 2
    settings.PROVISIONING_RUN_SECONDS = 240


def declare(operator, key="k"):
    blanket = declare_disaster(
        operator=operator,
        title="台風",
        nationwide=True,
        prefectures=[],
        idempotency_key=key,
        now=NOW,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW)
    return blanket


def run(backend, at) -> ReconcileResult:
    """A reconcile as a commit or a retry asks for one; lines waiting out a backoff are
    what the exception says, not an error here."""
    try:
        return reconcile_speeds(backend=backend, now=at, batch_size=10)
    except ReconcileIncomplete as incomplete:
        return incomplete.result


def most_posts_within(seconds: float) -> int:
    """The most times the network can see one line in ``seconds`` when it fails it each
    time: each POST comes at least half the line's previous backoff after the one before
    (more if it shared a batch with lines that had failed more often)."""
    posts, earliest = 1, 0.0
    while (earliest := earliest + min(CEILING, BASE * 2 ** (posts - 1)) / 2) < seconds:
        posts += 1
    return posts


def test_an_outage_delays_speed_changes_and_loses_none(operator):
    lines = make_lines(25)
    declare(operator)

    with FakeNetwork() as network:
        backend = HttpBackend(network.url, timeout=5)
        # the network is down: every attempt fails, nothing counts as applied
        network.down = True
        for attempt in range(3):
            with pytest.raises(ProvisioningUnavailable):
                reconcile_speeds(
                    backend=backend, now=NOW + timedelta(minutes=attempt), batch_size=10
                )
            assert not Subscription.objects.filter(speed__applied_upgraded=True).exists()
        # it recovers: the retry converges once the backoffs (at most a minute) are over
        network.down = False
        result = reconcile_speeds(backend=backend, now=NOW + timedelta(minutes=5), batch_size=10)
        requests_when_converged = network.requests
        again = reconcile_speeds(backend=backend, now=NOW + timedelta(minutes=6), batch_size=10)

    assert result.applied == 25 and result.batches == 3
    assert network.speeds == {line.contract_number: 8192 for line in lines}
    assert set(network.applied.values()) == {1}, "a change was applied twice"
    assert not Subscription.objects.out_of_sync().exists()
    assert again.applied == 0 and network.requests == requests_when_converged
    changes = ProvisioningChange.objects.all()
    assert changes.count() == 25
    assert {(c.from_kbps, c.to_kbps) for c in changes} == {(256, 8192)}
    assert all(c.cause.startswith("blanket upgrade") for c in changes)


def test_the_audit_keeps_the_cause_as_the_operator_wrote_it(operator):
    # given a disaster whose title holds what an array's text form would misread
    make_lines(12)
    title = '台風 "10号", {緊急} \\ NULL'
    blanket = declare_disaster(
        operator=operator,
        title=title,
        nationwide=True,
        prefectures=[],
        idempotency_key="quoted",
        now=NOW,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW)

    # when the network takes the lines in two batches
    reconcile_speeds(backend=RecordingBackend(), now=NOW, batch_size=10)

    # then each line's audit row names the disaster exactly
    causes = list(ProvisioningChange.objects.values_list("cause", flat=True))
    assert causes == [f"blanket upgrade {blanket.pk}: {title} (declared by {operator.email})"] * 12


def test_a_run_sends_all_its_batches_over_one_connection(operator):
    lines = make_lines(25)
    declare(operator)

    with FakeNetwork(keep_alive=True) as network:
        backend = HttpBackend(network.url, timeout=5)
        result = reconcile_speeds(backend=backend, now=NOW, batch_size=10)
        backend.close()

    assert (result.applied, network.requests) == (25, 3)
    assert network.connections == 1
    assert network.speeds == {line.contract_number: 8192 for line in lines}


def test_a_revert_is_pushed_back_to_normal_speed_with_its_own_audit_row(operator):
    lines = make_lines(3)
    blanket = declare(operator)
    reconcile_speeds(backend=RecordingBackend(), now=NOW)

    revert_expired_grants(now=blanket.deadline)
    with FakeNetwork() as network:
        reconcile_speeds(backend=HttpBackend(network.url), now=blanket.deadline)

    assert network.speeds == {line.contract_number: 256 for line in lines}
    reverts = ProvisioningChange.objects.filter(upgraded=False)
    assert {(c.from_kbps, c.to_kbps, c.version) for c in reverts} == {(8192, 256, 2)}
    assert {c.cause for c in reverts} == {"not confirmed before the deadline"}


def test_a_line_held_by_another_run_is_left_alone_until_its_lease_ends(operator):
    make_lines(4)
    declare(operator)
    LineSpeed.objects.filter(subscription=Subscription.objects.order_by("pk").first()).update(
        provisioning_lease_until=NOW + timedelta(minutes=2)
    )

    first = reconcile_speeds(backend=RecordingBackend(), now=NOW)
    later = reconcile_speeds(backend=RecordingBackend(), now=NOW + timedelta(minutes=3))

    assert (first.applied, later.applied) == (3, 1)


class StalledBackend(RecordingBackend):
    """A network that answers the first batch only after another run, started once the
    first run's lease has ended, has taken and recorded the same lines."""

    def __init__(self):
        self.other = None

    def apply(self, changes):
        super().apply(changes)
        if self.other is None:
            self.other = reconcile_speeds(
                backend=RecordingBackend(), now=NOW + timedelta(minutes=3), batch_size=10
            )


def test_a_run_whose_lease_ran_out_leaves_the_lines_to_the_run_that_took_them(operator):
    make_lines(4)
    declare(operator)
    backend = StalledBackend()

    first = reconcile_speeds(backend=backend, now=NOW, batch_size=10)

    # the later run pushed and recorded the lines; the first, back late, recorded none of
    # them and did not fail, and the count of lines waiting for the network stays true
    assert (backend.other.applied, first.applied) == (4, 4)
    assert not LineSpeed.objects.out_of_sync().exists()
    assert OutOfSyncTally.objects.total() == 0
    assert ProvisioningChange.objects.count() == 4
    assert all(line.speed.applied_upgraded for line in Subscription.objects.all())


def test_an_unreachable_network_is_an_outage_not_a_crash(operator):
    make_lines(1)
    declare(operator)

    with pytest.raises(ProvisioningUnavailable):
        reconcile_speeds(backend=HttpBackend("http://127.0.0.1:9/speeds", timeout=2), now=NOW)

    # the line waits out its first backoff (15 s, halved at most)...
    line = Subscription.objects.get()
    assert line.speed.provisioning_failures == 1
    assert NOW + timedelta(seconds=7.5) <= line.speed.provisioning_lease_until
    assert line.speed.provisioning_lease_until <= NOW + timedelta(seconds=16)
    # ...during which a run, even against a network that answers, does not send it
    with pytest.raises(ReconcileIncomplete) as waiting:
        reconcile_speeds(backend=RecordingBackend(), now=NOW + timedelta(seconds=7))
    assert waiting.value.result.applied == 0
    assert waiting.value.result.retry_at == line.speed.provisioning_lease_until
    # and after it, the line goes through and its failures are forgotten
    after = reconcile_speeds(backend=RecordingBackend(), now=NOW + timedelta(seconds=16))
    line.refresh_from_db()
    assert after.applied == 1 and after.retry_at is None
    assert (line.speed.applied_upgraded, line.speed.provisioning_failures) == (True, 0)


def test_a_set_aside_delay_doubles_up_to_the_maximum_and_is_jittered():
    drawn = {n: [set_aside_delay(n).total_seconds() for _ in range(200)] for n in range(1, 9)}

    for failures, delays in drawn.items():
        full = min(CEILING, BASE * 2 ** (failures - 1))  # 15, 30, 60 … 480, 600, 600
        assert full / 2 <= min(delays) and max(delays) <= full
        assert len(set(delays)) > 100, "batches set aside together would come back together"
    # growing: up to the cap, each failure's delays start where the last one's end
    assert all(max(drawn[n]) <= min(drawn[n + 1]) for n in range(1, 6))
    assert set_aside_delay(32767) <= timedelta(seconds=CEILING)


def test_a_run_gives_up_after_two_failed_batches_and_leaves_the_other_lines_alone(operator):
    make_lines(50)
    declare(operator)

    with FakeNetwork() as network:
        network.down = True
        with pytest.raises(ReconcileIncomplete) as incomplete:
            reconcile_speeds(backend=HttpBackend(network.url, timeout=5), now=NOW, batch_size=10)

    result = incomplete.value.result
    assert network.requests == 2
    assert (result.applied, result.batches, result.set_aside, result.more) == (0, 0, 2, True)
    waiting = Subscription.objects.out_of_sync()
    assert waiting.filter(speed__provisioning_failures=1).count() == 20
    assert (
        waiting.filter(speed__provisioning_failures=0, speed__provisioning_lease_until=None).count()
        == 30
    )


def test_a_run_stops_claiming_when_its_time_is_up_and_says_lines_remain(operator, settings):
    make_lines(25)
    declare(operator)
    settings.PROVISIONING_RUN_SECONDS = 0  # each run is over after its first batch

    results = [
        reconcile_speeds(backend=RecordingBackend(), now=NOW, batch_size=10) for _ in range(3)
    ]

    assert [(r.applied, r.more) for r in results] == [(10, True), (10, True), (5, False)]
    assert not Subscription.objects.out_of_sync().exists()


def test_a_batch_the_network_answers_too_slowly_is_set_aside_while_the_rest_go_through(
    operator,
):
    lines = make_lines(25)
    declare(operator)
    slow_line = f"{lines[0].pk}-1"

    # the network takes 0.5 s for the first batch (lines 0-9), the client waits 0.2 s
    with FakeNetwork(slow_lines={lines[0].contract_number}, delay=0.5) as network:
        backend = HttpBackend(network.url, timeout=0.2)
        with pytest.raises(ReconcileIncomplete) as incomplete:
            reconcile_speeds(backend=backend, now=NOW, batch_size=10)
        behind = set(Subscription.objects.out_of_sync().values_list("pk", flat=True))
        # commits keep asking for a run, every 2 s for 92 s (the 46 POSTs)
        for second in range(2, 93, 2):
            run(backend, NOW + timedelta(seconds=second))
        slow_posts = network.posted[slow_line]
        # then the network answers in time
        network.slow_lines = set()
        last = reconcile_speeds(backend=backend, now=NOW + timedelta(minutes=12), batch_size=10)

    # the first run went on past the slow batch and recorded what the network took
    first = incomplete.value.result
    assert (first.applied, first.batches, first.set_aside) == (15, 2, 1)
    assert behind == {line.pk for line in lines[:10]}
    assert NOW + timedelta(seconds=7.5) <= first.retry_at <= NOW + timedelta(seconds=16)
    # the slow batch was retried after each backoff (at ~15 s, ~45 s), not on every run
    assert 3 <= slow_posts <= most_posts_within(92) == 4
    assert (last.applied, last.retry_at) == (10, None)
    assert not Subscription.objects.out_of_sync().exists()
    # the network took each unheard repeat under the same change id; one audit row each
    assert network.applied[slow_line] == slow_posts + 1
    assert all(network.applied[f"{line.pk}-1"] == 1 for line in lines[10:])
    assert ProvisioningChange.objects.count() == 25


def test_an_outage_then_a_slow_batch_cost_posts_by_the_minute_not_by_the_commit(operator):
    lines = make_lines(25)
    declare(operator)
    change = {line.contract_number: f"{line.pk}-1" for line in lines}
    first_line = lines[0].contract_number

    with FakeNetwork(delay=0.5) as network:
        backend = HttpBackend(network.url, timeout=0.2)
        # given the network down for two minutes while 200 commits each ask for a run
        network.down = True
        for i in range(200):
            run(backend, NOW + timedelta(seconds=0.6 * i))
        outage = network.requests
        posted_in_outage = network.posted.copy()
        # then up, but too slow for whichever batch holds the first line, for ten minutes,
        # while a run is asked for every 5 s
        network.down = False
        network.slow_lines = {first_line}
        for i in range(120):
            run(backend, NOW + timedelta(seconds=120 + 5 * i))
        stuck = set(Subscription.objects.out_of_sync().values_list("contract_number", flat=True))
        with_first_line = {
            line for batch in network.batches[outage:] if first_line in batch for line in batch
        }
        first_line_posts = network.posted[change[first_line]]
        # then well again, after the longest backoff
        network.slow_lines = set()
        last = run(backend, NOW + timedelta(seconds=720 + CEILING))

    # the outage: each of the three batches (10, 10, 5 lines) at most five times in two
    # minutes, however many runs were asked for; every line was tried
    assert most_posts_within(120) == 5
    assert set(posted_in_outage) == set(change.values())
    assert max(posted_in_outage.values()) <= 5
    assert outage <= 3 * 5
    # the slow batch kept to its backoff and held back no other line
    assert first_line_posts <= most_posts_within(720) == 7
    assert first_line in stuck and stuck <= with_first_line and len(stuck) <= 10
    assert all(network.applied[change[line]] == 1 for line in change.keys() - with_first_line)
    # and in the end every line converged, with one audit row each
    assert last.applied == len(stuck) and last.retry_at is None
    assert not Subscription.objects.out_of_sync().exists()
    assert network.speeds == {line.contract_number: 8192 for line in lines}
    assert ProvisioningChange.objects.count() == 25
