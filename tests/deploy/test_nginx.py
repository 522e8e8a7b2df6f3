"""Why nginx sits in front of gunicorn: a phone photo sent over a slow uplink.

A real gunicorn (deploy/gunicorn.conf.py, its production timeout of 30 s) and the real
nginx (deploy/nginx/bcp-portal.conf, its ports, paths and TLS swapped for the test's
own) serve the test database. A customer logs in, opens the damage-report form from the
menu and sends it with a 2 MB photo from a client that paces its writes so the upload
lasts over 40 s, through nginx and, at the same time, straight to gunicorn. Through
nginx, which reads the whole body before passing it on, the report is saved; straight to
gunicorn, the sync worker is killed at its timeout halfway through the body and nothing
is saved.

The pace is about 380 kbit/s, six times the satellite uplink's 64 kbit/s, at which the
same photo takes over 4 minutes: what matters is that the upload outlives gunicorn's
timeout, and 40 s does that while keeping CI short. The client sleeps: it is the
network's speed being played, not time in the app, which time_machine cannot stand in
for.
"""

import io
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection
from PIL import Image

from incidents.models import DamageReport
from portal import settings as portal_settings
from tests.factories import PASSWORD, SiteFactory, UserFactory
from tests.mailserver import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
PHOTO_BYTES = 2_000_000  # a phone photo, not shrunk (no JavaScript)
UPLOAD_SECONDS = 42
# The production value, read from the configuration the deployment uses.
GUNICORN_TIMEOUT = runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))["timeout"]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]


def wait_until_it_answers(url: str, *, seconds: float, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: the process ended:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=3).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


def database_url() -> str:
    """The test database, as the gunicorn process must reach it."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def render_nginx(tmp: Path, *, port: int, redirect_port: int, upstream: int) -> Path:
    """deploy/nginx/bcp-portal.conf on the test's ports and paths, without TLS, inside a
    main configuration of the test's own (pid, logs and temporary files in ``tmp``)."""
    site = (ROOT / "deploy/nginx/bcp-portal.conf").read_text()
    replacements = [
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port};"),
        (r"listen 80;", f"listen 127.0.0.1:{redirect_port};"),
        (r"listen \[::\]:(80|443)( ssl)?;\n", ""),
        (r"ssl_[a-z_]+ [^;]+;\n", ""),
        (r"/var/log/nginx/", f"{tmp}/"),
    ]
    for pattern, replacement in replacements:
        site, found = re.subn(pattern, replacement, site)
        assert found, f"deploy/nginx/bcp-portal.conf no longer has {pattern!r}"
    (tmp / "bcp-portal.conf").write_text(site)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / folder).mkdir()
    # As root, nginx's workers would become "nobody" and could not write in tmp.
    user = "user root;" if os.geteuid() == 0 else ""
    main = tmp / "nginx.conf"
    main.write_text(f"""
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/bcp-portal.conf;
}}
""")
    return main


