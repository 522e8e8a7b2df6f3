"""Benchmark: a nationwide disaster over N lines, end to end, against the minimal design.

DESIGN.md invariant 4 says scale is part of correctness: a nationwide declaration
touches every subscription (plan for 1,000,000), so the paths it takes must be
set-based, in chunks of a constant number of statements. This script times the whole
disaster path, phase by phase, three ways on the same data:

- **service**: the project's services, as the dashboard, Celery and beat call them;
- **raw SQL**: the same row changes on the project's tables in the fewest plain
  statements (one transaction per phase; reconcile in the same batches as the service);
- **minimal**: the least a design can do and still be correct in the small — a table
  of lines and a table of grants (plus an audit of applied changes), in tables of its own
  filled with the same lines: one ``INSERT … SELECT`` plus one ``UPDATE`` per phase.

Phases, in order: declare, the declaration's notices sent to a local SMTP server (one
e-mail per customer organisation), reconcile (recording backend), reconcile again over
HTTP (the applied speeds are first put back, untimed, so the network has the same work),
revert at the deadline with nothing confirmed, reconcile after the revert (recording
backend).

Run from the repository root (the database is dropped and created afresh, and dropped
again at the end unless ``--keep-db``):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bcp_bench \\
        .venv/bin/python bench/disaster.py [--lines 100000] [--repeat 3]

Celery tasks enqueued on commit go to an in-memory broker that nobody reads; the
reconcile phases call ``reconcile_speeds`` and the notices phase the outbox's sender
themselves (bench/notifications.py runs the same sender in Celery workers).
"""

import argparse
import json
import logging
import multiprocessing
import os
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import environ
import psycopg2
from psycopg2 import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bcp_bench"
CHUNK_SIZE = 5000
# The target: the whole path within 3 times the minimal design.
TARGET_RATIO = 3.0
CUSTOMERS = 50
WINDOW_DAYS = 3
TITLE = "Bench: nationwide earthquake"
NORMAL_KBPS, UPGRADED_KBPS = 128, 2048
# Every 50th line is out of scope (half cancelled, half expired), so the scope filter
# is exercised too; in-scope ids are interleaved with them, as in a real table.
OUT_OF_SCOPE_EVERY = 50

PHASES = [
    "declare",
    "notices",
    "reconcile",
    "reconcile http",
    "revert",
    "reconcile after revert",
]
PATHS = ["service", "raw SQL", "minimal"]

# What the phases write, and what is reset between the paths.
WRITTEN_TABLES = [
    "subscriptions_linespeed",
    "subscriptions_outofsynctally",
    "upgrades_speedgrant",
    "upgrades_customernotice",
    "upgrades_provisioningchange",
    "support_outboundemail",
    "upgrades_blanketupgrade",
    "upgrades_blanketupgradeevent",
    "incidents_disaster",
]
MINIMAL_TABLES = ["min_line", "min_grant", "min_change"]


# --- Database and Django ----------------------------------------------------------------


def _admin_execute(config: dict, statement: sql.Composable) -> None:
    # DROP / CREATE DATABASE cannot run inside a transaction, nor on the database itself.
    conn = psycopg2.connect(
        dbname="postgres",
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        host=config["HOST"] or None,
        port=config["PORT"] or None,
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def bench_database(url: str) -> dict:
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/disaster.py measures PostgreSQL: DATABASE_URL must be postgres://…")
    # This script drops the database it is given: a name without "bench" is a mistake.
    if "bench" not in config["NAME"]:
        sys.exit(f"Refusing to drop database {config['NAME']!r}: its name must contain 'bench'.")
    return config


def recreate_database(config: dict) -> None:
    name = sql.Identifier(config["NAME"])
    _admin_execute(config, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    _admin_execute(config, sql.SQL("CREATE DATABASE {}").format(name))


def drop_database(config: dict) -> None:
    _admin_execute(
        config,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config["NAME"])),
    )


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    # On-commit enqueues (apply, reconcile, send) must go nowhere: the bench times the
    # database, not a worker. Forced, so a Redis URL in the environment is not used.
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    import django

    django.setup()
    # The recording backend logs every change at INFO: a million lines on stderr would
    # time the terminal. Its warnings (a batch set aside) still show.
    logging.getLogger("upgrades.provisioning").setLevel(logging.WARNING)
    from django.conf import settings

    # As in production: no debug cursor keeping a copy of every statement sent.
    settings.DEBUG = False


# --- Data -------------------------------------------------------------------------------


@dataclass
class Fleet:
    operator: object  # the declaring operator (a portal.accounts User)
    in_scope: int
    total: int
    last_in_scope_id: int
    customers_in_scope: int  # organisations with a line in scope: one notice each


