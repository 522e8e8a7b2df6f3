"""After-hours contacts alert the on-call staff at once, once (FAQ Q3)."""

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from desk.services import open_inquiry
from support.models import AfterHoursAlert, OnCallShift
from support.services import post_after_hours_webhook
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


def test_a_night_request_alerts_the_staff_on_call_once(
    send_emails, django_capture_on_commit_callbacks
):
    on_call = SupportUserFactory(email="yakin@bcp.example.jp")
    SupportUserFactory(email="dayshift@bcp.example.jp")
    OnCallShift.objects.create(
        staff=on_call, starts_at=NIGHT - timedelta(hours=6), ends_at=NIGHT + timedelta(hours=8)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        upgrade_request = ask(NIGHT)
    sent = send_emails()
    send_emails()

    assert len(callbacks) >= 1  # a sender is asked for after commit
    assert len(sent) == 1
    assert sent[0].to == ["yakin@bcp.example.jp"]
    assert f"#{upgrade_request.pk}" in sent[0].subject
    assert "営業時間外" in sent[0].subject
    alert = AfterHoursAlert.objects.select_related("email").get()
    assert (alert.email.status, alert.recipients) == ("sent", ["yakin@bcp.example.jp"])


def test_an_inquiry_subject_with_a_line_break_still_alerts_the_staff(send_emails):
    SupportUserFactory(email="yakin@bcp.example.jp")
    user = UserFactory()

    open_inquiry(
        customer=user.customer,
        subject="回線が\r\nBcc: victim@example.com\n遅い",
        body="夜分にすみません",
        channel="portal",
        by=user,
        now=NIGHT,
    )
    (sent,) = send_emails()

    assert sent.to == ["yakin@bcp.example.jp"]
    assert "\n" not in sent.subject and "\r" not in sent.subject
    assert "回線が Bcc: victim@example.com 遅い" in sent.subject
    assert "victim@example.com" not in sent.message()["To"] and not sent.bcc
    assert AfterHoursAlert.objects.get().email.status == "sent"


def test_a_request_in_working_hours_alerts_nobody():
    ask(DAY)

    assert not AfterHoursAlert.objects.exists()


def test_with_nobody_on_call_the_whole_support_group_is_told_so(send_emails):
    SupportUserFactory(email="a@bcp.example.jp")
    SupportUserFactory(email="b@bcp.example.jp")
    ask(NIGHT)

    (sent,) = send_emails()

    assert AfterHoursAlert.objects.get().nobody_on_call
    assert set(sent.to) == {"a@bcp.example.jp", "b@bcp.example.jp"}
    assert "当番" in sent.body


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
        alert = AfterHoursAlert.objects.get()
        first = post_after_hours_webhook(alert_id=alert.pk)
        again = post_after_hours_webhook(alert_id=alert.pk)
    finally:
        server.shutdown()
        server.server_close()

    assert (first, again) == (True, False)
    assert len(received) == 1 and "営業時間外" in received[0]["text"]
    assert AfterHoursAlert.objects.get().webhook_status == "HTTP 204"
