"""A real Celery worker process for tests, on the configured broker (Redis in CI)."""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from django.utils import timezone

from portal.celery import app as celery_app
from support.models import FollowUp

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url_of_test_database() -> str:
    """The URL a separate process needs to reach the database this test is using."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def celery_worker(monkeypatch, **environment: str):
    """Start a worker on a queue of its own; tasks sent by this test go to that queue."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(celery_app.conf, "task_default_queue", queue)
    # Follow-ups already sent went to the tests' queue, which no worker reads: as far as
    # this worker knows they were lost, so they are due again (as the relay would find).
    FollowUp.objects.filter(started_at__isnull=True).update(due_at=timezone.now())
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_database(),
        "CELERY_QUEUE": queue,
        **environment,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo"]
    command += ["-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat"]
    # A file, not a pipe: a worker that logs more than a pipe holds would block on write.
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [*command, "-l", "INFO"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield queue
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            print(log.read()[-20000:])  # the worker's log, shown by pytest when a test fails


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll until ``predicate()`` holds; the worker runs in its own process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