def load_lines(n: int, today: date) -> Fleet:
    """``n`` in-service lines (plus out-of-scope ones), one site each, in seconds.

    Sites and subscriptions are generated by the database (INSERT … SELECT
    generate_series): no row travels through Python.
    """
    from django.db import connection

    from portal.accounts.models import User
    from subscriptions.models import Customer, Plan, term_end_for

    customers = Customer.objects.bulk_create(
        Customer(code=f"BENCH{i:03}", name=f"Bench customer {i}") for i in range(CUSTOMERS)
    )
    plan = Plan.objects.create(
        name="Bench BCP", normal_kbps=NORMAL_KBPS, upgraded_kbps=UPGRADED_KBPS
    )
    operator = User.objects.create_user("operator@bench.example", is_staff=True)
    # total - total // 50 == n exactly, see OUT_OF_SCOPE_EVERY.
    total = n + n // (OUT_OF_SCOPE_EVERY - 1)
    start = today - timedelta(days=365)
    old_start = today - timedelta(days=6 * 365)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO subscriptions_site
                (customer_id, name, postal_code, prefecture, address, contact_phone, created_at,
                 antenna_serial, modem_serial)
            SELECT (%(customers)s::bigint[])[1 + mod(i, %(k)s)], 'site ' || i, '',
                   lpad((1 + mod(i, 47))::text, 2, '0'), 'bench address ' || i,
                   '0494-22-0000', now(), '', ''
            FROM generate_series(1, %(total)s) AS i
            """,
            {"customers": [c.pk for c in customers], "k": CUSTOMERS, "total": total},
        )
        cursor.execute(
            """
            INSERT INTO subscriptions_subscription
                (contract_number, site_id, plan_id, service_start, term_end, status,
                 static_ip, created_at)
            SELECT 'BENCH-' || lpad(i::text, 8, '0'), id, %(plan)s,
                   CASE WHEN mod(i, %(every2)s) = %(every)s THEN %(old_start)s
                        ELSE %(start)s END,
                   CASE WHEN mod(i, %(every2)s) = %(every)s THEN %(old_end)s
                        ELSE %(end)s END,
                   CASE WHEN mod(i, %(every2)s) = 0 THEN 'cancelled' ELSE 'active' END,
                   mod(i, 10) = 0, now()
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM subscriptions_site) s
            """,
            {
                "plan": plan.pk,
                "every": OUT_OF_SCOPE_EVERY,
                "every2": 2 * OUT_OF_SCOPE_EVERY,
                "start": start,
                "end": term_end_for(start),
                "old_start": old_start,
                "old_end": term_end_for(old_start),
            },
        )
        # Each line's speed row, at normal speed (the table's defaults).
        cursor.execute(
            "INSERT INTO subscriptions_linespeed (subscription_id)"
            " SELECT id FROM subscriptions_subscription"
        )
        cursor.execute(
            "SELECT count(*), max(id) FROM subscriptions_subscription"
            " WHERE status = 'active' AND term_end > %s",
            [today],
        )
        in_scope, last_id = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT st.customer_id) FROM subscriptions_subscription s"
            " JOIN subscriptions_site st ON st.id = s.site_id"
            " WHERE s.status = 'active' AND s.term_end > %s",
            [today],
        )
        (customers_in_scope,) = cursor.fetchone()
        # The phases keep their own statistics fresh (settle()); an autovacuum landing
        # in one timing and not the other would only add noise.
        create_minimal_tables(cursor)
        for table in WRITTEN_TABLES + MINIMAL_TABLES:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    assert in_scope == n, (in_scope, n)
    return Fleet(
        operator=operator,
        in_scope=in_scope,
        total=total,
        last_in_scope_id=last_id,
        customers_in_scope=customers_in_scope,
    )


def settle(*, full: bool = False) -> None:
    """Fresh statistics, no dead rows left to the next phase, dirty pages flushed.

    Run before every timed phase so neither path pays for the other's garbage or
    checkpoint. ``full`` also compacts the tables, so both paths start from the same
    physical layout after a reset.
    """
    from django.db import connection

    options = "(FULL, ANALYZE)" if full else "(ANALYZE)"
    with connection.cursor() as cursor:
        for table in WRITTEN_TABLES + MINIMAL_TABLES:
            cursor.execute(f"VACUUM {options} {table}")
        cursor.execute("CHECKPOINT")


def create_minimal_tables(cursor) -> None:
    """The minimal design, filled with the same lines: what a nationwide disaster needs
    at the least. A line knows its scope (status, term end), its wanted and applied speed
    and a change number; a grant knows its line, its blanket upgrade and its state; an
    applied change is one audit row. Primary keys only: no foreign key, no other index,
    no notice, no event, no lock beyond the statements' own."""
    cursor.execute(
        "CREATE TABLE min_line (id bigint PRIMARY KEY, contract_number text NOT NULL,"
        " status text NOT NULL, term_end date NOT NULL, upgraded boolean NOT NULL,"
        " version integer NOT NULL, applied boolean NOT NULL)"
    )
    cursor.execute(
        "INSERT INTO min_line SELECT id, contract_number, status, term_end, false, 0, false"
        " FROM subscriptions_subscription"
    )
    cursor.execute(
        "CREATE TABLE min_grant (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " line_id bigint NOT NULL, blanket_id integer NOT NULL, state text NOT NULL,"
        " starts_at timestamptz NOT NULL, ended_at timestamptz)"
    )
    cursor.execute(
        "CREATE TABLE min_change (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " line_id bigint NOT NULL, version integer NOT NULL, upgraded boolean NOT NULL,"
        " applied_at timestamptz NOT NULL)"
    )


def reset_state() -> None:
    """Back to the loaded fleet: no disaster, no grant, no notice, every line normal."""
    from django.db import connection

    with connection.cursor() as cursor:
        # CASCADE reaches upgrade requests and their m2m rows, which the bench never
        # creates; the lines themselves are kept.
        cursor.execute(
            "TRUNCATE support_outboundemail, upgrades_customernotice, upgrades_speedgrant,"
            " upgrades_provisioningchange, upgrades_blanketupgradeevent,"
            " upgrades_blanketupgrade, incidents_disaster CASCADE"
        )
        # No line waits for the network (the raw SQL path does not keep the tally).
        cursor.execute("TRUNCATE subscriptions_outofsynctally")
        cursor.execute(
            "UPDATE subscriptions_linespeed"
            " SET desired_upgraded = false, desired_version = 0, desired_cause = '',"
            " applied_upgraded = false, provisioning_lease_until = NULL,"
            " provisioning_failures = 0"
            " WHERE desired_upgraded OR desired_version <> 0 OR applied_upgraded"
        )
        cursor.execute("TRUNCATE min_grant, min_change")
        cursor.execute(
            "UPDATE min_line SET upgraded = false, version = 0, applied = false"
            " WHERE upgraded OR version <> 0 OR applied"
        )
    settle(full=True)


def unapply_speeds() -> None:
    """Between the two reconciles after the declaration: the network's speeds back to
    normal and the audit emptied, so the HTTP run has the same work as the first."""
    from django.db import connection

    from subscriptions.models import OutOfSyncTally

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE upgrades_provisioningchange, min_change")
        cursor.execute(
            "UPDATE subscriptions_linespeed SET applied_upgraded = false WHERE applied_upgraded"
        )
        # They wait for the network again (the tally the services keep).
        OutOfSyncTally.objects.add(cursor.rowcount)
        cursor.execute("UPDATE min_line SET applied = false WHERE applied")
    settle()


# --- Measuring --------------------------------------------------------------------------


@dataclass
class Measurement:
    rows: int
    seconds: float
    statements: int
    chunks: int  # transactions committed
    longest_chunk: float  # seconds, from the phase's start or the last commit
    max_statements_per_chunk: int
    peak_rss_mb: float  # the bench process's peak so far (ru_maxrss)
    # SQL shape -> (count, seconds): what dominates a phase (--profile).
    by_statement: dict[str, list[float]] = field(default_factory=dict)


