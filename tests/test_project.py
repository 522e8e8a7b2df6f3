"""The project as a whole: migrations in step with models, production settings safe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

BASE_DIR = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "x" * 20 + "-not-a-real-secret-but-long-and-random-enough-for-the-check",
    "ALLOWED_HOSTS": "portal.example.jp",
    "DATABASE_URL": "postgres://portal@db.example.jp:5432/portal",
    "CELERY_BROKER_URL": "redis://redis.example.jp:6379/0",
    "INVOICE_ISSUER_NAME": "株式会社テスト通信",
    "INVOICE_REGISTRATION_NUMBER": "T9876543210987",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The test run's own switches (e.g. DJANGO_ALLOW_ASYNC_UNSAFE for Playwright) stay out.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_models_and_migrations_are_in_step():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_deploy_check_is_clean_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL"]
)
def test_production_mode_refuses_to_start_without_required_settings(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert missing in result.stderr


def test_production_mode_refuses_sqlite():
    result = manage("check", env={**PRODUCTION_ENV, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})

    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_a_dead_workers_message_comes_back_in_minutes_never_while_its_task_may_run():
    # In production (Redis), with the defaults.
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'],"
        " s.CELERY_TASK_TIME_LIMIT, s.OUTBOX_TASK_SECONDS)",
        env=PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stderr
    visibility, hard_limit, sender_budget = map(int, result.stdout.split())
    assert sender_budget < hard_limit < visibility <= 20 * 60
