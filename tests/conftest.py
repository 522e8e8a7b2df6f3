import importlib
import os
import shutil
from contextlib import ExitStack
from unittest.mock import patch

import pytest
from django.apps import apps as django_apps
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import post_migrate

from portal.accounts import roles
from tests.chromium import EXECUTABLE as CHROMIUM
from tests.chromium import LAUNCH_ARGS

# Playwright's sync API keeps an event loop in the main thread; Django would otherwise
# refuse ORM calls from the test (and live_server) as "async unsafe".
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 is the production hasher (tests/portal/test_accounts.py checks it);
    # hashing hundreds of factory passwords with it would only slow the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_query_log():
    # Query counts (django_assert_max_num_queries) read the connection's log, a deque of
    # at most 9,000 entries: left full by an earlier test, it would count 0 queries and
    # pass any budget. Each test starts with it empty.
    from django.db import reset_queries

    reset_queries()


DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}


@pytest.fixture(autouse=True)
def _empty_cache(request, django_db_setup, django_db_blocker):
    # Rate limits count in the cache (password resets, throttles): each test starts with
    # none spent. The cache is a table of the test database (embedded mode). A session
    # of tests that touch no database has none (pytest-django creates it only when a
    # test asks), and nothing to empty.
    if not (
        request.node.get_closest_marker("django_db")
        or DATABASE_FIXTURES & set(request.fixturenames)
    ):
        return
    from django.core.cache import cache

    with django_db_blocker.unblock():
        cache.clear()


@pytest.fixture(autouse=True)
def _staff_logins_pass_the_second_factor(monkeypatch):
    """``client.force_login(staff)`` gives a session verified by a second factor, as after
    the verify page: staff pages need one (portal/accounts/mfa.py), and the tests that
    log staff in are about something else. tests/portal/test_mfa.py logs in with the
    password only (``password_only_login``) to show what happens without it.
    """
    from django.test import Client

    password_only = Client.force_login

    def force_login(self, user, backend=None):
        password_only(self, user, backend)
        verify_second_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)
    monkeypatch.setattr(Client, "password_only_login", password_only, raising=False)


def verify_second_factor(client, user):
    """Mark the client's session verified with the user's authenticator (made if need be)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.accounts import mfa

    if not (mfa.must_enrol(user) or mfa.has_second_factor(user)):
        return
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[mfa.SESSION_REQUIRED_KEY] = True
    session.save()


@pytest.fixture(scope="session", autouse=True)
def _tests_own_celery_queue():
    # Tasks enqueued by tests go to a queue of their own: a `make run` worker on the same
    # broker folder would otherwise run them against the development database.
    from portal.celery import app as celery_app

    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = f"tests-{os.getpid()}"
    yield
    celery_app.conf.task_default_queue = previous


@pytest.fixture
def send_emails():
    """Run the outbox's sender as the worker would; returns the e-mails sent so far."""
    from django.core import mail

    from support.outbox import send_queued_emails

    def send():
        send_queued_emails()
        return mail.outbox

    return send


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on this machine; Django's SMTP backend sends to it."""
    from tests.mailserver import SMTPServer

    server = SMTPServer()
    server.start()
    for name, value in server.settings().items():
        setattr(settings, name, value)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return LAUNCH_ARGS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("CI") == "true" and terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(
            "CI runs every test: the skips above mean a service, browser or tool is missing.",
            red=True,
        )


def pytest_sessionfinish(session, exitstatus):
    # In CI a skipped test is a test that did not run: fail the run instead of hiding it.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") == "true" and reporter and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # A browser set to Japanese, as at the portal's customers.
    return {**browser_context_args, "locale": "ja-JP", "timezone_id": "Asia/Tokyo"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # pytest-django runs transactional tests last, because their flush empties the
    # database. pytest-playwright then regroups tests by browser, undoing that: put the
    # transactional ones last again.
    def transactional(item) -> bool:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction"):
            return True
        return bool({"transactional_db", "live_server"} & set(item.fixturenames))

    items.sort(key=transactional)


# Data migrations that seed rows every test expects (roles, the 2021 offer), in order.
SEED_MIGRATIONS = [
    ("portal.accounts.migrations.0002_roles", "create_roles"),
    ("portal.accounts.migrations.0003_support_cannot_read_tokens", "remove"),
    ("portal.accounts.migrations.0004_upgrade_roles", "add"),
    ("subscriptions.migrations.0004_seed_extension_offer", "seed"),
    ("portal.accounts.migrations.0006_billing_roles", "add"),
    ("portal.accounts.migrations.0007_on_call_roles", "add"),
    ("portal.accounts.migrations.0009_incident_roles", "add"),
    ("portal.accounts.migrations.0011_outbox_roles", "add"),
    ("portal.accounts.migrations.0012_customer_notice_roles", "add"),
    ("portal.accounts.migrations.0013_mass_message_roles", "add"),
    ("portal.accounts.migrations.0014_follow_up_roles", "add"),
    ("portal.accounts.migrations.0018_second_factor_roles", "add"),
    ("portal.accounts.migrations.0019_desk_roles", "add"),
    ("portal.accounts.migrations.0020_contact_event_roles", "add"),
    ("portal.accounts.migrations.0021_mailbox_roles", "add"),
    ("portal.accounts.migrations.0022_call_roles", "add"),
]


def _replay_seed_migrations(sender, using, **kwargs):
    """After the flush that ends a transactional test, rebuild what data migrations made.

    Django re-creates content types and permissions then (post_migrate), but not rows of
    data migrations. Replaying them on the migrated state is what a fresh database has.
    (Django's serialized_rollback would restore them too, but Playwright's event loop
    gives the main thread a new connection object without the serialized snapshot.)
    """
    with_models = [config for config in django_apps.get_app_configs() if config.models_module]
    if sender is not with_models[-1]:
        return  # post_migrate comes once per app with models; run once, after the last
    state = MigrationLoader(connections[using]).project_state().apps
    modules = [(importlib.import_module(module), function) for module, function in SEED_MIGRATIONS]
    # Each data migration first creates every app's permissions, as a fresh database has
    # none yet; after a flush Django has just created them all (post_migrate, above), so
    # the replay skips that step: 14 times 50 apps' checks, most of a flush's time.
    with ExitStack() as stack:
        for module in {module for module, _ in modules} | {roles}:
            if hasattr(module, "create_permissions"):
                stack.enter_context(patch.object(module, "create_permissions", _created))
        for module, function in modules:
            getattr(module, function)(state, None)


def _created(app_config, **kwargs):
    """Stands for create_permissions when post_migrate has just run it for every app."""


post_migrate.connect(_replay_seed_migrations, dispatch_uid="tests.replay_seed_migrations")