def measure(phase: Callable[[], int]) -> Measurement:
    """Time ``phase``, count every statement it sends through Django's connection, and
    cut it into chunks at each commit (the longest chunk, statements in the largest)."""
    from django.db import connection

    by_statement: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    chunk = {"started": 0.0, "statements": 0, "longest": 0.0, "most": 0, "count": 0}

    def count(execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            shape = " ".join(statement.split())[:110]
            by_statement[shape][0] += 1
            by_statement[shape][1] += time.perf_counter() - started
            chunk["statements"] += 1

    def end_chunk() -> None:
        at = time.perf_counter()
        if chunk["statements"]:
            chunk["count"] += 1
            chunk["longest"] = max(chunk["longest"], at - chunk["started"])
            chunk["most"] = max(chunk["most"], chunk["statements"])
        chunk["started"], chunk["statements"] = at, 0

    # Django's atomic() commits through connection.commit(): each commit ends a chunk.
    plain_commit = connection.commit

    def commit():
        plain_commit()
        end_chunk()

    connection.commit = commit
    try:
        with connection.execute_wrapper(count):
            started = chunk["started"] = time.perf_counter()
            rows = phase()
            seconds = time.perf_counter() - started
            end_chunk()  # statements in autocommit after the last commit
    finally:
        del connection.commit
    statements = sum(int(n) for n, _ in by_statement.values())
    return Measurement(
        rows=rows,
        seconds=seconds,
        statements=statements,
        chunks=chunk["count"],
        longest_chunk=chunk["longest"],
        max_statements_per_chunk=chunk["most"],
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        by_statement=dict(by_statement),
    )


# --- The network: a local HTTP server in a process of its own ---------------------------


def serve_network(port, ready, stop, changes) -> None:
    """Accepts every batch POSTed (HTTP/1.1, so a client may keep its connection) and
    counts the changes in it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with changes.get_lock():
                changes.value += len(body["changes"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    ready.set()
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()


class Network:
    def __init__(self):
        sys.path.insert(0, str(REPO_ROOT))
        from tests.mailserver import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/speeds"
        self.changes = multiprocessing.Value("q", 0)
        self.stop = multiprocessing.Event()
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=serve_network, args=(self.port, ready, self.stop, self.changes), daemon=True
        )
        self.process.start()
        ready.wait(10)

    def close(self) -> None:
        self.stop.set()
        self.process.join(5)


def http_backend(network: Network):
    from upgrades.provisioning import HttpBackend

    return HttpBackend(network.url, timeout=10.0)


def recording_backend():
    from upgrades.provisioning import RecordingBackend

    return RecordingBackend()


# --- The service path -------------------------------------------------------------------


def service_declare(fleet: "Fleet", now: datetime) -> int:
    from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster

    # What the dashboard's submit and then its Celery task call.
    blanket = declare_disaster(
        operator=fleet.operator,
        title=TITLE,
        nationwide=True,
        prefectures=[],
        window_days=WINDOW_DAYS,
        idempotency_key="bench-declare",
        now=now,
    )
    return apply_blanket_upgrade(blanket_id=blanket.pk, now=now, chunk_size=CHUNK_SIZE)


def service_reconcile(backend, now: datetime) -> int:
    from upgrades.services.provisioning import reconcile_speeds

    # What the Celery task does: a run that stops on its time budget asks for another.
    applied = 0
    while True:
        result = reconcile_speeds(backend=backend, now=now)
        applied += result.applied
        if not result.more:
            return applied


def service_revert(fleet: "Fleet", deadline: datetime) -> int:
    from upgrades.services.blanket import revert_expired_grants

    return revert_expired_grants(now=deadline, chunk_size=CHUNK_SIZE)


# --- The raw-SQL baseline ---------------------------------------------------------------
# The same rows as the services write, in the fewest plain statements, in one
# transaction: no chunks, no locks beyond the UPDATEs' own, nothing through Python.
# Reconcile cannot be one statement (the network takes batches): it goes in the
# service's batch size, two statements a batch.


def raw_declare(fleet: Fleet, now: datetime) -> int:
    from django.db import connection, transaction
    from django.utils import timezone

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_disaster (title, nationwide, prefectures, message,"
            " message_en, closing_message, declared_at, declared_by_id, idempotency_key)"
            " VALUES (%s, true, '[]', '', '', '', %s, %s, 'bench-declare') RETURNING id",
            [TITLE, now, fleet.operator.pk],
        )
        (disaster_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO upgrades_blanketupgrade (disaster_id, deadline, status, in_service_on,"
            " cursor, created_at) VALUES (%s, %s, 'applying', %s, 0, %s) RETURNING id",
            [disaster_id, now + timedelta(days=WINDOW_DAYS), timezone.localdate(now), now],
        )
        (blanket_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO upgrades_blanketupgradeevent (blanket_upgrade_id, kind, at, by_id, detail)"
            " VALUES (%s, 'declared', %s, %s, %s::jsonb)",
            [
                blanket_id,
                now,
                fleet.operator.pk,
                f'{{"nationwide": true, "prefectures": [], "window_days": {WINDOW_DAYS}}}',
            ],
        )
        cursor.execute(
            "INSERT INTO upgrades_speedgrant"
            " (subscription_id, blanket_upgrade_id, source, state, starts_at)"
            " SELECT id, %s, 'blanket', 'pending', %s FROM subscriptions_subscription"
            " WHERE status = 'active' AND term_end > %s ON CONFLICT DO NOTHING",
            [blanket_id, now, timezone.localdate(now)],
        )
        granted = cursor.rowcount
        cursor.execute(
            "UPDATE subscriptions_linespeed SET desired_upgraded = true,"
            " desired_version = desired_version + 1, desired_cause = %s"
            " WHERE NOT desired_upgraded AND subscription_id IN"
            " (SELECT subscription_id FROM upgrades_speedgrant WHERE blanket_upgrade_id = %s)",
            [f"blanket upgrade {blanket_id}: {TITLE}"[:200], blanket_id],
        )
        raw_notices(cursor, "blanket_started", now, "g.blanket_upgrade_id = %s", [blanket_id])
        cursor.execute(
            "UPDATE upgrades_blanketupgrade SET status = 'active', applied_at = %s,"
            " cursor = (SELECT max(subscription_id) FROM upgrades_speedgrant"
            "           WHERE blanket_upgrade_id = %s)"
            " WHERE id = %s",
            [now, blanket_id, blanket_id],
        )
        cursor.execute(
            "INSERT INTO upgrades_blanketupgradeevent (blanket_upgrade_id, kind, at, detail)"
            " VALUES (%s, 'granted', %s, %s::jsonb)",
            [blanket_id, now, f'{{"grants": {granted}}}'],
        )
    return granted


def raw_notices(cursor, kind: str, now: datetime, grants_where: str, params: list) -> None:
    """One notice per (blanket upgrade, customer) of the grants, and its outbox row."""
    cursor.execute(
        "INSERT INTO upgrades_customernotice (kind, customer_id, blanket_upgrade_id, created_at,"
        " queued_at) SELECT DISTINCT %s, st.customer_id, g.blanket_upgrade_id, %s, %s"
        " FROM upgrades_speedgrant g"
        " JOIN subscriptions_subscription s ON s.id = g.subscription_id"
        " JOIN subscriptions_site st ON st.id = s.site_id"
        f" WHERE {grants_where} ON CONFLICT DO NOTHING",
        [kind, now, now, *params],
    )
    cursor.execute(
        "INSERT INTO support_outboundemail (key, composer, composer_ref, created_at, send_after)"
        " SELECT 'upgrades.notice:' || id, 'upgrades.notice', id, %s, %s"
        " FROM upgrades_customernotice WHERE kind = %s AND created_at = %s"
        " ON CONFLICT DO NOTHING",
        [now, now, kind, now],
    )


def raw_revert(fleet: Fleet, deadline: datetime) -> int:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE upgrades_speedgrant g SET state = 'reverted', ended_at = %s"
            " FROM upgrades_blanketupgrade b"
            " WHERE g.blanket_upgrade_id = b.id AND g.state = 'pending' AND b.deadline <= %s",
            [deadline, deadline],
        )
        reverted = cursor.rowcount
        # A line keeps its speed while another grant (a request, another blanket) boosts it.
        cursor.execute(
            "UPDATE subscriptions_linespeed s SET desired_upgraded = false,"
            " desired_version = desired_version + 1, desired_cause = %s"
            " WHERE s.desired_upgraded AND s.subscription_id IN"
            " (SELECT subscription_id FROM upgrades_speedgrant"
            "  WHERE state = 'reverted' AND ended_at = %s)"
            " AND NOT EXISTS (SELECT 1 FROM upgrades_speedgrant g"
            "  WHERE g.subscription_id = s.subscription_id"
            "  AND g.state IN ('pending', 'active'))",
            ["not confirmed before the deadline", deadline],
        )
        raw_notices(
            cursor, "reverted", deadline, "g.state = 'reverted' AND g.ended_at = %s", [deadline]
        )
        # The run in each blanket upgrade's history, as revert_expired_grants records it.
        cursor.execute(
            "INSERT INTO upgrades_blanketupgradeevent (blanket_upgrade_id, kind, at, detail)"
            " SELECT blanket_upgrade_id, 'reverted', %s, jsonb_build_object('grants', count(*))"
            " FROM upgrades_speedgrant WHERE state = 'reverted' AND ended_at = %s"
            " GROUP BY blanket_upgrade_id",
            [deadline, deadline],
        )
    return reverted


def raw_reconcile(backend, now: datetime) -> int:
    from django.conf import settings
    from django.db import connection, transaction

    from upgrades.provisioning import SpeedChange

    size, after, applied = settings.PROVISIONING_BATCH_SIZE, 0, 0
    while True:
        with connection.cursor() as cursor:
            # The out-of-sync index's own predicate, so the planner can use it.
            cursor.execute(
                # The batch first, then its lines' numbers and plans: joined before the
                # LIMIT, the planner hashed the whole subscription table for each batch.
                "SELECT ls.subscription_id, s.contract_number, ls.desired_upgraded,"
                " ls.desired_version, p.normal_kbps, p.upgraded_kbps"
                " FROM (SELECT subscription_id, desired_upgraded, desired_version"
                "  FROM subscriptions_linespeed"
                "  WHERE ((desired_upgraded AND NOT applied_upgraded)"
                "      OR (NOT desired_upgraded AND applied_upgraded))"
                "  AND subscription_id > %s ORDER BY subscription_id LIMIT %s) ls"
                " JOIN subscriptions_subscription s ON s.id = ls.subscription_id"
                " JOIN subscriptions_plan p ON p.id = s.plan_id"
                " ORDER BY ls.subscription_id",
                [after, size],
            )
            rows = cursor.fetchall()
        if not rows:
            return applied
        after = rows[-1][0]
        backend.apply(
            [
                SpeedChange(
                    change_id=f"{pk}-{version}",
                    line=contract,
                    speed_kbps=fast if upgraded else normal,
                )
                for pk, contract, upgraded, version, normal, fast in rows
            ]
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH done AS (UPDATE subscriptions_linespeed s"
                "   SET applied_upgraded = s.desired_upgraded, provisioning_lease_until = NULL,"
                "       provisioning_failures = 0"
                "   FROM subscriptions_subscription line"
                "   WHERE s.subscription_id = ANY(%s) AND line.id = s.subscription_id"
                "   RETURNING s.subscription_id AS id, s.desired_version, s.desired_upgraded,"
                "             s.desired_cause, line.plan_id)"
                " INSERT INTO upgrades_provisioningchange"
                " (subscription_id, version, upgraded, from_kbps, to_kbps, cause, batch,"
                "  applied_at)"
                " SELECT done.id, done.desired_version, done.desired_upgraded,"
                "  CASE WHEN done.desired_upgraded THEN p.normal_kbps ELSE p.upgraded_kbps END,"
                "  CASE WHEN done.desired_upgraded THEN p.upgraded_kbps ELSE p.normal_kbps END,"
                "  coalesce(nullif(done.desired_cause, ''), '-'), %s, %s"
                " FROM done JOIN subscriptions_plan p ON p.id = done.plan_id"
                " ON CONFLICT DO NOTHING",
                [[row[0] for row in rows], str(uuid.uuid4()), now],
            )
            applied += cursor.rowcount


# --- The minimal design -----------------------------------------------------------------
# Its own tables (create_minimal_tables), the same lines: one INSERT … SELECT plus one
# UPDATE for the declaration and for the revert, in one transaction each; reconcile in
# the service's batch size, one SELECT and one UPDATE … RETURNING into the audit a batch.


def minimal_declare(fleet: "Fleet", now: datetime) -> int:
    from django.db import connection, transaction
    from django.utils import timezone

    today = timezone.localdate(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO min_grant (line_id, blanket_id, state, starts_at)"
            " SELECT id, 1, 'pending', %s FROM min_line"
            " WHERE status = 'active' AND term_end > %s",
            [now, today],
        )
        granted = cursor.rowcount
        cursor.execute(
            "UPDATE min_line SET upgraded = true, version = version + 1"
            " WHERE status = 'active' AND term_end > %s",
            [today],
        )
    return granted


def minimal_reconcile(backend, now: datetime) -> int:
    from django.conf import settings
    from django.db import connection, transaction

    from upgrades.provisioning import SpeedChange

    size, after, applied = settings.PROVISIONING_BATCH_SIZE, 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, contract_number, upgraded, version FROM min_line"
                " WHERE upgraded <> applied AND id > %s ORDER BY id LIMIT %s",
                [after, size],
            )
            rows = cursor.fetchall()
        if not rows:
            return applied
        after = rows[-1][0]
        backend.apply(
            [
                SpeedChange(
                    change_id=f"{pk}-{version}",
                    line=contract,
                    speed_kbps=UPGRADED_KBPS if upgraded else NORMAL_KBPS,
                )
                for pk, contract, upgraded, version in rows
            ]
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH done AS (UPDATE min_line SET applied = upgraded WHERE id = ANY(%s)"
                "  RETURNING id, version, upgraded)"
                " INSERT INTO min_change (line_id, version, upgraded, applied_at)"
                " SELECT id, version, upgraded, %s FROM done",
                [[row[0] for row in rows], now],
            )
            applied += cursor.rowcount


def minimal_revert(fleet: "Fleet", deadline: datetime) -> int:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE min_grant SET state = 'reverted', ended_at = %s"
            " WHERE blanket_id = 1 AND state = 'pending'",
            [deadline],
        )
        reverted = cursor.rowcount
        cursor.execute(
            "UPDATE min_line l SET upgraded = false, version = l.version + 1"
            " FROM min_grant g WHERE g.line_id = l.id AND g.state = 'reverted'"
            " AND g.ended_at = %s",
            [deadline],
        )
    return reverted


# --- Notices: the declaration's e-mails to a local SMTP server ---------------------------
# bench/notifications.py's server (a process of its own counting messages, Message-IDs
# and customers written to twice) and its one-by-one sender, started afresh for each
# path's phase so its counts are that phase's.


def give_customers_an_address() -> None:
    """A contact address per customer organisation: without one the outbox skips the
    notice instead of sending it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE subscriptions_customer SET email = 'soumu' || id || '@customer.bench.example'"
        )


