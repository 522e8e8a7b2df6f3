"""Benchmark: customers logging in on a disaster morning, against gunicorn on PostgreSQL.

After a nationwide declaration every customer logs in to keep their upgrade. This script
plays that morning against the portal as it runs in production: gunicorn with
deploy/gunicorn.conf.py (sync workers), ``PORTAL_ENV=production``, PostgreSQL, Redis as
broker and cache. Each simulated customer does what a person at a browser does:

1. GET the login page, 2. POST the login form with its CSRF token, 3. GET the home page
they are sent to, 4. POST the "keep all" form of the banner that asks for their answer,
5. GET the page it sends them back to (which must no longer ask).

Customers arrive evenly over a ramp (60 s, then 10 s: a calm start and a rush), each in a
thread of its own; a separate thread polls ``/healthz`` throughout, so every endpoint's
latency is also shown as a ratio to the health check's under the same load. Each hasher
(``--hasher``) gets its own gunicorn and its own customers, so the logins a second with
Django's default argon2 parameters can be compared with the portal's (OWASP's).

Run from the repository root (the database is dropped and created afresh, and dropped
again at the end unless ``--keep-db``; the broker's and cache's Redis databases are
emptied):

    .venv/bin/python bench/load.py                        # 200 customers, ramps 60 s and 10 s
    .venv/bin/python bench/load.py --ramp 10 --customers 50   # a quick look
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.disaster import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    Fleet,
    bench_database,
    drop_database,
    recreate_database,
    service_declare,
    setup_django,
)
from bench.notifications import LINES_PER_CUSTOMER, load_customers  # noqa: E402
from tests.mailserver import free_port  # noqa: E402

PASSWORD = "bench-disaster-morning"  # noqa: S105 (the simulated customers' password)
# A load balancer's health check, twice a second, each in a thread of its own: it queues
# for a worker like a customer's request, and the checks keep coming while one waits.
HEALTHZ_EVERY = 0.5
# What nginx in front would wait for gunicorn's answer (proxy_read_timeout in
# deploy/nginx/bcp-portal.conf) before answering 504 to the customer.
CLIENT_TIMEOUT = 60

# name -> (settings gunicorn runs with, hasher the stored passwords were made with, label)
HASHERS = {
    "django": (
        "bench.load_settings",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "Django's default argon2 (before)",
    ),
    "owasp": (
        "portal.settings",
        "portal.accounts.hashers.OwaspArgon2PasswordHasher",
        "the portal's argon2id, OWASP (after)",
    ),
    "rehash": (
        "portal.settings",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "the portal's, hashes still Django's (first morning after the change: re-hashed)",
    ),
}

ENDPOINTS = [
    "GET /accounts/login/",
    "POST /accounts/login/",
    "GET /",
    "POST /upgrades/respond/",
    "GET / (answered)",
]
HEALTHZ = "GET /healthz"
ANSWER_FORM = re.compile(r'<form method="post" action="/upgrades/respond/"[^>]*>(.*?)</form>', re.S)
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


# --- The server -------------------------------------------------------------------------


def production_env(*, settings_module: str, port: int, database_url: str, args, tmp: str) -> dict:
    """The variables deploy/env.example sets, for a gunicorn on this machine.

    TLS is left out: nginx ends it in production and tells the portal so with
    X-Forwarded-Proto, which the customers here send themselves (TRUST_X_FORWARDED_PROTO).
    Static files are served from the app folders (STATIC_COLLECTED=false): collecting
    and compressing them takes seconds of CPU and no customer here asks for one.
    """
    kept = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env = kept | {
        "PORTAL_ENV": "production",
        "DJANGO_SETTINGS_MODULE": settings_module,
        "SECRET_KEY": "bench-load-" + os.urandom(16).hex(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORTAL_BASE_URL": f"https://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": args.broker,
        "CACHE_URL": args.cache,
        "INVOICE_ISSUER_NAME": "ベンチ衛星通信株式会社",
        "INVOICE_REGISTRATION_NUMBER": "T1234567890123",
        "STATIC_COLLECTED": "false",
        "MEDIA_ROOT": f"{tmp}/media",
        "PRIVATE_MEDIA_ROOT": f"{tmp}/private",
        "TRUST_X_FORWARDED_PROTO": "true",
        "TRUSTED_PROXY_COUNT": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": f"{tmp}/access.log",
        "PYTHONUNBUFFERED": "1",
    }
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    return env


def start_gunicorn(env: dict, log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_gunicorn(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
        process.wait()


def wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn stopped:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    sys.exit(f"gunicorn did not answer /healthz in 90 s:\n{log_path.read_text()[-3000:]}")


def warm_up(base: str, workers: int) -> None:
    """Every worker imports the portal on its first request: not part of the morning."""
    threads = [
        threading.Thread(
            target=lambda: requests.get(
                f"{base}/accounts/login/",
                headers={"X-Forwarded-Proto": "https"},
                timeout=CLIENT_TIMEOUT,
            )
        )
        for _ in range(workers * 4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- The customers ----------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    started: float
    ended: float
    error: str | None = None
    derived: bool = False  # a check of a page already counted, not a request of its own

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def browser(address: str) -> requests.Session:
    session = requests.Session()
    # nginx ends TLS in production; here the hop is plain HTTP on loopback and the client
    # says "https" as nginx would. Each customer comes from an address of its own (nginx
    # appends it to X-Forwarded-For; the login lockout counts per address and e-mail).
    session.headers.update(
        {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": address,
            "Accept-Language": "ja",
            "User-Agent": "bcp-portal bench/load.py",
        }
    )
    return session


def cookie_header(session: requests.Session) -> dict:
    # The portal's cookies are Secure, and requests keeps them from http:// URLs whatever
    # the session's cookie policy: the browser's Cookie header is written here instead.
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in session.cookies)
    return {"Cookie": cookies} if cookies else {}


def timed(samples, session, endpoint, method, url, expected, **kwargs):
    """One request, recorded; the response when it answered ``expected``, else None."""
    headers = cookie_header(session) | kwargs.pop("headers", {})
    started = time.perf_counter()
    try:
        response = session.request(
            method, url, timeout=CLIENT_TIMEOUT, allow_redirects=False, headers=headers, **kwargs
        )
    except requests.Timeout:
        samples.append(Sample(endpoint, started, time.perf_counter(), "timeout (504)"))
        return None
    except requests.RequestException as error:
        samples.append(Sample(endpoint, started, time.perf_counter(), type(error).__name__))
        return None
    ended = time.perf_counter()
    if response.status_code != expected:
        samples.append(Sample(endpoint, started, ended, f"HTTP {response.status_code}"))
        return None
    samples.append(Sample(endpoint, started, ended))
    return response


def visit(base: str, email: str, address: str, samples: list, visits: list) -> None:
    """One customer: log in, see the home page, keep the upgrade, see the answer."""
    origin = base.replace("http://", "https://")  # what the browser's Referer would say
    arrived = time.perf_counter()
    session = browser(address)
    login_url = f"{base}/accounts/login/"
    page = timed(samples, session, ENDPOINTS[0], "GET", login_url, 200)
    if page is None:
        return
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    login = timed(
        samples,
        session,
        ENDPOINTS[1],
        "POST",
        login_url,
        302,
        data={"csrfmiddlewaretoken": token, "username": email, "password": PASSWORD, "next": ""},
        headers={"Referer": f"{origin}/accounts/login/"},
    )
    if login is None:
        return
    home = timed(samples, session, ENDPOINTS[2], "GET", base + login.headers["Location"], 200)
    if home is None:
        return
    forms = [dict(HIDDEN_INPUT.findall(form)) for form in ANSWER_FORM.findall(home.text)]
    # "Keep all" when the banner offers it (several lines), else the first line's form.
    form = next((f for f in forms if f.get("grant") == "all"), forms[0] if forms else None)
    if form is None:
        samples.append(Sample(ENDPOINTS[2], arrived, time.perf_counter(), "no answer form", True))
        return
    answer = timed(
        samples,
        session,
        ENDPOINTS[3],
        "POST",
        f"{base}/upgrades/respond/",
        302,
        data={**form, "keep": "1"},
        headers={"Referer": f"{origin}/"},
    )
    if answer is None:
        return
    after = timed(samples, session, ENDPOINTS[4], "GET", base + answer.headers["Location"], 200)
    if after is None:
        return
    if 'id="pending-h"' in after.text:  # the banner still asks: the answer was lost
        samples.append(Sample(ENDPOINTS[4], arrived, time.perf_counter(), "still asked", True))
        return
    visits.append(time.perf_counter() - arrived)


def poll_healthz(base: str, samples: list, stop: threading.Event) -> None:
    checks = []
    while not stop.wait(HEALTHZ_EVERY):
        session = browser("192.0.2.1")
        check = threading.Thread(
            target=timed, args=(samples, session, HEALTHZ, "GET", f"{base}/healthz", 200)
        )
        check.start()
        checks.append(check)
    for check in checks:
        check.join()


@dataclass
class Run:
    hasher: str
    ramp: float
    customers: int
    samples: list
    visits: list
    seconds: float
    server_cpu: float  # seconds of CPU the gunicorn workers used during the run
    client_cpu: float  # … and this process, the customers' side

    def ok(self, endpoint: str) -> list[float]:
        return sorted(s.seconds for s in self.samples if s.endpoint == endpoint and not s.error)

    def sent(self, endpoint: str) -> int:
        return sum(1 for s in self.samples if s.endpoint == endpoint and not s.derived)

    def errors(self, endpoint: str) -> dict[str, int]:
        counted: dict[str, int] = defaultdict(int)
        for sample in self.samples:
            if sample.endpoint == endpoint and sample.error:
                counted[sample.error] += 1
        return dict(counted)

    @property
    def logins_per_second(self) -> float:
        logins = [s for s in self.samples if s.endpoint == ENDPOINTS[1] and not s.error]
        if len(logins) < 2:
            return float("nan")
        span = max(s.ended for s in logins) - min(s.started for s in logins)
        return len(logins) / span


def server_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) used so far by gunicorn's workers, from /proc (Linux).

    Unlike the latencies, it does not grow when other processes share the machine.
    """
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master_pid:  # ppid; then utime and stime, in clock ticks
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def play(base: str, hasher: str, ramp: float, emails: list[str], master_pid: int) -> Run:
    """The customers arrive evenly over ``ramp`` seconds, each in a thread of its own."""
    samples: list[Sample] = []
    visits: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_healthz, args=(base, samples, stop))
    poller.start()
    time.sleep(1)  # the first health checks see the server idle
    cpu_before = server_cpu_seconds(master_pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    threads = []
    for number, email in enumerate(emails):
        time.sleep(max(0.0, started + number * ramp / len(emails) - time.perf_counter()))
        address = f"10.{number // 250 % 250}.{number % 250}.{1 + number // 62500}"
        thread = threading.Thread(target=visit, args=(base, email, address, samples, visits))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    stop.set()
    poller.join()
    cpu = server_cpu_seconds(master_pid) - cpu_before
    client_cpu = time.process_time() - client_cpu
    return Run(hasher, ramp, len(emails), samples, visits, seconds, cpu, client_cpu)


# --- Figures ----------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def print_run(run: Run) -> None:
    health = run.ok(HEALTHZ)
    health_p50 = percentile(health, 0.5)
    print(
        f"  ramp {run.ramp:g} s: {run.customers} customers arriving at"
        f" {run.customers / run.ramp:.1f}/s; all done {run.seconds:.1f} s after the first"
    )
    print(
        f"  {'endpoint':<26}{'ok':>6}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'p50/healthz':>13}{'p95/healthz':>13}"
    )
    for endpoint in [*ENDPOINTS, HEALTHZ]:
        ok, errors = run.ok(endpoint), run.errors(endpoint)
        p50, p95, p99 = (percentile(ok, f) for f in (0.5, 0.95, 0.99))
        print(
            f"  {endpoint:<26}{len(ok):>6}{sum(errors.values()):>8}{p50 * 1000:>9.0f}"
            f"{p95 * 1000:>9.0f}{p99 * 1000:>9.0f}{p50 / health_p50:>13.1f}"
            f"{p95 / percentile(health, 0.95):>13.1f}"
        )
        for error, count in sorted(errors.items()):
            print(f"      {count} x {error}")
    visits = sorted(run.visits)
    print(
        f"  whole visit (arrival to answer seen): p50 {percentile(visits, 0.5):.1f} s,"
        f" p95 {percentile(visits, 0.95):.1f} s; customers through {len(visits)}/{run.customers}"
    )
    print(
        f"  logins/s achieved: {run.logins_per_second:.1f};"
        f" CPU per customer: gunicorn's workers {run.server_cpu / run.customers * 1000:.0f} ms,"
        f" the simulated browsers {run.client_cpu / run.customers * 1000:.0f} ms"
    )


def print_comparison(runs: list[Run], ramps: list[float], hashers: list[str]) -> None:
    by = {(run.hasher, run.ramp): run for run in runs}
    header = "".join(f"{f'ramp {r:g} s':>14}" for r in ramps)
    print()
    print(f"{'logins/s achieved':<17}{header}")
    for hasher in hashers:
        cells = "".join(f"{by[hasher, r].logins_per_second:>14.1f}" for r in ramps)
        print(f"  {hasher:<15}{cells}")
    if "django" in hashers and "owasp" in hashers:
        gains = "".join(
            f"{by['owasp', r].logins_per_second / by['django', r].logins_per_second:>14.2f}"
            for r in ramps
        )
        print(f"  {'owasp / django':<15}{gains}")
    print(f"{'CPU/customer, ms':<17}{header}")
    for hasher in hashers:
        cells = "".join(
            f"{by[hasher, r].server_cpu / by[hasher, r].customers * 1000:>14.0f}" for r in ramps
        )
        print(f"  {hasher:<15}{cells}")
    print(f"{'login p95, ms':<17}{header}")
    for hasher in hashers:
        cells = "".join(
            f"{percentile(by[hasher, r].ok(ENDPOINTS[1]), 0.95) * 1000:>14.0f}" for r in ramps
        )
        print(f"  {hasher:<15}{cells}")


# --- Data -------------------------------------------------------------------------------


def seed(customers: int, cohorts: int) -> list[list[tuple[int, str]]]:
    """``customers`` customers per cohort, each with one user, 10 lines in service and
    a pending blanket grant on every line; returns each cohort's (customer id, e-mail)."""
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from portal.accounts.models import Role

    now = timezone.now()
    _, operator = load_customers(customers * cohorts * LINES_PER_CUSTOMER, timezone.localdate())
    with connection.cursor() as cursor:
        # load_customers makes the users by SQL: give them the customer role too.
        cursor.execute(
            "INSERT INTO accounts_user_groups (user_id, group_id)"
            " SELECT id, %s FROM accounts_user WHERE customer_id IS NOT NULL",
            [Group.objects.get(name=Role.CUSTOMER).pk],
        )
        cursor.execute("SELECT count(*), max(id) FROM subscriptions_subscription")
        lines, last_id = cursor.fetchone()
        cursor.execute(
            "SELECT customer_id, email FROM accounts_user WHERE customer_id IS NOT NULL"
            " ORDER BY customer_id"
        )
        users = cursor.fetchall()
    # The operator's declaration, as bench/disaster.py makes it (every line in scope).
    fleet = Fleet(operator, lines, lines, last_id, len(users))
    granted = service_declare(fleet, now)
    assert granted == lines, (granted, lines)
    return [users[i * customers : (i + 1) * customers] for i in range(cohorts)]


def set_passwords(cohort: list[tuple[int, str]], hasher_path: str) -> str:
    """One hash for the whole cohort (same cost to check as one per user); returns it."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils.module_loading import import_string

    encoded = make_password(PASSWORD, hasher=import_string(hasher_path)())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET password = %s WHERE customer_id = ANY(%s)",
            [encoded, [customer for customer, _ in cohort]],
        )
    return encoded


def check_cohort(cohort: list[tuple[int, str]], run: Run, old_hash: str) -> list[str]:
    """What the database says after the run: every answer kept, hashes as expected."""
    from django.db import connection

    ids = [customer for customer, _ in cohort]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE g.state = 'active'), count(*)"
            " FROM upgrades_speedgrant g"
            " JOIN subscriptions_subscription s ON s.id = g.subscription_id"
            " JOIN subscriptions_site st ON st.id = s.site_id WHERE st.customer_id = ANY(%s)",
            [ids],
        )
        kept, grants = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM accounts_user WHERE customer_id = ANY(%s) AND password <> %s",
            [ids, old_hash],
        )
        (rehashed,) = cursor.fetchone()
    # A request the browser gave up on (a 504) may still have been served: the database
    # must hold what every answered request did, and at most what every sent one did.
    problems = []
    through, answers_sent = len(run.visits), run.sent(ENDPOINTS[3])
    if not through * LINES_PER_CUSTOMER <= kept <= answers_sent * LINES_PER_CUSTOMER:
        problems.append(
            f"{kept} of {grants} grants kept: {through} customers through,"
            f" {answers_sent} answers sent"
        )
    logins, logins_sent = len(run.ok(ENDPOINTS[1])), run.sent(ENDPOINTS[1])
    if run.hasher == "rehash" and not logins <= rehashed <= logins_sent:
        problems.append(f"{rehashed} hashes re-made: {logins} logins, {logins_sent} sent")
    if run.hasher != "rehash" and rehashed:
        problems.append(f"{rehashed} hashes re-made, none expected")
    wrong_pages = [s.error for s in run.samples if s.derived]
    if wrong_pages:
        problems.append(f"pages that should not be: {', '.join(wrong_pages)}")
    return problems


def argon2_summary(encoded: str) -> str:
    parameters = encoded.split("$")[3]  # argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash
    return f"argon2id {parameters}"


# --- Main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200, help="per ramp and hasher")
    parser.add_argument(
        "--ramp", type=float, action="append", help="seconds over which they arrive; repeat"
    )
    parser.add_argument("--hasher", action="append", choices=list(HASHERS), help="repeat")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the config's)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    ramps = args.ramp or [60.0, 10.0]
    hashers = args.hasher or ["django", "owasp"]

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).replace(
        "bcp_bench", "bcp_bench_load"
    )
    config = bench_database(url)
    recreate_database(config)
    os.environ["DATABASE_URL"] = url
    for redis_url in (args.broker, args.cache):
        redis.Redis.from_url(redis_url).flushdb()  # nothing of an earlier run
    setup_django()
    from django.core.management import call_command
    from django.db import connections

    gunicorn = None
    runs: list[Run] = []
    problems: list[str] = []
    try:
        call_command("migrate", verbosity=0)
        seeding = time.perf_counter()
        cohorts = iter(seed(args.customers, len(hashers) * len(ramps)))
        print(f"BCP Portal load bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(
            f"{args.customers} customers per run ({LINES_PER_CUSTOMER} lines each, every line"
            f" with a pending blanket upgrade), seeded in {time.perf_counter() - seeding:.0f} s;"
            f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        workers = args.workers or (os.cpu_count() or 1) * 2 + 1
        with tempfile.TemporaryDirectory() as tmp:
            # Ramp by ramp, both hashers one after the other: on a shared machine the two
            # figures compared are measured minutes apart, not the whole run apart.
            for ramp in ramps:
                for hasher in hashers:
                    settings_module, stored_with, label = HASHERS[hasher]
                    cohort = next(cohorts)
                    old_hash = set_passwords(cohort, stored_with)
                    port = free_port()
                    base = f"http://127.0.0.1:{port}"
                    env = production_env(
                        settings_module=settings_module,
                        port=port,
                        database_url=url,
                        args=args,
                        tmp=tmp,
                    )
                    log_path = Path(tmp, f"gunicorn-{hasher}-{ramp:g}.log")
                    gunicorn = start_gunicorn(env, log_path)
                    wait_until_healthy(base, gunicorn, log_path)
                    warm_up(base, workers)
                    print()
                    print(
                        f"{hasher}: {label}; stored hashes {argon2_summary(old_hash)};"
                        f" gunicorn with {workers} sync workers, {settings_module}"
                    )
                    run = play(base, hasher, ramp, [email for _, email in cohort], gunicorn.pid)
                    stop_gunicorn(gunicorn)
                    gunicorn = None
                    runs.append(run)
                    print_run(run)
                    problems += [
                        f"{hasher}, ramp {ramp:g} s: {problem}"
                        for problem in check_cohort(cohort, run, old_hash)
                    ]
    finally:
        stop_gunicorn(gunicorn)
        connections.close_all()
        for redis_url in (args.broker, args.cache):
            redis.Redis.from_url(redis_url).flushdb()
        if not args.keep_db:
            drop_database(config)

    print_comparison(runs, ramps, hashers)
    if problems:
        sys.exit("FAILED:\n" + "\n".join(problems))


if __name__ == "__main__":
    main()
