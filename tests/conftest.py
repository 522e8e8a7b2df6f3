import os
import shutil

import pytest

# Playwright's sync API keeps an event loop in the main thread; Django would otherwise
# refuse ORM calls from the test (and live_server) as "async unsafe".
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 is the production hasher (tests/portal/test_accounts.py checks it);
    # hashing hundreds of factory passwords with it would only slow the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


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
    # database, the role groups of the data migration included. pytest-playwright then
    # regroups tests by browser, undoing that; put the transactional ones last again.
    def transactional(item) -> bool:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction"):
            return True
        return bool({"transactional_db", "live_server"} & set(item.fixturenames))

    items.sort(key=transactional)