def mail_to(port: int) -> None:
    """Django's SMTP backend to the bench's server, as EMAIL_URL=smtp://127.0.0.1:port."""
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


def service_notices(fleet: "Fleet", now: datetime) -> int:
    """What the outbox's Celery task does (``support.tasks.send_queued_emails``): send
    batch after batch within its time budget, and run again while e-mails are due."""
    from django.conf import settings
    from django.utils import timezone

    from support import outbox

    sent = 0
    while True:
        report = outbox.send_queued_emails(time_budget=settings.OUTBOX_TASK_SECONDS)
        assert not report.errors, report.errors
        sent += report.sent
        if not outbox.has_due_emails(now=timezone.now()):
            return sent


def minimal_notices(fleet: "Fleet", now: datetime) -> int:
    """The simplest sender that does the job: one query over the pending grants by
    customer, each customer's e-mail (its lines, a link to answer each and one to keep
    them all) composed and sent at once, one by one over one connection."""
    from itertools import groupby

    from django.conf import settings
    from django.db import connection
    from django.urls import reverse

    from bench.notifications import send_one_by_one
    from support.outbox import Composed
    from upgrades.services.notices import blanket_response_token, grant_response_token

    answer = settings.PORTAL_BASE_URL + reverse("upgrades:respond-by-link", args=["TOKEN"])
    answer = answer.removesuffix("TOKEN/")

    def compose(customer) -> Composed:
        (customer_id, email), rows = customer
        lines = "".join(
            f"- {contract}  {site}\n  {answer}{grant_response_token(grant_id, None)}/\n"
            for _, _, site, contract, grant_id in rows
        )
        keep_all = f"{answer}{blanket_response_token(1, customer_id, True)}/"
        return Composed(
            to=[email],
            subject=f"回線を高速化しました / Your lines have been upgraded ({TITLE})",
            body=f"{TITLE}\n\n{lines}\nすべて継続 / Keep them all: {keep_all}\n",
        )

    # A server-side cursor: the grants stream in, a customer's e-mail goes when its
    # rows are read.
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            "SELECT st.customer_id, c.email, st.name, l.contract_number, g.id"
            " FROM min_grant g JOIN min_line l ON l.id = g.line_id"
            " JOIN subscriptions_subscription s ON s.id = g.line_id"
            " JOIN subscriptions_site st ON st.id = s.site_id"
            " JOIN subscriptions_customer c ON c.id = st.customer_id"
            " WHERE g.blanket_id = 1 AND g.state = 'pending'"
            " ORDER BY st.customer_id, st.name, l.contract_number"
        )
        _, sent = send_one_by_one(groupby(cursor, key=lambda row: row[:2]), compose)
    return sent


