"""Benchmark: from a nationwide declaration to the last customer's e-mail.

FAQ Q2 is a promise made in words, so the clock a customer waits on runs from the
operator's "declare" to the e-mail in their mailbox. This script measures all of it with
the real parts: PostgreSQL, Redis, two Celery worker processes running the project's
own tasks (granting the lines, provisioning, composing and sending the notices through
the outbox), and a real SMTP server (aiosmtpd) on this machine that accepts every
message. Nothing is mocked but the satellite network (the "recording" provisioning
backend).

Run from the repository root (the database is dropped and created afresh, and dropped
again at the end unless ``--keep-db``; Redis database 9 is emptied first):

    .venv/bin/python bench/notifications.py                     # 100,000 lines
    .venv/bin/python bench/notifications.py --lines 1000000     # 100,000 customers

It prints: notices created, e-mails accepted by the SMTP server, the time from the
declaration to the last e-mail accepted, e-mails per second, statements per batch of the
sender, and the same e-mails sent by the simplest design that could do the job (one
process, one loop over the customers, no outbox) for comparison.
"""

import argparse
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

import redis
from aiosmtpd.controller import Controller

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.disaster import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    bench_database,
    drop_database,
    recreate_database,
)
from tests.mailserver import free_port  # noqa: E402 (the path above first)

LINES_PER_CUSTOMER = 10
TARGET_SECONDS = 600  # every customer told within 10 minutes of the declaration
BATCH_SIZE = 200


class CountingSMTP:
    """Accepts every message; counts them, when, each Message-ID once, and the messages
    to a set of recipients already written to (a customer told twice).

    Runs in a process of its own (``serve``), as a mail server would: in the bench's
    process it would take the interpreter's lock from the in-process sender it measures.
    The counters are shared memory the bench reads.
    """

    def __init__(self):
        self.count = multiprocessing.Value("q", 0)
        self.repeats = multiprocessing.Value("q", 0)
        self.told_again = multiprocessing.Value("q", 0)
        self.first = multiprocessing.Value("d", 0.0)
        self.last = multiprocessing.Value("d", 0.0)
        # In the server's process only.
        self.message_ids: set[str] = set()
        self.recipients: set[tuple[str, ...]] = set()

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
                break
            if not line:
                break
        recipients = tuple(sorted(address.lower() for address in envelope.rcpt_tos))
        with self.count.get_lock():
            self.count.value += 1
            self.first.value = self.first.value or now
            self.last.value = now
            if message_id in self.message_ids:
                self.repeats.value += 1
            self.message_ids.add(message_id)
            if recipients in self.recipients:
                self.told_again.value += 1
            self.recipients.add(recipients)
        return "250 Message accepted for delivery"


def serve(handler: CountingSMTP, port: int, ready, stop) -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class LocalSMTPServer:
    """A ``CountingSMTP`` on a free local port, in a process of its own, until ``close``."""

    def __init__(self):
        self.handler = CountingSMTP()
        self.port = free_port()
        self._stop = multiprocessing.Event()
        ready = multiprocessing.Event()
        self._process = multiprocessing.Process(
            target=serve, args=(self.handler, self.port, ready, self._stop), daemon=True
        )
        self._process.start()
        ready.wait(10)

    def close(self) -> None:
        self._stop.set()
        self._process.join(10)


def load_customers(n_lines: int, today) -> tuple[int, object]:
    """``n_lines`` lines in service over n/10 customers, each with one user: SQL only."""
    from django.db import connection

    from portal.accounts.models import User
    from subscriptions.models import Plan, term_end_for

    customers = max(1, n_lines // LINES_PER_CUSTOMER)
    plan = Plan.objects.create(name="Bench BCP", normal_kbps=128, upgraded_kbps=2048)
    operator = User.objects.create_user("operator@bench.example", is_staff=True)
    start = today - timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscriptions_customer (code, name, kind, email, phone, created_at)"
            " SELECT 'B' || lpad(i::text, 7, '0'), 'ベンチ顧客 ' || i, 'business',"
            " 'soumu' || i || '@customer.bench.example', '', now()"
            " FROM generate_series(1, %s) AS i",
            [customers],
        )
        cursor.execute(
            "INSERT INTO accounts_user (password, is_superuser, email, full_name,"
            " is_staff, is_active, date_joined, customer_id)"
            " SELECT '!', false, 'user' || id || '@customer.bench.example', '', false,"
            " true, now(), id FROM subscriptions_customer",
        )
        cursor.execute(
            "INSERT INTO subscriptions_site (customer_id, name, postal_code, prefecture,"
            " address, contact_phone, created_at, antenna_serial, modem_serial)"
            " SELECT c.id, '拠点 ' || i, '', lpad((1 + mod(c.id + i, 47))::text, 2, '0'),"
            " 'bench', '0494-22-0000', now(), '', ''"
            " FROM subscriptions_customer c, generate_series(1, %s) AS i",
            [LINES_PER_CUSTOMER],
        )
        cursor.execute(
            "INSERT INTO subscriptions_subscription (contract_number, site_id, plan_id,"
            " service_start, term_end, status, static_ip, created_at)"
            " SELECT 'BENCH-' || lpad(id::text, 8, '0'), id, %s, %s, %s, 'active', false,"
            " now() FROM subscriptions_site",
            [plan.pk, start, term_end_for(start)],
        )
        # Each line's speed row, at normal speed (the table's defaults).
        cursor.execute(
            "INSERT INTO subscriptions_linespeed (subscription_id)"
            " SELECT id FROM subscriptions_subscription"
        )
        cursor.execute("ANALYZE")
    return customers, operator


