"""`make run` on another port: the server, the banner and the links in e-mails follow it.

Runs the real command (migrate, seed_demo, honcho with web, worker and beat) against a
database and a broker folder of its own, asks for a password reset as a person would,
and reads the e-mail the worker prints (the embedded mode's console e-mail).
"""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from tests.mailserver import free_port
from tests.worker import wait_for

ROOT = Path(__file__).resolve().parent.parent


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.worker
def test_make_run_on_another_port_serves_there_and_mails_links_to_it(tmp_path):
    port = free_port()
    output = tmp_path / "make-run.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "PORTAL_BASE_URL", "CACHE_URL"}
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
        "PYTHONUNBUFFERED": "1",
    }
    with output.open("w") as log:
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: answers(f"{base}/healthz"), timeout=180), "the portal answers"
        assert f"BCP Portal: {base}/" in output.read_text()

        # pages and static files travel compressed; static files are kept for a year
        page = requests.get(f"{base}/accounts/login/", timeout=5)
        assert page.headers["Content-Encoding"] == "gzip"
        css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
        assert re.search(r"\.[0-9a-f]{12}\.css$", css), "a hashed name, safe to keep"
        style = requests.get(f"{base}{css}", headers={"Accept-Encoding": "br"}, timeout=5)
        assert style.headers["Content-Encoding"] == "br"
        assert "max-age=315360000" in style.headers["Cache-Control"]

        # a person forgot their password: the login page's link, the form it shows
        session = requests.Session()
        login = session.get(f"{base}/accounts/login/", timeout=5)
        reset = base + re.search(r'href="(/accounts/[^"]*reset/)"', login.text).group(1)
        form = session.get(reset, timeout=5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        sent = session.post(
            reset,
            data={"csrfmiddlewaretoken": token, "email": "chichibu@example.com"},
            headers={"Referer": reset},
            timeout=10,
        )
        assert sent.status_code == 200

        # the worker sends it; its link names the port the portal runs on
        reset_link = re.compile(r"http://[^\s/]+/accounts/password/reset/\S+/\S+/")
        assert wait_for(lambda: reset_link.search(output.read_text()), timeout=60), "e-mail sent"
        link = reset_link.search(output.read_text()).group(0)
        assert link.startswith(f"{base}/accounts/password/reset/")
        assert answers(link)
    finally:
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