def warm_up_notices() -> None:
    """What a process pays on its first e-mail only: the URLconf (the answer links), the
    templates compiled, both languages' catalogues. Not timed, so that the path that
    happens to go first does not pay it for the others."""
    from django.urls import reverse

    from support.mail import bilingual_from_templates

    reverse("upgrades:respond-by-link", args=["TOKEN"])
    bilingual_from_templates("upgrades/email/blanket_started", {})


def measure_notices(path: str, fleet: "Fleet", now: datetime) -> Measurement:
    """The notices phase of ``path``, to a fresh local SMTP server, then its check."""
    from bench.notifications import LocalSMTPServer

    send = minimal_notices if path == "minimal" else service_notices
    server = LocalSMTPServer()
    try:
        mail_to(server.port)
        warm_up_notices()
        measured = measure(lambda: send(fleet, now))
        check_notices(path, fleet, server.handler)
    finally:
        server.close()
    return measured


# --- Correctness ------------------------------------------------------------------------


def snapshot(today: date) -> dict[str, list[tuple]]:
    """The end state the service and raw-SQL paths must agree on, in counts."""
    from django.db import connection

    queries = {
        "grants by state": "SELECT state, count(*) FROM upgrades_speedgrant GROUP BY 1",
        "lines by (wanted upgraded, change number)": (
            "SELECT desired_upgraded, desired_version, count(*)"
            " FROM subscriptions_linespeed GROUP BY 1, 2"
        ),
        "lines out of sync": (
            "SELECT count(*) FROM subscriptions_linespeed"
            " WHERE desired_upgraded <> applied_upgraded"
        ),
        "applied changes by speed": (
            "SELECT upgraded, count(*) FROM upgrades_provisioningchange GROUP BY 1"
        ),
        "notices by kind": "SELECT kind, count(*) FROM upgrades_customernotice GROUP BY 1",
        "e-mails queued": "SELECT count(*) FROM support_outboundemail WHERE status = 'queued'",
        "blanket upgrades (status, cursor, applied)": (
            "SELECT status, cursor, applied_at IS NOT NULL FROM upgrades_blanketupgrade"
        ),
        "blanket events by kind": (
            "SELECT kind, count(*) FROM upgrades_blanketupgradeevent GROUP BY 1"
        ),
        # Invariant 2: upgraded wanted exactly while a grant boosts the line.
        "lines whose wanted speed disagrees with their grants": (
            "SELECT count(*) FROM subscriptions_linespeed s WHERE s.desired_upgraded <>"
            " EXISTS (SELECT 1 FROM upgrades_speedgrant g"
            " WHERE g.subscription_id = s.subscription_id"
            " AND g.state IN ('pending', 'active'))"
        ),
        "out-of-scope lines touched": (
            "SELECT count(*) FROM subscriptions_subscription s"
            " JOIN subscriptions_linespeed ls ON ls.subscription_id = s.id"
            " WHERE ls.desired_version <> 0"
            " AND NOT (s.status = 'active' AND s.term_end > %(today)s)"
        ),
    }
    state = {}
    with connection.cursor() as cursor:
        for name, query in queries.items():
            cursor.execute(query, {"today": today})
            state[name] = sorted(cursor.fetchall())
    return state


