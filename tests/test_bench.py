"""The benchmarks still run (small): a schema change once broke bench/disaster.py's raw
SQL and nothing noticed. Figures are not asserted here; the benchmarks print them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    if connection.vendor != "postgresql":
        pytest.skip("the benchmarks measure PostgreSQL")
    settings = connection.settings_dict
    # Named after the test database, so runs of several checkouts side by side (each on
    # its own database) do not drop each other's bench database.
    name = f"{settings['NAME']}_bench"
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=BASE_DIR,
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_disaster_bench_runs_and_the_paths_agree():
    result = run_bench("disaster.py", "--lines", "300", "--repeat", "1")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "The service and raw-SQL paths left the same rows after each phase" in result.stdout
    for phase in ("declare", "notices", "reconcile http", "revert", "reconcile after revert"):
        assert f"\n{phase} " in result.stdout, phase
    # The declaration's e-mails went to the bench's SMTP server: one per customer with
    # lines in scope (one of the 50 has none), checked after each path's phase.
    assert (
        "Notices: each of the 49 customers with lines in scope told exactly once over SMTP,"
        " by service, raw SQL, minimal; no Message-ID twice, nothing left queued"
    ) in result.stdout


@pytest.mark.worker
def test_the_notifications_bench_tells_every_customer_once():
    result = run_bench(
        "notifications.py", "--lines", "300", "--broker", "redis://127.0.0.1:6379/13"
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "30  of 30 customers; repeats 0" in result.stdout


def test_the_load_bench_logs_customers_in_and_their_hashes_are_re_made():
    # Broker and cache on Redis databases 5 and 6, emptied by the bench.
    result = run_bench(
        "load.py", "--customers", "6", "--ramp", "2", "--hasher", "rehash",
        "--broker", "redis://127.0.0.1:6379/5", "--cache", "redis://127.0.0.1:6379/6",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("customers through 6/6") == 1


def test_the_pages_bench_builds_then_reuses_its_database_and_every_page_answers():
    settings = connection.settings_dict
    # A database of its own: the disaster bench drops bcp_bench_ci when it ends.
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/bcp_bench_pages_ci"
    args = ["--lines", "300", "--repeat", "1", "--compare-lines", "0", "--database-url", url]

    built = run_bench("pages.py", *args, "--rebuild")
    reused = run_bench("pages.py", *args)

    for result in (built, reused):
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "ERROR:" not in result.stdout, result.stdout[-3000:]
    assert "Building bcp_bench_pages_ci" in built.stdout
    assert "Reusing bcp_bench_pages_ci" in reused.stdout
