"""The worker dies mid-job (SIGKILL, as when its machine loses power) or loses its database
connection mid-chunk, and is started again.

A real worker and a real beat run on a Redis of the test's own, against PostgreSQL, with
the fast reliability settings (tests/faults.py: a follow-up's lease and the outbox's lease
are 5 s, the relay runs every second). Whatever the moment of the kill, the end state is
complete and single: every line granted (or reverted) once, its speed on the network
once, each customer told once. The one thing a kill may repeat is the e-mail in flight,
accepted by the mail server and not recorded as sent yet: duplicates <= kills.
"""

import re
import time
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from subscriptions.models import Customer, Site, Subscription, term_end_for
from support.channels import Channel
from support.models import FollowUp, OutboundEmail
from support.outbox import queue_emails, send_queued_emails
from tests.factories import OperatorUserFactory, PlanFactory
from tests.faults import RedisBroker, fleet
from tests.reliability.conftest import duplicates
from tests.upgrades.network import FakeNetwork
from tests.worker import wait_for
from upgrades.models import BlanketUpgrade, ProvisioningChange, SpeedGrant
from upgrades.provisioning import HttpBackend
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    respond_to_grants,
)
from upgrades.services.notices import STRANDED_AFTER, queue_stranded_notices
from upgrades.services.provisioning import reconcile_speeds

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LINES_EACH = 20


def make_customers(n: int, *, prefecture: str, lines_each: int = LINES_EACH) -> list[Customer]:
    """``n`` customer organisations of ``lines_each`` in-service lines each, in bulk.

    Contract numbers have a fixed width, so one never contains another in an e-mail."""
    plan = PlanFactory()
    start = date(2024, 4, 1)
    customers = Customer.objects.bulk_create(
        Customer(
            code=f"K{prefecture}-{i:04d}",
            name=f"顧客{prefecture}-{i}株式会社",
            email=f"soumu{i:04d}@k{prefecture}.example.jp",
        )
        for i in range(n)
    )
    sites = Site.objects.bulk_create(
        Site(
            customer=customer,
            name=f"拠点 {j}",
            prefecture=prefecture,
            address="x",
            contact_phone="0494-22-0000",
        )
        for customer in customers
        for j in range(lines_each)
    )
    Subscription.objects.bulk_create(
        Subscription(
            contract_number=f"{site.customer.code}-{j % lines_each:03d}",
            site=site,
            plan=plan,
            service_start=start,
            term_end=term_end_for(start),
        )
        for j, site in enumerate(sites)
    )
    # Statistics, as autovacuum keeps them on a live database: without them the planner
    # takes the fresh tables for empty and a chunk's boundary costs a second, not 1 ms.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return customers


def fleet_env(network, smtp_server, **settings: str) -> dict:
    """The worker's world: the network (if any) and the mail server, by their addresses."""
    network_settings = (
        {"PROVISIONING_BACKEND": "http", "PROVISIONING_URL": network.url} if network else {}
    )
    return {
        **network_settings,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        **settings,
    }


def declare(title: str, prefecture: str, **options) -> BlanketUpgrade:
    """An operator declares a disaster over one prefecture (now, unless told when)."""
    options.setdefault("now", timezone.now())
    return declare_disaster(
        operator=OperatorUserFactory(),
        title=title,
        nationwide=False,
        prefectures=[prefecture],
        idempotency_key=title,
        **options,
    )