def expected_after(phase: str, fleet: "Fleet") -> dict[str, list[tuple]]:
    n, untouched = fleet.in_scope, fleet.total - fleet.in_scope
    declared = {
        "grants by state": [("pending", n)],
        "lines by (wanted upgraded, change number)": [(False, 0, untouched), (True, 1, n)],
        "lines out of sync": [(n,)],
        "applied changes by speed": [],
        # One per customer organisation, not one per line.
        "notices by kind": [("blanket_started", fleet.customers_in_scope)],
        "e-mails queued": [(fleet.customers_in_scope,)],
        "blanket upgrades (status, cursor, applied)": [("active", fleet.last_in_scope_id, True)],
        "blanket events by kind": [("declared", 1), ("granted", 1)],
        "lines whose wanted speed disagrees with their grants": [(0,)],
        "out-of-scope lines touched": [(0,)],
    }
    if phase == "declare":
        return declared
    # The notices phase sends the declaration's e-mails: none is left queued (without the
    # phase, --no-notices, they stay queued).
    sent = "notices" in PHASES
    told = declared | {"e-mails queued": [(0,)]} if sent else declared
    if phase == "notices":
        return told
    if phase in ("reconcile", "reconcile http"):
        return told | {"lines out of sync": [(0,)], "applied changes by speed": [(True, n)]}
    reverted = told | {
        "grants by state": [("reverted", n)],
        "lines by (wanted upgraded, change number)": [(False, 0, untouched), (False, 2, n)],
        "lines out of sync": [(n,)],
        "applied changes by speed": [(True, n)],
        "notices by kind": [
            ("blanket_started", fleet.customers_in_scope),
            ("reverted", fleet.customers_in_scope),
        ],
        # The revert's, not sent here (and the declaration's, without the notices phase).
        "e-mails queued": [(fleet.customers_in_scope * (1 if sent else 2),)],
        "blanket events by kind": [("declared", 1), ("granted", 1), ("reverted", 1)],
    }
    if phase == "revert":
        return reverted
    return reverted | {
        "lines out of sync": [(0,)],
        "applied changes by speed": [(False, n), (True, n)],
    }


def minimal_snapshot() -> dict[str, list[tuple]]:
    from django.db import connection

    queries = {
        "grants by state": "SELECT state, count(*) FROM min_grant GROUP BY 1",
        "lines by (upgraded, version, applied)": (
            "SELECT upgraded, version, applied, count(*) FROM min_line GROUP BY 1, 2, 3"
        ),
        "applied changes by speed": "SELECT upgraded, count(*) FROM min_change GROUP BY 1",
    }
    with connection.cursor() as cursor:
        state = {}
        for name, query in queries.items():
            cursor.execute(query)
            state[name] = sorted(cursor.fetchall())
    return state


def minimal_expected_after(phase: str, fleet: "Fleet") -> dict[str, list[tuple]]:
    n, untouched = fleet.in_scope, fleet.total - fleet.in_scope
    normal = (False, 0, False, untouched)
    granted, reverted = [("pending", n)], [("reverted", n)]
    grants, lines, changes = {
        "declare": (granted, [normal, (True, 1, False, n)], []),
        "notices": (granted, [normal, (True, 1, False, n)], []),
        "reconcile": (granted, [normal, (True, 1, True, n)], [(True, n)]),
        "reconcile http": (granted, [normal, (True, 1, True, n)], [(True, n)]),
        "revert": (reverted, [normal, (False, 2, True, n)], [(True, n)]),
        "reconcile after revert": (
            reverted,
            [normal, (False, 2, False, n)],
            [(False, n), (True, n)],
        ),
    }[phase]
    return {
        "grants by state": grants,
        "lines by (upgraded, version, applied)": lines,
        "applied changes by speed": changes,
    }


