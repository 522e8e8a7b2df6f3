"""After-hours contacts alert the on-call staff at once, once (FAQ Q3)."""

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from support.models import AfterHoursAlert, OnCallShift
from support.services import send_after_hours_alert
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 23, 30, tzinfo=TOKYO)
DAY = datetime(2026, 11, 24, 11, 0, tzinfo=TOKYO)


def ask(at):
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    return request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="portal",
        requested_by=user, now=at,
    )  # fmt: skip


def test_a_night_request_alerts_the_staff_on_call_once(django_capture_on_commit_callbacks):
    on_call = SupportUserFactory(email="yakin@bcp.example.jp")
    SupportUserFactory(email="dayshift@bcp.example.jp")
    OnCallShift.objects.create(
        staff=on_call, starts_at=NIGHT - timedelta(hours=6), ends_at=NIGHT + timedelta(hours=8)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        upgrade_request = ask(NIGHT)
    alert = AfterHoursAlert.objects.get()
    first = send_after_hours_alert(alert_id=alert.pk, now=NIGHT)
    second = send_after_hours_alert(alert_id=alert.pk, now=NIGHT + timedelta(minutes=1))

    assert len(callbacks) >= 1  # the alert task is enqueued after commit
    assert (first, second) == (True, False)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["yakin@bcp.example.jp"]
    assert f"#{upgrade_request.pk}" in mail.outbox[0].subject
    assert "営業時間外" in mail.outbox[0].subject


def test_a_request_in_working_hours_alerts_nobody():
    ask(DAY)

    assert not AfterHoursAlert.objects.exists()


def test_with_nobody_on_call_the_whole_support_group_is_told_so():
    SupportUserFactory(email="a@bcp.example.jp")
    SupportUserFactory(email="b@bcp.example.jp")
    ask(NIGHT)
    alert = AfterHoursAlert.objects.get()

    send_after_hours_alert(alert_id=alert.pk, now=NIGHT)

    alert.refresh_from_db()
    assert alert.nobody_on_call
    assert set(mail.outbox[0].to) == {"a@bcp.example.jp", "b@bcp.example.jp"}
    assert "当番" in mail.outbox[0].body


def test_the_alert_also_reaches_a_chat_gateway_over_http(settings):
    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SUPPORT_ONCALL_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        ask(NIGHT)
        send_after_hours_alert(alert_id=AfterHoursAlert.objects.get().pk, now=NIGHT)
    finally:
        server.shutdown()
        server.server_close()

    assert len(received) == 1 and "営業時間外" in received[0]["text"]
    assert AfterHoursAlert.objects.get().webhook_status == "HTTP 204"
