from datetime import timedelta

import pytest
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