def start_workers(count: int, env: dict, log_dir: str) -> list[subprocess.Popen]:
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo",
        "-Q", env["CELERY_QUEUE"], "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-l", "WARNING",
    ]  # fmt: skip
    workers = []
    for number in range(count):
        log = open(Path(log_dir, f"worker{number}.log"), "w")  # noqa: SIM115 (kept open)
        workers.append(
            subprocess.Popen(
                [*command, "-n", f"bench{number}@%h"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def count_statements():
    """A context manager counting the statements Django sends (COMMIT excluded)."""
    from contextlib import contextmanager

    from django.db import connection

    @contextmanager
    def counting():
        counter = {"n": 0}

        def count(execute, statement, params, many, context):
            counter["n"] += 1
            return execute(statement, params, many, context)

        with connection.execute_wrapper(count):
            yield counter

    return counting()


def send_one_by_one(subjects: Iterable, compose: Callable) -> tuple[float, int]:
    """The simplest sender that does the job: one process, one loop over what to tell
    (``compose`` makes each one's e-mail, a ``support.outbox.Composed``, or None), each
    e-mail sent at once over one SMTP connection; no outbox row, no lease, no retry.
    Returns seconds and e-mails sent."""
    from django.core.mail import EmailMessage, get_connection

    started, sent = time.perf_counter(), 0
    connection = get_connection()
    connection.open()
    for subject in subjects:
        composed = compose(subject)
        if composed:
            connection.send_messages(
                [EmailMessage(composed.subject, composed.body, to=composed.to)]
            )
            sent += 1
    connection.close()
    return time.perf_counter() - started, sent


def simplest_design(notice_ids: list[int]) -> float:
    """Each customer's notice composed by the project's composer, sent one by one
    (``send_one_by_one``). Returns seconds."""
    from upgrades.services.notices import compose_notices

    seconds, _ = send_one_by_one(notice_ids, lambda pk: compose_notices([pk])[pk])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--timeout", type=int, default=1800, help="give up after S seconds")
    parser.add_argument("--baseline-sample", type=int, default=2000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).replace(
        "bcp_bench", "bcp_bench_mail"
    )
    config = bench_database(url)
    recreate_database(config)
    os.environ["DATABASE_URL"] = url
    os.environ["CELERY_BROKER_URL"] = args.broker
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_QUEUE"] = queue
    server = LocalSMTPServer()
    smtp, port = server.handler, server.port
    os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{port}"
    os.environ["OUTBOX_BATCH_SIZE"] = str(BATCH_SIZE)
    os.environ["OUTBOX_PARALLEL_SENDERS"] = str(args.workers)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    redis.Redis.from_url(args.broker).flushdb()  # no message of an earlier run

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from incidents.broadcasts import send_mass_message
    from support.models import OutboundEmail
    from upgrades.models import CustomerNotice
    from upgrades.services.blanket import declare_disaster
    from upgrades.services.notices import queue_deadline_reminders

    settings.DEBUG = False
    workers = []
    try:
        call_command("migrate", verbosity=0)
        today = timezone.localdate()
        loading = time.perf_counter()
        customers, operator = load_customers(args.lines, today)
        print(f"BCP Portal notifications bench, {today.isoformat()}")
        print(
            f"{args.lines:,} lines over {customers:,} customers (2 addresses each), loaded in"
            f" {time.perf_counter() - loading:.1f} s; {args.workers} Celery worker processes"
            f" on {args.broker}; a real SMTP server on 127.0.0.1:{port};"
            f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        with tempfile.TemporaryDirectory() as log_dir:
            workers = start_workers(args.workers, dict(os.environ), log_dir)
            time.sleep(3)  # workers connected before the clock starts

            # The operator's submit: the service the dashboard's POST calls.
            declared = time.time()
            blanket = declare_disaster(
                operator=operator,
                title="ベンチ: 全国規模の地震",
                nationwide=True,
                prefectures=[],
                message="全国の回線を一時的に高速化しました。",
                idempotency_key="bench",
                now=timezone.now(),
            )
            answered = time.time() - declared
            deadline = declared + args.timeout
            granted_at = None
            while smtp.count.value < customers and time.time() < deadline:
                if granted_at is None and CustomerNotice.objects.exists():
                    granted_at = time.time()
                time.sleep(0.5)
            told = smtp.count.value
            total = smtp.last.value - declared if smtp.count.value else float("nan")
            sending = smtp.last.value - smtp.first.value if smtp.count.value > 1 else float("nan")

            # Then the operator writes to everyone in service (a mass message).
            before_mass = smtp.count.value
            mass_started = time.time()
            message = send_mass_message(
                operator=operator,
                subject_ja="ベンチ: 全国のお客様へ",
                body_ja="秩父の通信センターは通常どおり運用しています。",
                subject_en="Bench: to every customer",
                body_en="The Chichibu ground station is operating normally.",
                audience="everyone",
                idempotency_key="bench-mass",
                now=timezone.now(),
            )
            mass_answered = time.time() - mass_started
            deadline = mass_started + args.timeout
            while smtp.count.value - before_mass < customers and time.time() < deadline:
                time.sleep(0.5)
            mass_told = smtp.count.value - before_mass
            mass_total = smtp.last.value - mass_started
            message.refresh_from_db()
            stop_workers(workers)
            workers = []
            if smtp.count.value < customers:
                for log in sorted(Path(log_dir).iterdir()):
                    print(log.read_text()[-3000:])
        notices = CustomerNotice.objects.count()
        sent_rows = OutboundEmail.objects.filter(status="sent").count()

        # Statements per batch: the deadline reminder, one batch sent in this process.
        from support.outbox import send_queued_emails

        blanket.refresh_from_db()
        queue_deadline_reminders(now=blanket.deadline - timedelta(hours=1))
        with count_statements() as counter:
            report = send_queued_emails(batch_size=BATCH_SIZE, time_budget=0)
        per_batch = counter["n"]
        assert report.sent == min(BATCH_SIZE, customers), report

        # The simplest design, on the same "upgraded" notices (a sample), same SMTP server.
        sample = list(
            CustomerNotice.objects.filter(kind="blanket_started")
            .order_by("pk")
            .values_list("pk", flat=True)[: args.baseline_sample]
        )
        with count_statements() as baseline_counter:
            baseline = simplest_design(sample)
        baseline_rate = len(sample) / baseline if baseline else float("nan")
        baseline_total = customers / baseline_rate
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('support_outboundemail'))")
            (outbox_size,) = cursor.fetchone()
    finally:
        stop_workers(workers)
        server.close()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(config)

    print()
    print(f"declare request answered in        {answered:8.2f} s")
    if granted_at:
        print(f"all lines granted, notices queued  {granted_at - declared:8.2f} s after")
    print(f"notices created                    {notices:8,}  (one per customer per event)")
    print(f"e-mails accepted by the SMTP server {told:7,}"
          f"  of {customers:,} customers; repeats {smtp.repeats.value}")  # fmt: skip
    print(f"outbox rows sent                   {sent_rows:8,}  ({outbox_size} on disk)")
    print(f"declaration -> last e-mail         {total:8.1f} s  (target {TARGET_SECONDS} s)")
    print(
        f"sending window                     {sending:8.1f} s, {customers / sending:,.0f} e-mails/s"
    )
    print(f"statements per batch of {BATCH_SIZE}        {per_batch:8}  (sender, in process)")
    print()
    print(f"mass message to everyone in service: request answered in {mass_answered:.2f} s;")
    print(
        f"  {mass_told:,} of {message.organisations:,} organisations"
        f" ({message.addresses:,} addresses) told {mass_total:.1f} s after the operator's"
        f" confirm, {mass_told / mass_total:,.0f} e-mails/s"
    )
    print()
    print(
        f"simplest design (1 process, a loop per customer, no outbox): {len(sample):,} e-mails in"
        f" {baseline:.1f} s = {baseline_rate:,.0f}/s,"
        f" {baseline_counter['n'] / max(len(sample), 1):.1f} statements per e-mail;"
        f" all {customers:,} would take {baseline_total:,.0f} s"
    )
    print(
        f"ratio, pipeline's sending window / simplest loop: {sending / baseline_total:.2f}"
        f"  (below 1: faster)"
    )
    print(
        f"one e-mail per line (the old design) would have been {args.lines:,} e-mails,"
        f" {args.lines / customers:.0f}x as many"
    )
    if told < customers or mass_told < customers or smtp.repeats.value:
        sys.exit("FAILED: not every customer was told exactly once")
    if total > TARGET_SECONDS:
        print(f"WARNING: the last customer was told after {total:.0f} s (target {TARGET_SECONDS})")


if __name__ == "__main__":
    main()