def as_soon_as(predicate, *, timeout: float = 60) -> float:
    """Wait until ``predicate()`` holds, polling often (a chunk takes milliseconds);
    returns the moment it did."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the job never got under way"
        time.sleep(0.01)
    return time.monotonic()


def sent_twice(messages) -> int:
    """How many messages the server received again (the same Message-ID)."""
    return sum(n - 1 for n in duplicates(m["message_id"] for m in messages).values())


def once_each(messages) -> list:
    """The messages, each Message-ID once (a repeat is the same e-mail again)."""
    return list({m["message_id"]: m for m in messages}.values())


def lines_in(message) -> list[str]:
    body = message["message"].get_payload(decode=True).decode()
    # Japanese, then English: each line is listed twice in one e-mail.
    return sorted(set(re.findall(r"K\d\d-\d{4}-\d{3}", body)))


def all_done() -> bool:
    return (
        not Subscription.objects.out_of_sync().exists()
        and not OutboundEmail.objects.filter(status="queued").exists()
        and not FollowUp.objects.exists()
    )


def waiting_follow_ups() -> list:
    return list(FollowUp.objects.values("task", "started_at", "attempts", "last_error"))


def test_a_worker_killed_mid_declaration_grants_and_tells_everyone_once(monkeypatch, smtp_server):
    # given 300 customers of 20 lines in Kumamoto, a network and a mail server
    customers = make_customers(300, prefecture="43")
    lines = len(customers) * LINES_EACH

    with (
        FakeNetwork() as network,
        RedisBroker() as broker,
        fleet(monkeypatch, broker, **fleet_env(network, smtp_server, BLANKET_CHUNK_SIZE="50")) as f,
    ):
        # when an operator declares the earthquake
        blanket = declare("熊本地震", "43")
        grants = SpeedGrant.objects.filter(blanket_upgrade=blanket)
        # and the worker is killed while granting, then started again
        killed = as_soon_as(lambda: grants.count() >= lines // 4)
        f.worker.kill()
        granted_at_kill = grants.count()
        f.worker.start()

        assert wait_for(lambda: grants.count() == lines and all_done(), 60), waiting_follow_ups()
        recovery = time.monotonic() - killed

    twice = sent_twice(smtp_server.messages)
    print(
        f"\nSIGKILL mid-declaration, {granted_at_kill:,} of {lines:,} lines granted: all granted,"
        f" applied and told {recovery:.1f} s later; e-mails sent twice: {twice} of"
        f" {len(smtp_server.messages)} (bound: 1)"
    )
    # then the kill came mid-way
    assert 0 < granted_at_kill < lines
    # every line is granted once and fast on the network, each change applied once
    blanket.refresh_from_db()
    assert blanket.status == BlanketUpgrade.Status.ACTIVE
    assert grants.values("subscription").distinct().count() == lines
    assert (
        Subscription.objects.filter(
            speed__desired_upgraded=True, speed__applied_upgraded=True
        ).count()
        == lines
    )
    assert len(network.speeds) == lines and set(network.speeds.values()) == {8192}
    assert duplicates(network.applied.elements()) == {}
    assert ProvisioningChange.objects.count() == lines
    # each customer is told once, of all of its lines
    assert twice <= 1
    told = once_each(smtp_server.messages)
    assert sorted(a for m in told for a in m["to"]) == sorted(c.email for c in customers)
    assert {len(lines_in(m)) for m in told} == {LINES_EACH}
    assert recovery < 30


def test_a_worker_killed_mid_revert_returns_each_line_once_and_keeps_the_confirmed(
    monkeypatch, smtp_server
):
    # given a disaster declared three days ago in Oita: 300 customers of 20 lines granted
    # and fast on the network, everyone told; a fifth of the customers confirmed
    customers = make_customers(300, prefecture="44")
    declared = timezone.now() - timedelta(days=3, seconds=30)
    with FakeNetwork() as network:
        blanket = declare("大分豪雨", "44", window_days=3, now=declared)
        apply_blanket_upgrade(blanket_id=blanket.pk, now=declared)
        reconcile_speeds(backend=HttpBackend(network.url), now=declared)
        send_queued_emails()
        confirmed = customers[::5]
        for customer in confirmed:
            respond_to_grants(
                grants=SpeedGrant.objects.filter(subscription__site__customer=customer),
                keep=True,
                by=None,
                channel=Channel.PHONE,
                now=declared + timedelta(days=1),
            )
        grants = SpeedGrant.objects.filter(blanket_upgrade=blanket)
        unconfirmed = grants.filter(state="pending").count()
        told_before = len(smtp_server.messages)
        # (the deadline passed half a minute ago: the beat's revert job starts at once)

        with (
            RedisBroker() as broker,
            fleet(
                monkeypatch, broker, **fleet_env(network, smtp_server, REVERT_CHUNK_SIZE="50")
            ) as f,
        ):
            # when the worker is killed while reverting, and started again
            reverted = grants.filter(state="reverted")
            killed = as_soon_as(lambda: reverted.count() >= unconfirmed // 4)
            f.worker.kill()
            reverted_at_kill = reverted.count()
            f.worker.start()

            assert wait_for(lambda: reverted.count() == unconfirmed and all_done(), 60), (
                waiting_follow_ups()
            )
            recovery = time.monotonic() - killed
            # and, ten minutes later, the beat's sweeper hands over the notices of the run
            # that died before its end (STRANDED_AFTER; travelled)
            stranded = queue_stranded_notices(now=timezone.now() + STRANDED_AFTER)
            assert wait_for(all_done, 30), waiting_follow_ups()

    told = smtp_server.messages[told_before:]
    twice = sent_twice(told)
    split = duplicates(a for m in once_each(told) for a in m["to"])
    print(
        f"\nSIGKILL mid-revert, {reverted_at_kill:,} of {unconfirmed:,} grants reverted: all"
        f" reverted, applied and told {recovery:.1f} s later (but for {stranded} notice(s) of"
        f" the killed run, sent by the sweeper {STRANDED_AFTER} later); e-mails sent twice:"
        f" {twice} of {len(told)} (bound: 1); customers told in two e-mails: {len(split)}"
    )
    # then the kill came mid-way
    assert 0 < reverted_at_kill < unconfirmed
    # every unconfirmed grant is reverted once, the confirmed ones kept
    confirmed_lines = Subscription.objects.filter(site__customer__in=confirmed)
    assert grants.filter(state="active").count() == confirmed_lines.count() == 60 * LINES_EACH
    assert reverted.count() == unconfirmed == 240 * LINES_EACH
    speeds = network.speeds
    assert {speeds[c] for c in confirmed_lines.values_list("contract_number", flat=True)} == {8192}
    assert sorted(speeds.values()).count(256) == unconfirmed
    assert duplicates(network.applied.elements()) == {}
    assert ProvisioningChange.objects.count() == len(customers) * LINES_EACH + unconfirmed
    # each reverted line is told once, in one e-mail; a customer whose lines the kill split
    # between the two runs is told in two, each listing its own lines
    assert twice <= 1
    listed = [line for m in once_each(told) for line in lines_in(m)]
    assert duplicates(listed) == {}
    assert sorted(listed) == sorted(
        reverted.values_list("subscription__contract_number", flat=True)
    )
    assert not {a for m in told for a in m["to"]} & {c.email for c in confirmed}
    assert len(split) <= 1
    assert recovery < 30


def test_a_sender_killed_three_times_repeats_at_most_the_message_in_flight(
    monkeypatch, smtp_server
):
    # given 3,000 e-mails queued at once (a mass message to every site in Miyazaki)
    queue_emails(
        [
            dict(
                key=f"miyazaki:{i}",
                to=[f"site{i:04d}@k45.example.jp"],
                subject="宮崎県沿岸部の津波警報 / Tsunami warning",
                body="高台へ避難してください。/ Please move to high ground.",
            )
            for i in range(3000)
        ]
    )
    received = smtp_server.messages

    with (
        RedisBroker() as broker,
        fleet(monkeypatch, broker, **fleet_env(None, smtp_server)) as f,
    ):
        # when the worker is killed three times while it sends, and started again each time
        kills = []
        for share in (0.2, 0.45, 0.7):
            kills.append(as_soon_as(lambda share=share: len(received) >= 3000 * share))
            f.worker.kill()
            f.worker.start()
        assert wait_for(all_done, 60), waiting_follow_ups()
        recovery = time.monotonic() - kills[-1]

    twice = sent_twice(received)
    print(
        f"\n3 SIGKILLs mid-send: every e-mail sent {recovery:.1f} s after the last kill;"
        f" sent twice: {twice} of {len(received):,} (bound: 3)"
    )
    # then every e-mail is sent, and none repeated but the ones in flight at a kill
    assert OutboundEmail.objects.filter(status="sent").count() == 3000
    assert len(once_each(received)) == 3000
    assert twice <= len(kills)
    assert recovery < 30


def test_a_worker_whose_database_connection_is_cut_resumes_within_seconds(monkeypatch, smtp_server):
    # given 300 customers of 20 lines in Kagoshima, and a follow-up's lease longer than
    # the outbox's, as in production (120 s and 300 s there): work that only came back
    # when its lease passed would take a minute here
    customers = make_customers(300, prefecture="46")
    lines = len(customers) * LINES_EACH
    settings = dict(BLANKET_CHUNK_SIZE="50", FOLLOWUP_LEASE_SECONDS="60")

    with (
        FakeNetwork() as network,
        RedisBroker() as broker,
        fleet(monkeypatch, broker, **fleet_env(network, smtp_server, **settings)) as f,
    ):
        # when an operator declares the eruption
        blanket = declare("桜島噴火", "46")
        grants = SpeedGrant.objects.filter(blanket_upgrade=blanket)
        # and the worker's database connection is cut while it grants,
        cut_granting = as_soon_as(lambda: grants.count() >= lines // 4)
        assert f.terminate_worker_connections() == 1
        granted_at_cut = grants.count()
        assert wait_for(lambda: grants.count() == lines, 60), waiting_follow_ups()
        granting = time.monotonic() - cut_granting
        # and again while it sends the e-mails
        cut_sending = as_soon_as(lambda: len(smtp_server.messages) >= len(customers) // 4)
        assert f.terminate_worker_connections() == 1
        sent_at_cut = len(smtp_server.messages)

        assert wait_for(all_done, 60), waiting_follow_ups()
        sending = time.monotonic() - cut_sending

    twice = sent_twice(smtp_server.messages)
    print(
        f"\nconnection cut mid-declaration ({granted_at_cut:,} of {lines:,} granted): all"
        f" granted {granting:.1f} s later; cut mid-send ({sent_at_cut} of {len(customers)}"
        f" sent): all applied and told {sending:.1f} s later; e-mails sent twice: {twice}"
        f" (bound: 1)"
    )
    # then both cuts came mid-way, and the work resumed and finished, once
    assert 0 < granted_at_cut < lines and 0 < sent_at_cut < len(customers)
    assert grants.values("subscription").distinct().count() == lines
    assert len(network.speeds) == lines and set(network.speeds.values()) == {8192}
    assert duplicates(network.applied.elements()) == {}
    assert twice <= 1
    assert len(once_each(smtp_server.messages)) == len(customers)
    assert granting < 15 and sending < 15
