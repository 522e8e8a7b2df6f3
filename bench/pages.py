"""Benchmark: the pages staff and customers use, at 1,000,000 lines.

Builds a database of N lines once (100,000 customers of ten lines at the default
1,000,000, a declared nationwide disaster with its grants, the speeds applied and audited,
one notice and e-mail per customer, the support contacts of a disaster morning, and one
customer with 2,000 lines), keeps it, and then prints for every page the number of
queries and its time (best of several) through Django's test client, with DEBUG off:
the operator's disaster page and its progress.json, every admin changelist the desk uses
(plain, filtered, searched), and the big customer's home.

    .venv/bin/python bench/pages.py                    # 1,000,000 lines: built once (minutes)
    .venv/bin/python bench/pages.py --lines 100000     # a quick run, its own database

The database is named after the size (``bcp_bench_pages`` at 1,000,000 lines,
``bcp_bench_pages_<N>`` otherwise; ``--database-url`` to choose) and kept: a marker
table says it was built completely for N lines, so the next run only migrates (new
indexes) and measures. ``--rebuild`` builds it again. bench/README.md says more.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from bench.disaster import (  # noqa: E402
    Fleet,
    bench_database,
    raw_declare,
    recreate_database,
    setup_django,
)

DEFAULT_LINES = 1_000_000
LINES_PER_CUSTOMER = 10
# The customer whose home is measured: a local government with many sites.
BIG_CUSTOMER_SITES = 200
BIG_CUSTOMER_LINES_PER_SITE = 10
MARKER_TABLE = "bench_pages_built"
TARGET_ADMIN_MS = 200
TARGET_DISASTER_MS = 50
TITLE = "Bench: nationwide earthquake"


def database_url(lines: int) -> str:
    name = "bcp_bench_pages" if lines == DEFAULT_LINES else f"bcp_bench_pages_{lines}"
    return f"postgres://postgres@127.0.0.1:5432/{name}"


# --- Database ---------------------------------------------------------------------------


def built_for(config: dict) -> int | None:
    """The number of lines the database was completely built for, or None."""
    try:
        conn = psycopg2.connect(
            dbname=config["NAME"],
            user=config["USER"] or None,
            password=config["PASSWORD"] or None,
            host=config["HOST"] or None,
            port=config["PORT"] or None,
        )
    except psycopg2.OperationalError:  # no such database
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [MARKER_TABLE])
            if cursor.fetchone()[0] is None:
                return None
            cursor.execute(sql.SQL("SELECT lines FROM {}").format(sql.Identifier(MARKER_TABLE)))
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


@dataclass
class People:
    operator_id: int
    staff_id: int
    big_customer_user_id: int
    blanket_id: int


def build(lines: int) -> None:
    """Every row by INSERT … SELECT generate_series (or one UPDATE): nothing row by row
    through Python. The disaster is declared by bench/disaster.py's raw SQL path, which
    writes what the services write (grants, wanted speeds, notices, e-mails, events)."""
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from portal.accounts.models import Role, User
    from subscriptions.models import Plan

    now = timezone.now()
    today = timezone.localdate(now)
    customers = lines // LINES_PER_CUSTOMER
    steps: list[tuple[str, Callable[[], None]]] = []
    plan = Plan.objects.create(name="Bench BCP", normal_kbps=128, upgraded_kbps=2048)
    operator = User.objects.create_user("operator@bench.example", is_staff=True)
    operator.groups.add(Group.objects.get(name=Role.OPERATOR))
    staff = User.objects.create_user("support@bench.example", is_staff=True)
    staff.groups.add(Group.objects.get(name=Role.SUPPORT))
    customer_group = Group.objects.get(name=Role.CUSTOMER)

    def run(statement: str, params: dict | None = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement, params or {})

    def customers_and_users():
        # Customer i (1..customers) and the big one (customers + 1), one user each.
        run(
            """
            INSERT INTO subscriptions_customer (code, name, kind, email, phone, phone_e164,
                                                created_at)
            SELECT 'C' || lpad(i::text, 7, '0'),
                   CASE WHEN i > %(n)s THEN 'Bench city office'
                        ELSE 'Bench customer ' || lpad(i::text, 7, '0') END,
                   CASE WHEN mod(i, 5) = 0 OR i > %(n)s THEN 'local_government'
                        ELSE 'business' END,
                   'info' || i || '@customer.example',
                   '03-' || lpad(mod(i, 10000)::text, 4, '0') || '-'
                        || lpad((i / 10000)::text, 4, '0'),
                   '+813' || lpad(mod(i, 10000)::text, 4, '0') || lpad((i / 10000)::text, 4, '0'),
                   now()
            FROM generate_series(1, %(n)s + 1) AS i
            """,
            {"n": customers},
        )
        run(
            """
            INSERT INTO accounts_user (password, is_superuser, email, full_name, is_staff,
                                       is_active, date_joined, customer_id)
            SELECT '!', false, 'user' || c.code || '@customer.example', 'Bench user ' || c.code,
                   false, true, now(), c.id
            FROM subscriptions_customer c
            """
        )
        run(
            "INSERT INTO accounts_user_groups (user_id, group_id)"
            " SELECT id, %(group)s FROM accounts_user WHERE customer_id IS NOT NULL",
            {"group": customer_group.pk},
        )

    def sites_and_lines():
        # One line per site for everyone but the big customer (ten per site). Starts are
        # spread over five years, every 50th line's term has ended, every 97th is
        # cancelled: the subscriptions list is ordered by term end.
        run(
            """
            INSERT INTO subscriptions_site
                (customer_id, name, postal_code, prefecture, address, contact_phone,
                 contact_phone_e164, created_at, antenna_serial, modem_serial)
            SELECT c.id, 'site ' || lpad(i::text, 7, '0'), '',
                   lpad((1 + mod(i, 47))::text, 2, '0'), 'bench address ' || i,
                   '0494-' || lpad(mod(i, 100)::text, 2, '0') || '-'
                        || lpad((i / 100)::text, 5, '0'),
                   '+81494' || lpad(mod(i, 100)::text, 2, '0') || lpad((i / 100)::text, 5, '0'),
                   now(), 'ANT' || lpad(i::text, 8, '0'), 'MDM' || lpad(i::text, 8, '0')
            FROM generate_series(1, %(n)s + %(big_sites)s) AS i
            JOIN subscriptions_customer c ON c.code = 'C' || lpad(
                (CASE WHEN i > %(n)s THEN %(customers)s + 1 ELSE (i - 1) / %(per)s + 1 END)::text,
                7, '0')
            """,
            {
                "n": customers * LINES_PER_CUSTOMER,
                "big_sites": BIG_CUSTOMER_SITES,
                "customers": customers,
                "per": LINES_PER_CUSTOMER,
            },
        )
        run(
            """
            INSERT INTO subscriptions_subscription
                (contract_number, site_id, plan_id, service_start, term_end, status,
                 static_ip, created_at)
            SELECT 'BCP-' || lpad(i::text, 8, '0'), site_id, %(plan)s, start,
                   (start + interval '5 years')::date,
                   CASE WHEN mod(i, 97) = 0 THEN 'cancelled' ELSE 'active' END,
                   mod(i, 10) = 0, now()
            FROM (
                SELECT s.id AS site_id, row_number() OVER (ORDER BY s.id, k) AS i,
                       CASE WHEN mod(s.id, 50) = 0
                            THEN %(today)s::date - 1900 - mod(s.id, 300)::int
                            ELSE %(today)s::date - mod(s.id * 7 + k, 1800)::int END AS start
                FROM subscriptions_site s
                JOIN subscriptions_customer c ON c.id = s.customer_id
                CROSS JOIN LATERAL generate_series(
                    1, CASE WHEN c.name = 'Bench city office' THEN %(big)s ELSE 1 END) AS k
            ) AS numbered
            """,
            {"plan": plan.pk, "today": today, "big": BIG_CUSTOMER_LINES_PER_SITE},
        )
        # Each line's speed row, at normal speed (the table's defaults).
        run(
            "INSERT INTO subscriptions_linespeed (subscription_id)"
            " SELECT id FROM subscriptions_subscription"
        )

    def disaster():
        # Scope: every line in service; one notice and one e-mail per customer.
        fleet = Fleet(
            operator=operator, in_scope=0, total=0, last_in_scope_id=0, customers_in_scope=0
        )
        raw_declare(fleet, now)

    def answers_and_speeds():
        # A morning later: 10 % of the lines confirmed (portal or phone), 2 % declined
        # (back to normal), every speed applied by the network and audited.
        answered = now + timedelta(hours=3)
        with transaction.atomic():
            run(
                """
                UPDATE upgrades_speedgrant SET state = 'active', responded_at = %(at)s,
                    response_channel = CASE WHEN mod(subscription_id, 3) = 0 THEN 'phone'
                                            ELSE 'portal' END,
                    response_after_hours = false
                WHERE mod(subscription_id, 10) = 0
                """,
                {"at": answered},
            )
            run(
                """
                UPDATE upgrades_speedgrant SET state = 'declined', responded_at = %(at)s,
                    ended_at = %(at)s, response_channel = 'portal', response_after_hours = false
                WHERE mod(subscription_id, 50) = 7
                """,
                {"at": answered},
            )
            run(
                """
                UPDATE subscriptions_linespeed SET desired_upgraded = false,
                    desired_version = 2, desired_cause = 'declined'
                WHERE mod(subscription_id, 50) = 7 AND desired_upgraded
                """
            )
        run(
            """
            INSERT INTO upgrades_provisioningchange
                (subscription_id, version, upgraded, from_kbps, to_kbps, cause, batch,
                 applied_at)
            SELECT s.subscription_id, v, v = 1, CASE WHEN v = 1 THEN 128 ELSE 2048 END,
                   CASE WHEN v = 1 THEN 2048 ELSE 128 END,
                   CASE WHEN v = 1 THEN s.desired_cause ELSE 'declined' END,
                   md5((s.subscription_id / 500)::text || '-' || v)::uuid,
                   %(now)s
                   + make_interval(secs => mod(s.subscription_id, 3600) + 7200 * (v - 1))
            FROM subscriptions_linespeed s
            CROSS JOIN generate_series(1, s.desired_version) AS v
            """,
            {"now": now},
        )
        run(
            "UPDATE subscriptions_linespeed SET applied_upgraded = desired_upgraded"
            " WHERE applied_upgraded <> desired_upgraded"
        )

    def emails_sent():
        run(
            """
            UPDATE support_outboundemail e SET status = 'sent', sent_at = e.created_at
                    + interval '5 minutes',
                "to" = jsonb_build_array(c.email, 'user' || c.code || '@customer.example'),
                subject = '[BCP] Your lines were upgraded: ' || c.name, body = '',
                attempts = 1, last_error = '', headers = '{}'::jsonb
            FROM upgrades_customernotice n JOIN subscriptions_customer c ON c.id = n.customer_id
            WHERE e.composer = 'upgrades.notice' AND e.composer_ref = n.id
            """
        )

    def contacts():
        # A disaster morning's desk: an inquiry from one customer in 4, an upgrade request
        # from one in 20 (one site each), a damage report from one in 20.
        params = {"customers": customers, "now": now}
        # Each contact names its customer's first site: looked up in a table of them (a
        # correlated min() per customer would walk the sites' primary key instead).
        run(
            "CREATE TEMPORARY TABLE bench_first_site AS SELECT customer_id, min(id) AS site_id"
            " FROM subscriptions_site GROUP BY customer_id"
        )
        run("CREATE UNIQUE INDEX ON bench_first_site (customer_id)")
        run(
            """
            INSERT INTO desk_inquiry (subject, channel, received_at, after_hours, status,
                priority, contact_phone, customer_id, site_id, sender_email, respond_by,
                closed_at)
            SELECT 'Line down after the earthquake? ' || c.code,
                   (ARRAY['portal', 'phone', 'email'])[1 + mod(c.id, 3)],
                   %(now)s - make_interval(secs => mod(c.id * 37, 86400)), mod(c.id, 7) = 0,
                   (ARRAY['new', 'answered', 'closed'])[1 + mod(c.id, 3)],
                   CASE WHEN mod(c.id, 7) = 0 THEN 'high' ELSE 'normal' END, c.phone, c.id,
                   (SELECT site_id FROM bench_first_site f WHERE f.customer_id = c.id), '',
                   %(now)s + interval '4 hours',
                   CASE WHEN mod(c.id, 3) = 2 THEN %(now)s END
            FROM subscriptions_customer c WHERE mod(c.id, 4) = 0
            """,
            params,
        )
        run(
            """
            INSERT INTO upgrades_upgraderequest (reason, note, channel, received_at,
                contact_name, contact_phone, status, decision_note, customer_id, after_hours,
                priority, respond_by)
            SELECT 'disaster', '', (ARRAY['portal', 'phone'])[1 + mod(c.id, 2)],
                   %(now)s - make_interval(secs => mod(c.id * 53, 86400)), 'Bench contact',
                   c.phone, (ARRAY['new', 'approved', 'applied'])[1 + mod(c.id / 20, 3)], '',
                   c.id, false, 'high', %(now)s + interval '2 hours'
            FROM subscriptions_customer c WHERE mod(c.id, 20) = 3
            """,
            params,
        )
        run(
            """
            INSERT INTO upgrades_upgraderequest_sites (upgraderequest_id, site_id)
            SELECT r.id, f.site_id
            FROM upgrades_upgraderequest r JOIN bench_first_site f USING (customer_id)
            """
        )
        run(
            """
            INSERT INTO incidents_damagereport (description, channel, received_at,
                after_hours, site_id, priority, status, respond_by)
            SELECT 'The antenna is tilted after the earthquake.', 'portal',
                   %(now)s - make_interval(secs => mod(c.id * 71, 86400)), false,
                   (SELECT site_id FROM bench_first_site f WHERE f.customer_id = c.id), 'normal',
                   'new', %(now)s + interval '1 day'
            FROM subscriptions_customer c WHERE mod(c.id, 20) = 11
            """,
            params,
        )

        # The desk's answers: a notice per approved request, newer than the disaster's.
        run(
            """
            INSERT INTO upgrades_customernotice (kind, customer_id, upgrade_request_id,
                created_at, queued_at)
            SELECT 'request_approved', customer_id, id, %(now)s + make_interval(secs => id),
                   %(now)s + make_interval(secs => id)
            FROM upgrades_upgraderequest WHERE status IN ('approved', 'applied')
            """,
            params,
        )

    steps = [
        ("customers and users", customers_and_users),
        ("sites and lines", sites_and_lines),
        ("declare (bench/disaster.py raw SQL)", disaster),
        ("answers, applied speeds, audit", answers_and_speeds),
        ("e-mails sent", emails_sent),
        ("desk contacts", contacts),
    ]
    for name, step in steps:
        started = time.perf_counter()
        step()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the next step's plans see the rows just written
        print(f"  built {name} in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute(
            f"CREATE TABLE {MARKER_TABLE} (lines integer NOT NULL, built_at timestamptz)"
        )
        cursor.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s, now())", [lines])
    print(f"  vacuumed and analyzed in {time.perf_counter() - started:.1f} s", flush=True)


def people() -> People:
    from portal.accounts.models import User
    from upgrades.models import BlanketUpgrade

    return People(
        operator_id=User.objects.get(email="operator@bench.example").pk,
        staff_id=User.objects.get(email="support@bench.example").pk,
        big_customer_user_id=User.objects.get(customer__name="Bench city office").pk,
        blanket_id=BlanketUpgrade.objects.get(disaster__title=TITLE).pk,
    )


# --- Pages ------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    url: str
    who: str  # "operator", "staff" or "customer"
    # Lines of the disaster made to wait for the network while the page is measured
    # (the data has every speed applied): -1 for all of them.
    waiting: int = 0


def pages(lines: int, blanket_id: int) -> list[Page]:
    """What is measured. Search terms are what staff type: a contract number, a customer
    code, the start of a name; filters are each list's usual one."""
    customers = lines // LINES_PER_CUSTOMER
    # A customer and a line from the middle of the table.
    # Customer i has an inquiry when i % 4 == 0, a request when i % 20 == 3 and a damage
    # report when i % 20 == 11 (contacts() in build()).
    middle = customers // 2 - (customers // 2) % 20
    code, requester, reporter = (f"C{i:07}" for i in (middle, middle + 3, middle + 11))
    # A line in the disaster's scope: not one whose term ended (every 50th site) nor a
    # cancelled one (every 97th line).
    line = lines // 2 + 1
    while line % 50 == 0 or line % 97 == 0:
        line += 1
    contract = f"BCP-{line:08}"
    admin_lists = [
        # (changelist, a typical filter, a typical search)
        ("subscriptions/subscription", "site__prefecture__exact=13", contract),
        ("upgrades/speedgrant", "state__exact=pending", contract),
        ("upgrades/provisioningchange", "upgraded__exact=1", contract),
        ("upgrades/customernotice", "kind__exact=blanket_started", code),
        ("support/outboundemail", "status__exact=sent", f"upgrades.notice:{middle}"),
        ("subscriptions/customer", "kind__exact=local_government", code),
        ("subscriptions/site", "prefecture__exact=13", f"site {lines // 2:07}"),
        ("accounts/user", "is_staff__exact=0", f"user{code}@customer.example"),
        ("upgrades/upgraderequest", "status__exact=new", requester),
        ("desk/inquiry", "status__exact=new", code),
        ("incidents/damagereport", "status__exact=new", reporter),
    ]
    disaster = f"/operator/disasters/{blanket_id}/"
    progress = f"{disaster}progress.json"
    result = [
        Page("disaster page", disaster, "operator"),
        Page("disaster progress.json", progress, "operator"),
        # The count of a disaster's lines waiting for the network, at its largest exact
        # case (PROGRESS_EXACT_UP_TO), and with every line waiting (an estimate).
        Page("disaster page, 5,000 lines waiting", disaster, "operator", waiting=5000),
        Page("disaster progress.json, 5,000 lines waiting", progress, "operator", waiting=5000),
        Page("disaster page, every line waiting", disaster, "operator", waiting=-1),
        Page("disaster progress.json, every line waiting", progress, "operator", waiting=-1),
    ]
    for path, filtered, searched in admin_lists:
        url = f"/admin/{path}/"
        result += [
            Page(f"admin {path}", url, "staff"),
            Page(f"admin {path} filtered", f"{url}?{filtered}", "staff"),
            Page(f"admin {path} searched", f"{url}?q={searched.replace(' ', '+')}", "staff"),
        ]
    result.append(Page("customer home (2,000 lines)", "/", "customer"))
    return result


