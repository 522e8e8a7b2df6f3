"""The broker down: a committed action still answers what it did, and its follow-up
waits in the database until beat's sweeper finds it.

The broker is a real ``redis-server`` this test starts on a port of its own and stops,
so the failure is the one Celery really meets (a refused connection when publishing).
"""

from contextlib import contextmanager

import pytest
from django.utils import timezone

from portal.celery import app as celery_app
from subscriptions.models import Subscription
from support.models import FollowUp
from tests.factories import OperatorUserFactory, UserFactory
from tests.faults import RedisBroker, publish_to
from tests.followups import asked_for, run_follow_ups
from tests.upgrades.conftest import follow_end_link, form_data, make_lines, post_forms
from upgrades import tasks
from upgrades.models import BlanketUpgrade, SpeedGrant
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster

pytestmark = pytest.mark.django_db


@contextmanager
def broker_that_is_down(monkeypatch):
    """Point this process's Celery at a Redis that ran, then stopped."""
    with RedisBroker() as broker:
        publish_to(monkeypatch, broker.url)
    try:
        yield
    finally:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def test_a_declaration_while_the_broker_is_down_answers_and_is_granted_later(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    lines = make_lines(3)
    client.force_login(OperatorUserFactory())
    page = client.get("/operator/disasters/new/").text
    form = next(f for f in post_forms(page) if "idempotency_key" in dict(f["fields"]))

    # when the operator declares while the broker is down
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            form["action"],
            form_data(form["fields"], title="秩父豪雨", nationwide="on", window_days="3"),
        )

    # then the page says it was declared (no 500), and nothing is granted yet
    blanket = BlanketUpgrade.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/operator/disasters/{blanket.pk}/")
    assert blanket.status == "applying" and not blanket.grants.exists()

    # and its granting waits as a follow-up of the declaration's commit, which the relay
    # sends when the broker is back: every line is granted once
    assert asked_for(tasks.apply_blanket_upgrade) == [(blanket.pk,)]
    run_follow_ups(tasks.apply_blanket_upgrade)
    assert SpeedGrant.objects.filter(blanket_upgrade=blanket).count() == len(lines)
    assert asked_for(tasks.apply_blanket_upgrade) == []


def test_submitting_the_declaration_again_asks_again_for_the_granting_still_due(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    make_lines(2)
    client.force_login(OperatorUserFactory())
    page = client.get("/operator/disasters/new/").text
    form = next(f for f in post_forms(page) if "idempotency_key" in dict(f["fields"]))
    data = form_data(form["fields"], title="秩父豪雨", nationwide="on", window_days="3")
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        client.post(form["action"], data)
    blanket = BlanketUpgrade.objects.get()
    # the follow-up is gone (deleted by hand, or recorded before follow-ups existed)
    FollowUp.objects.all().delete()

    # when the operator submits the same form again (back, then submit)
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        again = client.post(form["action"], data)

    # then nothing new is declared, and the granting it still waits for is asked again
    assert again.status_code == 302 and BlanketUpgrade.objects.count() == 1
    assert asked_for(tasks.apply_blanket_upgrade) == [(blanket.pk,)]
    run_follow_ups(tasks.apply_blanket_upgrade)
    assert SpeedGrant.objects.filter(blanket_upgrade=blanket).count() == 2


def test_a_decline_while_the_broker_is_down_is_taken_and_reaches_the_network_later(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    # given a line upgraded on the network by a blanket upgrade
    user = UserFactory()
    (line,) = make_lines(1, customer=user.customer)
    now = timezone.now()
    blanket = declare_disaster(
        operator=OperatorUserFactory(), title="t", nationwide=True, prefectures=[],
        idempotency_key="k", now=now,
    )  # fmt: skip
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now)
    tasks.reconcile_speeds.apply().get()
    client.force_login(user)
    home = client.get("/").text
    banner_form = next(f for f in post_forms(home) if "grant" in dict(f["fields"]))

    # when the customer declines from the banner while the broker is down
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        response = client.post(banner_form["action"], form_data(banner_form["fields"], keep="0"))

    # then the answer is taken (no 500), and the slower speed waits as state
    assert response.status_code == 302
    assert SpeedGrant.objects.get().state == "declined"
    assert Subscription.objects.out_of_sync().filter(pk=line.pk).exists()
    # until the follow-up the decline's commit recorded runs, once the broker is back
    assert asked_for(tasks.reconcile_speeds) == [()]
    run_follow_ups(tasks.reconcile_speeds)
    assert not Subscription.objects.out_of_sync().exists()


def test_ending_the_disaster_again_asks_again_for_the_endings_still_due(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    # given a disaster granted on 2 lines, ended while the broker was down
    make_lines(2)
    operator = OperatorUserFactory()
    now = timezone.now()
    blanket = declare_disaster(
        operator=operator, title="秩父豪雨", nationwide=True, prefectures=[],
        idempotency_key="k", now=now,
    )  # fmt: skip
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now)
    client.force_login(operator)
    question = follow_end_link(client, blanket)
    (form,) = [f for f in post_forms(question.text) if f["action"].endswith("/end/")]
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        client.post(form["action"], form_data(form["fields"]))
    # and its follow-up gone (deleted by hand, or recorded before follow-ups existed)
    FollowUp.objects.all().delete()

    # when the operator submits the end form again (back, then submit)
    with broker_that_is_down(monkeypatch), django_capture_on_commit_callbacks(execute=True):
        again = client.post(form["action"], form_data(form["fields"]))

    # then the page says it had ended, and the endings still due are asked for again
    assert again.status_code == 302
    assert asked_for(tasks.end_blanket_grants) == [(blanket.pk,)]
    run_follow_ups(tasks.end_blanket_grants)
    assert not SpeedGrant.objects.boosting().filter(blanket_upgrade=blanket).exists()
