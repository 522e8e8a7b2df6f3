"""Wanted speeds reach the network through a real HTTP endpoint, outages included."""

from datetime import timedelta

import pytest

from subscriptions.models import Subscription
from tests.upgrades.conftest import NOW, make_lines
from tests.upgrades.network import FakeNetwork
from upgrades.models import ProvisioningChange
from upgrades.provisioning import HttpBackend, ProvisioningUnavailable, RecordingBackend
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster, revert_expired_grants
from upgrades.services.provisioning import reconcile_speeds

pytestmark = pytest.mark.django_db


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


def test_an_outage_delays_speed_changes_and_loses_none(operator):
    lines = make_lines(25)
    declare(operator)

    with FakeNetwork(fail_first=3) as network:
        backend = HttpBackend(network.url, timeout=5)
        # the network is down: every attempt fails, nothing counts as applied
        for attempt in range(3):
            with pytest.raises(ProvisioningUnavailable):
                reconcile_speeds(
                    backend=backend, now=NOW + timedelta(minutes=attempt), batch_size=10
                )
            assert not Subscription.objects.filter(applied_upgraded=True).exists()
        # it recovers: the retry converges
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
    Subscription.objects.filter(pk=Subscription.objects.order_by("pk").first().pk).update(
        provisioning_lease_until=NOW + timedelta(minutes=2)
    )

    first = reconcile_speeds(backend=RecordingBackend(), now=NOW)
    later = reconcile_speeds(backend=RecordingBackend(), now=NOW + timedelta(minutes=3))

    assert (first.applied, later.applied) == (3, 1)


def test_an_unreachable_network_is_an_outage_not_a_crash(operator):
    make_lines(1)
    declare(operator)

    with pytest.raises(ProvisioningUnavailable):
        reconcile_speeds(backend=HttpBackend("http://127.0.0.1:9/speeds", timeout=2), now=NOW)

    assert Subscription.objects.get().provisioning_lease_until is None