def logged_in_client(user):
    """A test client logged in as ``user``, its second factor verified for staff (as
    after the verify page: staff pages need one)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.accounts import mfa

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    if mfa.must_enrol(user):
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="bench", defaults={"confirmed": True}
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session[mfa.SESSION_REQUIRED_KEY] = True
        session.save()
    return client


@dataclass
class Measured:
    queries: int
    ms: float
    status: int
    found: int | None  # rows on an admin changelist page


def measure(client, url: str, repeat: int) -> Measured:
    from django.db import connection

    count = 0

    def counting(execute, statement, params, many, context):
        nonlocal count
        count += 1
        return execute(statement, params, many, context)

    client.get(url)  # warm: templates, the first plan, the buffers
    best = float("inf")
    for _ in range(repeat):
        count = 0
        with connection.execute_wrapper(counting):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        best = min(best, elapsed)
    found = None
    html = response.content.decode()
    if 'id="result_list"' in html:  # an admin changelist: its rows, less the header's
        table = html.split('id="result_list"', 1)[1].split("</table>", 1)[0]
        found = table.count("<tr") - 1
    return Measured(count, best * 1000, response.status_code, found)


@contextmanager
def lines_waiting(lines: int, *, blanket_id: int):
    """The first ``lines`` lines of the disaster (-1: all) out of sync, as between a
    declaration and the network's answers, and counted as the services count them; in
    a transaction the page's requests share (the test client runs in this thread), rolled
    back after."""
    from django.db import connection, transaction

    from subscriptions.models import OutOfSyncTally

    if not lines:
        yield
        return
    limit = "" if lines < 0 else f"ORDER BY subscription_id LIMIT {int(lines)}"
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE subscriptions_linespeed SET applied_upgraded = NOT desired_upgraded"
                " WHERE subscription_id IN (SELECT subscription_id FROM upgrades_speedgrant"
                f"  WHERE blanket_upgrade_id = %s {limit})",
                [blanket_id],
            )
            OutOfSyncTally.objects.add(cursor.rowcount)
            cursor.execute("ANALYZE subscriptions_linespeed")
        yield
        transaction.set_rollback(True)


def measure_all(args, lines: int) -> dict[str, Measured]:
    import logging

    from portal.accounts.models import User

    logging.getLogger("axes").setLevel(logging.WARNING)  # a line per force_login

    who = people()
    clients = {
        "operator": logged_in_client(User.objects.get(pk=who.operator_id)),
        "staff": logged_in_client(User.objects.get(pk=who.staff_id)),
        "customer": logged_in_client(User.objects.get(pk=who.big_customer_user_id)),
    }
    results = {}
    for page in pages(lines, who.blanket_id):
        if args.only and args.only not in page.name:
            continue
        with lines_waiting(page.waiting, blanket_id=who.blanket_id):
            results[page.name] = measure(clients[page.who], page.url, args.repeat)
        if not args.json:
            print(f"  {page.name}: {results[page.name].ms:.0f} ms", flush=True)
    return results


def report(results: dict[str, Measured], small: dict[str, dict] | None, lines: int, small_n):
    print()
    head = f"{'page':<48} {'status':>6} {'rows':>5} {'queries':>8} {'ms':>8} {'target':>7}"
    if small is not None:
        head += f" {f'queries @{small_n:,}':>16}"
    print(head)
    problems = []
    for name, m in results.items():
        target = TARGET_DISASTER_MS if name.startswith("disaster") else None
        if name.startswith("admin"):
            target = TARGET_ADMIN_MS
        line = (
            f"{name:<48} {m.status:>6} {'' if m.found is None else m.found:>5} {m.queries:>8}"
            f" {m.ms:>8.1f} {target or '-':>7}"
        )
        if small is not None and name in small:
            line += f" {small[name]['queries']:>16}"
            if m.queries > small[name]["queries"]:
                problems.append(f"QUERIES GROW: {name}: {small[name]['queries']} → {m.queries}")
        print(line)
        if m.status != 200:
            problems.append(f"ERROR: {name} answered {m.status}")
        if target and m.ms > target:
            problems.append(f"SLOW: {name} {m.ms:.0f} ms (target {target} ms)")
    print(f"\n{lines:,} lines; best of the runs, after one warm-up request each.")
    for problem in problems:
        print(problem)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help="default 1,000,000")
    parser.add_argument("--database-url", help="default: bcp_bench_pages[_<lines>]")
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    parser.add_argument("--repeat", type=int, default=5, help="runs per page; best is shown")
    parser.add_argument(
        "--compare-lines",
        type=int,
        default=2000,
        help="also count each page's queries on a database of this many lines (0: no)",
    )
    parser.add_argument("--only", help="measure only the pages whose name contains this")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # the small run's answer
    args = parser.parse_args()
    if args.lines < 100:
        parser.error("--lines must be at least 100")

    url = args.database_url or database_url(args.lines)
    config = bench_database(url)
    os.environ["DATABASE_URL"] = url
    # A Redis cache as in production (the embedded default is a database table, whose
    # queries no production page pays); database 7 is this bench's.
    os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/7")

    small = None
    if args.compare_lines and not args.json:
        # The same pages on a small database, in a process of its own: only the queries.
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as file:
            out = Path(file.name)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--lines",
                str(args.compare_lines),
                "--repeat",
                "1",
                "--compare-lines",
                "0",
                "--json",
                str(out),
                *(["--only", args.only] if args.only else []),
            ],
            check=True,
            env={**os.environ, "DATABASE_URL": database_url(args.compare_lines)},
        )
        small = json.loads(out.read_text())
        out.unlink()

    lines = built_for(config)
    if args.rebuild or lines != args.lines:
        print(f"Building {config['NAME']} for {args.lines:,} lines…", flush=True)
        recreate_database(config)
        setup_django()
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"  migrated in {time.perf_counter() - started:.1f} s", flush=True)
        build(args.lines)
    else:
        setup_django()
        from django.core.management import call_command

        started = time.perf_counter()
        # A kept database gets the migrations added since (the indexes this bench checks).
        call_command("migrate", verbosity=0)
        print(
            f"Reusing {config['NAME']} ({args.lines:,} lines); migrate"
            f" {time.perf_counter() - started:.1f} s",
            flush=True,
        )

    results = measure_all(args, args.lines)
    if args.json:
        Path(args.json).write_text(
            json.dumps({name: {"queries": m.queries} for name, m in results.items()})
        )
        return
    report(results, small, args.lines, args.compare_lines)


if __name__ == "__main__":
    main()