def noisy_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of noise (which does not compress), about ``target_bytes`` long."""
    side = int((target_bytes / 2.5) ** 0.5)
    while True:
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        if out.tell() >= target_bytes:
            return out.getvalue()
        side += 20


def fields_of(form_html: str) -> dict:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_html).group(1)
    select = re.search(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form_html, re.S)
    option = re.search(r'<option value="([^"]+)"', select.group(2)).group(1)
    textarea = re.search(r'<textarea name="([^"]+)"', form_html).group(1)
    file_input = re.search(r'<input type="file" name="([^"]+)"', form_html).group(1)
    return {
        "csrfmiddlewaretoken": token,
        select.group(1): option,
        textarea: "The antenna on the roof is tilted after the typhoon.",
        "file": file_input,
    }


def multipart(fields: dict, *, file_field: str, photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\nContent-Disposition: form-data; name={file_field!r}; "
        f'filename="IMG_0412.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.replace("'", '"').encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def slow_post(
    port: int, path: str, *, body: bytes, content_type: str, cookies: str, referer: str
) -> tuple[str, float]:
    """POST ``body`` over a raw socket in UPLOAD_SECONDS; the status line's code, or the
    error that ended the exchange, and the seconds the upload took."""
    bytes_per_second = len(body) / UPLOAD_SECONDS
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCookie: {cookies}\r\nReferer: {referer}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            client.sendall(head)
            sent = 0
            while sent < len(body):
                # Never ahead of the pace.
                allowed = int((time.monotonic() - started) * bytes_per_second)
                if allowed > sent:
                    client.sendall(body[sent:allowed])
                    sent = min(allowed, len(body))
                time.sleep(0.05)
            uploaded = time.monotonic() - started
            answer = b""
            while b"\r\n" not in answer:
                chunk = client.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError as error:  # reset, broken pipe: the other side went away
        return type(error).__name__, time.monotonic() - started
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    return status, uploaded


def test_a_slow_photo_upload_is_saved_through_nginx_and_lost_without_it(tmp_path, settings):
    # given a customer with a site, and the portal run as in production; the password is
    # hashed as the gunicorn process checks it (the suite's fast hasher is not there)
    settings.PASSWORD_HASHERS = portal_settings.PASSWORD_HASHERS
    user = UserFactory()
    SiteFactory(customer=user.customer)
    gunicorn_port, nginx_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env |= {
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PRIVATE_MEDIA_ROOT": str(tmp_path / "private"),
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
        "GUNICORN_BIND": f"127.0.0.1:{gunicorn_port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_ACCESS_LOG": str(tmp_path / "gunicorn.access.log"),
        "PYTHONUNBUFFERED": "1",
    }
    gunicorn_log, nginx_log = tmp_path / "gunicorn.log", tmp_path / "nginx.log"
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    conf = render_nginx(
        nginx_dir, port=nginx_port, redirect_port=free_port(), upstream=gunicorn_port
    )
    processes = []
    try:
        with gunicorn_log.open("w") as log:
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(gunicorn)
        with nginx_log.open("w") as log:
            nginx = subprocess.Popen(
                [NGINX, "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(nginx)
        proxied = f"http://127.0.0.1:{nginx_port}"
        direct = f"http://127.0.0.1:{gunicorn_port}"
        wait_until_it_answers(
            f"{direct}/accounts/login/", seconds=90, process=gunicorn, log=gunicorn_log
        )
        wait_until_it_answers(
            f"{proxied}/accounts/login/", seconds=30, process=nginx, log=nginx_log
        )

        # the customer logs in through nginx and opens the form from the menu
        browser = requests.Session()
        login = browser.get(f"{proxied}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        home = browser.post(
            login.url,
            data={"csrfmiddlewaretoken": token, "username": user.email, "password": PASSWORD},
            timeout=10,
        )
        menu = re.search(r'href="([^"]*/damage/)"', home.text)
        assert menu, f"no damage-report link after logging in:\n{home.text[:2000]}"
        form_page = browser.get(proxied + menu.group(1), timeout=10)
        fields = fields_of(form_page.text)
        file_field = fields.pop("file")
        cookies = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)

        photo = noisy_jpeg(PHOTO_BYTES)  # valid, and below DAMAGE_PHOTO_MAX_BYTES
        assert len(photo) < settings.DAMAGE_PHOTO_MAX_BYTES
        body, content_type = multipart(fields, file_field=file_field, photo=photo)
        assert UPLOAD_SECONDS > GUNICORN_TIMEOUT + 10

        # when it is sent through nginx, and at the same time straight to gunicorn
        def send(port):
            return slow_post(
                port,
                menu.group(1),
                body=body,
                content_type=content_type,
                cookies=cookies,
                referer=form_page.url,
            )

        with ThreadPoolExecutor(2) as uploads:
            proxied_upload = uploads.submit(send, nginx_port)
            direct_upload = uploads.submit(send, gunicorn_port)
            (proxied_status, proxied_took), (direct_status, direct_took) = (
                proxied_upload.result(),
                direct_upload.result(),
            )

        # then through nginx it arrives, although it took longer than gunicorn lets a
        # request last
        assert proxied_status == "302", (proxied_status, gunicorn_log.read_text()[-3000:])
        assert proxied_took > UPLOAD_SECONDS - 1
        report = DamageReport.objects.get()
        assert report.photos.count() == 1
        stored = tmp_path / "private" / report.photos.get().image.name
        assert stored.stat().st_size > PHOTO_BYTES / 2

        # and straight to gunicorn the worker is killed at its timeout, before the body
        # is in: nothing saved from that one
        assert direct_status not in {"200", "302"}, direct_status
        assert direct_took < UPLOAD_SECONDS - 5, "the worker was killed before the upload ended"
        assert DamageReport.objects.count() == 1
        assert "WORKER TIMEOUT" in gunicorn_log.read_text()
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
