"""A real Celery worker process, on the configured broker (Redis in CI), runs our task."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction

from portal.models import Heartbeat
from portal.tasks import record_heartbeat

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url_of_test_database() -> str:
    """The URL a separate process needs to reach the database this test is using."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker_queue():
    """A worker process consuming a queue of its own, so no other worker takes our task."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DATABASE_URL": database_url_of_test_database()}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-P",
            "solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield queue
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    print(output)  # shown by pytest when the test fails


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.worker
# serialized_rollback: the flush after a transactional test would drop the role groups.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_runs_tasks_sent_on_commit_and_never_those_rolled_back(worker_queue):
    # given a task enqueued inside a transaction that is rolled back
    with pytest.raises(RuntimeError), transaction.atomic():
        record_heartbeat.apply_async_on_commit(args=["rolled-back"], queue=worker_queue)
        raise RuntimeError("the request failed")

    # when another is enqueued inside a transaction that commits
    with transaction.atomic():
        record_heartbeat.apply_async_on_commit(args=["committed"], queue=worker_queue)

    # then the worker process records the committed one, and the other never ran
    assert wait_for(lambda: Heartbeat.objects.filter(name="committed").exists()), (
        "the worker did not run the task within 60 s"
    )
    # One solo worker runs its queue in order: the rolled-back task would be done by now.
    assert not Heartbeat.objects.filter(name="rolled-back").exists()
