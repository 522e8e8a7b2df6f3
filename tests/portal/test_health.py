import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.celery import app as celery_app
from tests.factories import HeartbeatFactory

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_database_and_broker_answer(client):
    HeartbeatFactory(beat_at=timezone.now() - timedelta(seconds=30))

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["scheduler"]["fresh"] is True


def test_healthz_reports_a_stale_scheduler_without_failing(client):
    HeartbeatFactory(beat_at=timezone.now() - timedelta(hours=1))

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["scheduler"]["fresh"] is False


def test_healthz_answers_503_when_the_broker_is_unreachable(client, monkeypatch):
    # A real connection attempt to a port where nothing listens. Celery reads this
    # variable before its settings, whatever broker the suite runs on.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:9/0")
    assert celery_app.conf.broker_write_url == "redis://127.0.0.1:9/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable"
    assert response.json()["database"] == "ok"


def test_healthz_and_the_dashboard_show_the_work_waiting(client):
    from support.outbox import queue_email
    from tests.factories import OperatorUserFactory, SubscriptionFactory

    with time_machine.travel(timezone.now() - timedelta(minutes=7), tick=False):
        queue_email(key="old", to=["a@town.example.jp"], subject="s", body="b")
    queue_email(key="new", to=["b@town.example.jp"], subject="s", body="b")
    SubscriptionFactory(speed__desired_upgraded=True, speed__applied_upgraded=False)

    body = client.get("/healthz").json()
    client.force_login(OperatorUserFactory())
    dashboard = client.get("/operator/").text

    assert body["backlog"]["emails_queued"] == 2
    assert 7 * 60 <= body["backlog"]["oldest_email_waiting_seconds"] < 8 * 60
    assert body["backlog"]["lines_out_of_sync"] == 1
    waiting = dashboard.split('id="backlog"')[1].split("</dl>")[0]
    assert "<dd>2 (" in waiting and "<dd>1</dd>" in waiting
    # each queued e-mail asked a worker to send (a follow-up of its commit, not run yet)
    assert body["backlog"]["follow_ups_waiting"] == 2
    assert 7 * 60 <= body["backlog"]["oldest_follow_up_waiting_seconds"] < 8 * 60
    link = re.search(r'<dd><a href="([^"]+)">2</a> \(', waiting).group(1)
    listed = client.get(link)
    assert listed.status_code == 200 and "support.tasks.send_queued_emails" in listed.text


def test_a_second_beat_process_shows_on_healthz_and_the_dashboard(client):
    from portal.services import record_heartbeat
    from tests.factories import OperatorUserFactory

    start = timezone.now() - timedelta(minutes=9, seconds=50)
    for minute in range(10):  # one beat: a heartbeat a minute
        record_heartbeat(name="beat", now=start + timedelta(minutes=minute))
    one = client.get("/healthz").json()["scheduler"]
    for minute in range(10):  # a second beat started: two a minute
        record_heartbeat(name="beat", now=start + timedelta(minutes=minute, seconds=30))
    two = client.get("/healthz").json()["scheduler"]
    client.force_login(OperatorUserFactory())
    dashboard = client.get("/operator/").text

    assert (one["beats_last_10_minutes"], one["several_beats_running"]) == (10, False)
    assert two["several_beats_running"] is True
    assert 'id="several-beats"' in dashboard
