"""A real Celery worker process, on the configured broker (Redis in CI), runs our task."""

import pytest
from django.db import transaction

from portal.models import Heartbeat
from portal.tasks import record_heartbeat
from tests.worker import celery_worker, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_tasks_sent_on_commit_and_never_those_rolled_back(monkeypatch):
    with celery_worker(monkeypatch):
        # given a task enqueued inside a transaction that is rolled back
        with pytest.raises(RuntimeError), transaction.atomic():
            record_heartbeat.delay_on_commit("rolled-back")
            raise RuntimeError("the request failed")

        # when another is enqueued inside a transaction that commits
        with transaction.atomic():
            record_heartbeat.delay_on_commit("committed")

        # then the worker process records the committed one, and the other never ran
        assert wait_for(lambda: Heartbeat.objects.filter(name="committed").exists()), (
            "the worker did not run the task within 60 s"
        )
    # One solo worker runs its queue in order: the rolled-back task would be done by now.
    assert not Heartbeat.objects.filter(name="rolled-back").exists()
