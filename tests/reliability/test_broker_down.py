"""The broker goes down while customers and operators work, and comes back empty.

A real worker and a real beat run on a Redis of the test's own; the test stops that Redis,
people declare, decline, end a disaster and ask a question after hours through the pages,
then Redis starts again with nothing in it. Every page answers what was done (no 500),
and every follow-up happens once, within seconds of the broker's return (the relay runs
every second here, every 20 s in production).
"""

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from subscriptions.models import Subscription
from support.models import AfterHoursAlert, FollowUp, OutboundEmail
from tests.factories import OperatorUserFactory, SupportUserFactory, UserFactory
from tests.faults import RedisBroker, fleet
from tests.reliability.conftest import duplicates
from tests.upgrades.conftest import follow_end_link, form_data, make_lines, post_forms
from tests.upgrades.network import FakeNetwork
from tests.upgrades.test_operator_safety import fill, open_declare_form
from tests.worker import wait_for
from upgrades.models import BlanketUpgrade, SpeedGrant
from upgrades.services.blanket import declare_disaster

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# A Sunday night in Tokyo: a question then alerts the on-call staff.
SUNDAY_NIGHT = datetime(2026, 11, 22, 3, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def banner_form(client) -> dict:
    return next(f for f in post_forms(client.get("/").text) if "grant" in dict(f["fields"]))


def test_the_broker_down_loses_nothing_and_answers_every_page(
    client, monkeypatch, smtp_server, gateway, settings
):
    settings.SUPPORT_ONCALL_WEBHOOK_URL = gateway.url
    saitama = UserFactory(email="kanri@chichibu.example.jp")
    make_lines(12, prefecture="11", customer=saitama.customer)
    chiba = UserFactory(email="soumu@choshi.example.jp")
    make_lines(8, prefecture="12", customer=chiba.customer)
    tokyo = UserFactory(email="it@minato.example.jp")
    tokyo_lines = make_lines(10, prefecture="13", customer=tokyo.customer)
    SupportUserFactory(email="desk@operator.example.jp")
    operator = OperatorUserFactory()

    with (
        FakeNetwork() as network,
        RedisBroker() as broker,
        fleet(
            monkeypatch,
            broker,
            PROVISIONING_BACKEND="http",
            PROVISIONING_URL=network.url,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_server.port}",
            SUPPORT_ONCALL_WEBHOOK_URL=gateway.url,
        ),
    ):
        # given two disasters, granted and fast on the network, while all is well
        _, chiba_disaster = (
            declare_disaster(
                operator=operator,
                title=title,
                nationwide=False,
                prefectures=[prefecture],
                idempotency_key=title,
                now=timezone.now(),
            )
            for title, prefecture in [("秩父豪雨", "11"), ("銚子地震", "12")]
        )
        assert wait_for(
            lambda: Subscription.objects.filter(speed__applied_upgraded=True).count() == 20, 60
        ), "the disasters before the outage were not applied"
        assert wait_for(lambda: len(smtp_server.messages) == 2, 30)

        # when the broker stops
        broker.stop()
        # the operator declares a third disaster from the dashboard's form,
        client.force_login(operator)
        form = open_declare_form(client)
        declared = client.post(form["action"], fill(form, title="首都直下地震", prefectures=["13"]))
        # the Saitama customer declines one line from the banner,
        client.force_login(saitama)
        banner = banner_form(client)
        declined = client.post(banner["action"], form_data(banner["fields"], keep="0"))
        # the operator ends the Chiba disaster by its link and question,
        client.force_login(operator)
        question = follow_end_link(client, chiba_disaster)
        (end_form,) = [f for f in post_forms(question.text) if f["action"].endswith("/end/")]
        ended = client.post(end_form["action"], form_data(end_form["fields"]))
        # and a Chiba customer asks a question on a Sunday night
        client.force_login(chiba)
        with time_machine.travel(SUNDAY_NIGHT, tick=True):
            asked = client.post("/inquiries/", {"subject": "停電", "body": "つながらない"})
        waiting = FollowUp.objects.count()
        time.sleep(3)  # the outage goes on; nothing can move

        # then every page answered what was done
        assert [r.status_code for r in (declared, declined, ended, asked)] == [302] * 4
        assert "/operator/disasters/" in declared["Location"]
        tokyo_disaster = BlanketUpgrade.objects.get(disaster__title="首都直下地震")
        assert not tokyo_disaster.grants.exists(), "granted while the broker was down?"
        assert waiting >= 4, "the follow-ups wait in the database"

        # and when the broker comes back, empty, everything follows up once
        broker.start()
        back = time.monotonic()

        def converged() -> bool:
            return (
                SpeedGrant.objects.filter(blanket_upgrade=tokyo_disaster).count() == 10
                and not Subscription.objects.out_of_sync().exists()
                and not SpeedGrant.objects.filter(
                    blanket_upgrade=chiba_disaster, state="pending"
                ).exists()
                and AfterHoursAlert.objects.filter(webhook_status="HTTP 204").exists()
                and not OutboundEmail.objects.filter(status="queued").exists()
                and not FollowUp.objects.exists()
            )

        assert wait_for(converged, 90), (
            f"not converged: {list(FollowUp.objects.values('task', 'attempts', 'last_error'))}"
        )
        recovery = time.monotonic() - back
        print(f"\nbroker back: every follow-up done {recovery:.1f} s later")

    # the network: Tokyo fast, the declined line and Chiba back to normal, each change once
    speeds = network.speeds
    assert all(speeds[line.contract_number] == 8192 for line in tokyo_lines)
    assert sorted(v for k, v in speeds.items() if "-11-" in k).count(256) == 1
    assert {v for k, v in speeds.items() if "-12-" in k} == {256}
    assert duplicates(network.applied.elements()) == {}

    # e-mails: the Tokyo customer told once, the Chiba customer told of the end once, the
    # on-call desk alerted once; nothing sent twice
    def told(address: str) -> list[str]:
        return [m["subject"] for m in smtp_server.messages if address in m["to"]]

    assert duplicates(m["message_id"] for m in smtp_server.messages) == {}
    assert [s.split(" / ")[1] for s in told("it@minato.example.jp")] == [
        "Your lines have been upgraded: please confirm (首都直下地震)"
    ]
    assert [s.split(" / ")[1] for s in told("soumu@choshi.example.jp")] == [
        "Your lines have been upgraded: please confirm (銚子地震)",
        "The disaster upgrade has ended (銚子地震)",
    ]
    assert len(told("desk@operator.example.jp")) == 1
    assert len(gateway.posts) == 1
    assert recovery < 30
