"""Real parts to break, for the reliability tests: a Redis of the test's own to stop and
start, a Celery worker to SIGKILL and restart, and a beat that relays follow-ups.

Everything runs as separate processes against the test's database, as in production;
the test process publishes to the same broker.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from portal.celery import app as celery_app
from support.models import FollowUp
from tests.mailserver import free_port
from tests.worker import BASE_DIR, database_url_of_test_database

# Beat's and the outbox's periods, shortened so that a test sees minutes pass in seconds.
FAST_RELIABILITY_SETTINGS = {
    "FOLLOWUP_RELAY_SECONDS": "1",
    "FOLLOWUP_REDELIVER_SECONDS": "5",
    "FOLLOWUP_LEASE_SECONDS": "5",
    "FOLLOWUP_BACKOFF_BASE_SECONDS": "1",
    "FOLLOWUP_BACKOFF_MAX_SECONDS": "4",
    "RECONCILE_INTERVAL_SECONDS": "3",
    "REVERT_INTERVAL_SECONDS": "3",
    "OUTBOX_LEASE_SECONDS": "5",
    "OUTBOX_RETRY_SECONDS": "1",
    "PROVISIONING_LEASE_SECONDS": "5",
}


class RedisBroker:
    """A ``redis-server`` on a free port that the test stops and starts again (empty,
    as a restarted Redis without persistence comes back)."""

    def __init__(self):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> "RedisBroker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def publish_to(monkeypatch, url: str) -> None:
    """Make this process's Celery publish to ``url``; a dead broker fails fast."""
    # monkeypatch saves getattr(conf, "broker_url") to restore it, and Celery reads
    # CELERY_BROKER_URL first: patch the setting before the variable, or it saves (and
    # later restores) ``url`` itself, and the next test publishes to a stopped Redis.
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setattr(celery_app.conf, "broker_connection_max_retries", 1)
    # Celery keeps connection and producer pools per broker URL: start afresh.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


class Process:
    """A ``celery`` subprocess (worker or beat) with its log in a file."""

    def __init__(self, arguments: list[str], env: dict, name: str):
        self.arguments, self.env, self.name = arguments, env, name
        # Closed in close(): the log outlives this method.
        self.log = tempfile.NamedTemporaryFile(mode="w+", prefix=f"{name}-", suffix=".log")  # noqa: SIM115
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "celery", "-A", "portal", *self.arguments]
        self.process = subprocess.Popen(
            [*command, "-l", "INFO"],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, as when the machine loses power."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def close(self) -> None:
        self.stop()
        print(f"----- {self.name} -----\n{self.output()[-15000:]}")  # shown when a test fails
        self.log.close()


class Fleet:
    """What production runs besides the web: workers and one beat, on one broker."""

    def __init__(self, worker: Process, beat: Process | None, queue: str):
        self.worker, self.beat, self.queue = worker, beat, queue

    def terminate_worker_connections(self) -> int:
        """Cut the worker's database connections from the server side, as a failover, an
        idle-session timeout or an administrator's pg_terminate_backend does; returns how
        many were cut. Only the worker's: this process's connection and the beat's are
        left alone (each process connects under a name of its own)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = %s",
                [application_name("worker", self.queue)],
            )
            return cursor.fetchone()[0]


def application_name(process: str, queue: str) -> str:
    """What a fleet's process calls itself to PostgreSQL (pg_stat_activity)."""
    return f"{process}-{queue}"


def named(database_url: str, name: str) -> str:
    """``database_url`` with an application name (django-environ passes it to libpq)."""
    if not database_url.startswith("postgres"):
        return database_url
    return f"{database_url}{'&' if '?' in database_url else '?'}application_name={name}"


@contextmanager
def fleet(monkeypatch, broker: RedisBroker, *, beat: bool = True, **environment: str):
    """Start a worker (and a beat) on ``broker``, on a queue of this test's own, with the
    fast reliability settings; this process publishes there too."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(celery_app.conf, "task_default_queue", queue)
    publish_to(monkeypatch, broker.url)
    # Follow-ups sent before to the tests' own queue, which nothing reads, are due again.
    FollowUp.objects.filter(started_at__isnull=True).update(due_at=timezone.now())
    workdir = tempfile.TemporaryDirectory()
    env = {
        **os.environ,
        **FAST_RELIABILITY_SETTINGS,
        "DATABASE_URL": database_url_of_test_database(),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_QUEUE": queue,
        **environment,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]

    def env_of(process: str) -> dict:
        return {
            **env,
            "DATABASE_URL": named(env["DATABASE_URL"], application_name(process, queue)),
        }

    worker = Process(["worker", "-P", "solo", "-Q", queue, *quiet], env_of("worker"), "worker")
    beat_process = (
        Process(["beat", "-s", str(Path(workdir.name, "schedule"))], env_of("beat"), "beat")
        if beat
        else None
    )
    with ExitStack() as stack:
        stack.callback(workdir.cleanup)
        for process in filter(None, [worker, beat_process]):
            stack.callback(process.close)
            process.start()
        yield Fleet(worker, beat_process, queue)