def check(phase: str, path: str, fleet: "Fleet", today: date, seen: dict) -> None:
    """The phase left exactly the expected rows (and the same as the other path)."""
    if path == "minimal":
        state, expected = minimal_snapshot(), minimal_expected_after(phase, fleet)
    else:
        state, expected = snapshot(today), expected_after(phase, fleet)
    for name, rows in expected.items():
        assert state[name] == rows, f"{phase} / {path}: {name} is {state[name]}, not {rows}"
    if path != "minimal":
        other = seen.setdefault(phase, state)
        assert other == state, f"{phase}: {path} differs from the other path: {state} / {other}"
    if path == "service":
        from subscriptions.models import OutOfSyncTally

        (out_of_sync,) = state["lines out of sync"][0]
        tallied = OutOfSyncTally.objects.total()
        assert tallied == out_of_sync, (
            f"{phase}: the tally says {tallied} lines wait, not {out_of_sync}"
        )


def check_notices(path: str, fleet: "Fleet", smtp) -> None:
    """Every customer with a line in scope told once: as many messages as customers, no
    Message-ID nor set of recipients twice; for the outbox, every row sent."""
    from django.db import connection

    customers = fleet.customers_in_scope
    told, repeats, again = smtp.count.value, smtp.repeats.value, smtp.told_again.value
    assert (told, repeats, again) == (customers, 0, 0), (
        f"notices / {path}: {told} e-mails for {customers} customers,"
        f" {repeats} Message-IDs and {again} customers twice"
    )
    if path != "minimal":
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, count(*) FROM support_outboundemail GROUP BY 1")
            outbox = sorted(cursor.fetchall())
        assert outbox == [("sent", customers)], f"notices / {path}: the outbox holds {outbox}"
    notices_checked.add(path)


# --- Report -----------------------------------------------------------------------------


def report(results: dict[tuple[str, str], list[Measurement]], n: int, profile: bool) -> None:
    best = {key: min(runs, key=lambda m: m.seconds) for key, runs in results.items()}
    print()
    print(
        f"{'phase':<23} {'path':<8} {'rows':>9} {'seconds':>8} {'stmts':>6} {'chunks':>6}"
        f" {'longest':>8} {'stmts/chunk':>11} {'peak MB':>8} {'/minimal':>8} {'/raw':>5}"
    )
    for phase in PHASES:
        for path in PATHS:
            m = best[(phase, path)]
            print(
                f"{phase:<23} {path:<8} {m.rows:>9,} {m.seconds:>8.3f} {m.statements:>6,}"
                f" {m.chunks:>6,} {m.longest_chunk:>8.3f} {m.max_statements_per_chunk:>11,}"
                f" {m.peak_rss_mb:>8.0f}"
                f" {m.seconds / best[(phase, 'minimal')].seconds:>8.2f}"
                f" {m.seconds / best[(phase, 'raw SQL')].seconds:>5.2f}"
            )
    print(
        "(stmts/chunk: the most statements between two commits; longest: seconds;"
        " notices: rows are e-mails, one per customer, and its chunks run in autocommit)"
    )
    print()
    warnings = []
    for name, first, then in (
        ("declare + reconcile", "declare", "reconcile"),
        ("revert + reconcile", "revert", "reconcile after revert"),
    ):
        total = {path: best[(first, path)].seconds + best[(then, path)].seconds for path in PATHS}
        alone = best[(first, "minimal")].seconds
        print(
            f"{name:<20} service {total['service']:8.3f} s, raw SQL {total['raw SQL']:8.3f} s,"
            f" minimal {total['minimal']:8.3f} s:"
            f" service / minimal {total['service'] / total['minimal']:.2f},"
            f" service / minimal {first} alone {total['service'] / alone:.2f}"
        )
        if total["service"] / alone > TARGET_RATIO:
            warnings.append(
                f"WARNING: {name} through the services took {total['service'] / alone:.2f}"
                f" times the minimal design's {first} (target: within {TARGET_RATIO:.0f})."
            )
    # The notices phase holds no transaction while it talks to the SMTP server (each
    # e-mail is recorded sent in autocommit), so its "longest" is no lock held.
    longest = max(best[(phase, "service")].longest_chunk for phase in PHASES if phase != "notices")
    print(f"longest chunk of the service path: {longest:.3f} s (target: none over 5 s)")
    per_thousand = ", ".join(
        f"{phase} {best[(phase, 'service')].statements * 1000 / n:.2f}" for phase in PHASES
    )
    print(f"statements per 1,000 lines (service path): {per_thousand}")
    for line in warnings:
        print(line)
    if profile:
        for (phase, path), m in sorted(best.items()):
            print(f"\n{phase}, {path}: slowest statements (count, seconds, SQL)")
            top = sorted(m.by_statement.items(), key=lambda item: -item[1][1])[:6]
            for shape, (count, seconds) in top:
                print(f"  {int(count):>4} {seconds:>7.3f}  {shape}")
            # Commits are not statements: Django's deferred foreign-key checks run there.
            in_statements = sum(seconds for _, seconds in m.by_statement.values())
            print(f"       {m.seconds - in_statements:>7.3f}  (commits and Python)")


# --- Main -------------------------------------------------------------------------------


# The operator's disaster page and progress.json, read after the service's phases.
progress_reads: dict[str, tuple[float, float, float]] = {}
# The paths whose notices passed check_notices.
notices_checked: set[str] = set()


def time_progress_reads() -> tuple[float, float, float]:
    """Milliseconds (best of 5) of the page's counts as read today (the blanket's tally
    rows, and the lines still waiting for the network), of the tally rows alone, and as
    they were read before the tallies (one COUNT … FILTER over every grant of the
    blanket, joined to its lines). Read with the statistics the phase left, as a page
    would be between two autovacuum runs."""
    from django.db.models import Count, F, Q, Sum

    from upgrades.models import BlanketUpgrade, BlanketUpgradeTally, SpeedGrant
    from upgrades.selectors import blanket_progress

    blanket = BlanketUpgrade.objects.get()
    boosting = Q(state__in=SpeedGrant.BOOSTING)

    def counted_from_the_grants():
        SpeedGrant.objects.filter(blanket_upgrade=blanket).aggregate(
            total=Count("pk"),
            **{
                state: Count("pk", filter=Q(state=state))
                for state in ("pending", "active", "declined", "reverted", "ended")
            },
            caught_up=Count(
                "pk",
                filter=(boosting & Q(subscription__speed__applied_upgraded=True))
                | (
                    ~boosting
                    & Q(
                        subscription__speed__applied_upgraded=F(
                            "subscription__speed__desired_upgraded"
                        )
                    )
                ),
            ),
        )

    def best(read) -> float:
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            read()
            timings.append((time.perf_counter() - started) * 1000)
        return min(timings)

    def tallies_alone():
        BlanketUpgradeTally.objects.filter(blanket_upgrade=blanket).aggregate(
            **{state: Sum(state) for state in BlanketUpgradeTally.STATES}
        )

    return (
        best(lambda: blanket_progress(blanket=blanket)),
        best(tallies_alone),
        best(counted_from_the_grants),
    )


