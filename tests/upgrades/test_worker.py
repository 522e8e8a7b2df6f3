"""End to end with a real worker: a declaration upgrades lines on a flaky network."""

import pytest
from django.core import mail
from django.utils import timezone

from subscriptions.models import Subscription
from support.models import OutboundEmail
from tests.factories import OperatorUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from tests.upgrades.network import FakeNetwork
from tests.worker import celery_worker, wait_for
from upgrades.models import BlanketUpgrade, CustomerNotice
from upgrades.services.blanket import declare_disaster


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_declaration_reaches_the_network_through_an_outage(monkeypatch, smtp_server):
    customer_user = UserFactory()
    lines = make_lines(30, customer=customer_user.customer)
    others = [UserFactory(customer=make_lines(1, prefecture="11")[0].site.customer)]

    with (
        FakeNetwork(fail_first=2) as network,
        celery_worker(
            monkeypatch,
            PROVISIONING_BACKEND="http",
            PROVISIONING_URL=network.url,
            PROVISIONING_BATCH_SIZE="10",
            BLANKET_CHUNK_SIZE="7",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_server.port}",
        ),
    ):
        blanket = declare_disaster(
            operator=OperatorUserFactory(),
            title="令和8年 秩父豪雨",
            nationwide=False,
            prefectures=["11"],
            idempotency_key="e2e",
            now=timezone.now(),
        )

        # the worker grants every line, then pushes the speeds, retrying through the outage
        assert wait_for(
            lambda: (
                not Subscription.objects.out_of_sync().exists()
                and Subscription.objects.filter(speed__applied_upgraded=True).count() == 31
            ),
            timeout=120,
        ), f"not converged; network saw {network.requests} requests"
        # and the outbox tells each customer once, through a real SMTP server
        assert wait_for(lambda: len(smtp_server.messages) == 2), smtp_server.messages

    blanket.refresh_from_db()
    assert blanket.status == BlanketUpgrade.Status.ACTIVE
    assert network.requests >= 3 + 2  # three batches after two refused attempts
    assert network.speeds == {
        line.contract_number: 8192
        for line in [*lines, *Subscription.objects.filter(site__customer=others[0].customer)]
    }
    assert set(network.applied.values()) == {1}
    assert CustomerNotice.objects.filter(kind="blanket_started").count() == 2
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}
    mine = next(m for m in smtp_server.messages if customer_user.email in m["to"])
    body = mine["message"].get_payload(decode=True).decode()
    assert all(line.contract_number in body for line in lines)
    assert mail.outbox == []  # sent by the worker process, not by this one
