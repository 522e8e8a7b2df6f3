"""A real Celery worker sends what the web request only queued, to a real SMTP server."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from desk.models import InquiryMessage
from desk.services import open_inquiry
from tests.desk.test_inquiries import _change_form_data
from tests.factories import SupportUserFactory, UserFactory
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_staff_reply_is_sent_by_the_worker_not_by_the_admins_request(
    client, monkeypatch, smtp_server
):
    customer = UserFactory(email="tanaka@town.example.jp")
    inquiry = open_inquiry(
        customer=customer.customer,
        subject="請求書の宛名",
        body="宛名を変えたい",
        channel="portal",
        by=customer,
        now=timezone.now(),
    )
    client.force_login(SupportUserFactory())
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    with celery_worker(monkeypatch, EMAIL_URL=f"smtp://127.0.0.1:{smtp_server.port}"):
        response = client.post(
            url, _change_form_data(client, inquiry, reply="宛名を変更しました。")
        )
        # The admin answered without talking to the mail server…
        assert response.status_code == 302
        assert mail.outbox == []
        # …and the worker process sent it.
        assert wait_for(lambda: len(smtp_server.messages) == 1), "no e-mail within 60 s"

    (received,) = smtp_server.messages
    assert "tanaka@town.example.jp" in received["to"]
    reply = InquiryMessage.objects.select_related("email").get(from_staff=True)
    assert reply.email.status == "sent"