def run_path(path: str, fleet: "Fleet", network: Network, now, deadline, today, seen) -> dict:
    """One path's six phases from a fresh reset; returns its measurements."""
    declare, reconcile, revert = {
        "service": (service_declare, service_reconcile, service_revert),
        "raw SQL": (raw_declare, raw_reconcile, raw_revert),
        "minimal": (minimal_declare, minimal_reconcile, minimal_revert),
    }[path]
    recording = recording_backend()
    measured = {}
    reset_state()
    measured["declare"] = measure(lambda: declare(fleet, now))
    check("declare", path, fleet, today, seen)
    settle()
    if path == "service":
        progress_reads["after declare"] = time_progress_reads()
    if "notices" in PHASES:
        measured["notices"] = measure_notices(path, fleet, now)
        check("notices", path, fleet, today, seen)
    measured["reconcile"] = measure(lambda: reconcile(recording, now))
    check("reconcile", path, fleet, today, seen)
    if path == "service":
        progress_reads["after reconcile"] = time_progress_reads()
    unapply_speeds()
    network.changes.value = 0
    measured["reconcile http"] = measure(lambda: reconcile(http_backend(network), now))
    check("reconcile http", path, fleet, today, seen)
    assert network.changes.value == fleet.in_scope, (path, network.changes.value)
    settle()
    measured["revert"] = measure(lambda: revert(fleet, deadline))
    check("revert", path, fleet, today, seen)
    settle()
    measured["reconcile after revert"] = measure(lambda: reconcile(recording, deadline))
    check("reconcile after revert", path, fleet, today, seen)
    return measured


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    # Imported by the services on first use; loaded here so no timing pays for it.
    from upgrades import tasks

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter()
    now = timezone.now()
    today = timezone.localdate(now)
    deadline = now + timedelta(days=WINDOW_DAYS)
    fleet = load_lines(args.lines, today)
    give_customers_an_address()
    loaded = time.perf_counter()
    # The first publish opens the in-memory broker; the timings should not pay for it.
    tasks.reconcile_speeds.delay()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()

    print(f"BCP Portal disaster bench, {today.isoformat()}")
    print(
        f"PostgreSQL {version.split()[0]}, {os.cpu_count()} CPUs, load average"
        f" {os.getloadavg()[0]:.1f}; {fleet.in_scope:,} lines in scope"
        f" (+{fleet.total - fleet.in_scope:,} cancelled or expired), chunk size {CHUNK_SIZE:,}"
    )
    print(f"migrate {migrated - started:.1f} s, load {loaded - migrated:.1f} s")
    print(
        "Celery enqueues go to an in-memory broker; reconcile and the outbox's sender are"
        " called by the bench, the notices sent to a local SMTP server (aiosmtpd)."
    )

    network = Network()
    results: dict[tuple[str, str], list[Measurement]] = defaultdict(list)
    seen: dict = {}
    try:
        for repeat in range(args.repeat):
            round_started = time.perf_counter()
            # Rotate which path goes first, so none always meets a warmer cache.
            for path in PATHS[repeat % 3 :] + PATHS[: repeat % 3]:
                measured = run_path(path, fleet, network, now, deadline, today, seen)
                for phase, m in measured.items():
                    results[(phase, path)].append(m)
                print(
                    f"  round {repeat + 1}, {path:<7}: "
                    + ", ".join(f"{phase} {m.seconds:.2f} s" for phase, m in measured.items())
                )
            # Another round only if it would still end within the budget: a busy machine
            # gets fewer rounds rather than a bench that runs for ever.
            now_at = time.perf_counter()
            if now_at - started + (now_at - round_started) > args.budget:
                break
    finally:
        network.close()
    rounds = len(results[("declare", "service")])
    print(f"\nBest of {rounds} round(s) per phase; every path starts from the same reset.")
    report(results, fleet.in_scope, args.profile)
    print()
    for moment, (page, tallies, counted) in progress_reads.items():
        print(
            f"disaster page counts {moment}: {page:6.1f} ms (grants' tally rows {tallies:4.1f} ms,"
            f" the rest: the lines waiting for the network, from their tally or counted);"
            f" counted from the grants as before: {counted:6.1f} ms"
        )
    print("\nThe service and raw-SQL paths left the same rows after each phase (counts checked).")
    if "notices" in PHASES:
        print(
            f"Notices: each of the {fleet.customers_in_scope} customers with lines in scope"
            " told exactly once over SMTP, by "
            + ", ".join(path for path in PATHS if path in notices_checked)
            + "; no Message-ID twice, nothing left queued (raw SQL sends with the service's"
            " sender)."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="in-scope subscriptions")
    parser.add_argument("--repeat", type=int, default=3, help="rounds at most; best is shown")
    parser.add_argument(
        "--budget",
        type=float,
        default=1200.0,
        help="seconds: no new round once another would end past this (default 1200)",
    )
    parser.add_argument("--profile", action="store_true", help="show the slowest statements")
    parser.add_argument(
        "--no-notices",
        action="store_true",
        help="skip the notices phase (at 1,000,000 lines each of the 50 e-mails lists 20,000"
        " lines; bench/notifications.py sends a realistic fleet's)",
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the database for EXPLAIN")
    args = parser.parse_args()
    if args.lines < 1 or args.repeat < 1:
        parser.error("--lines and --repeat must be at least 1")

    config = bench_database(os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL))
    recreate_database(config)
    try:
        setup_django()
        if args.no_notices:
            PHASES.remove("notices")
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_db:
            print(f"Database {config['NAME']!r} kept (--keep-db).")
        else:
            drop_database(config)


if __name__ == "__main__":
    main()
