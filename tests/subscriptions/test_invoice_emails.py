"""What the customer is e-mailed as an extension goes: invoice issued, payment received
(which is also the moment the extension becomes active)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from subscriptions.models import Invoice, Quote
from subscriptions.services import accept_quote, quote_extension, record_payment
from support.models import OutboundEmail
from tests.factories import SubscriptionFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db
MARCH_2019 = datetime(2019, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


@pytest.fixture
def customer_user():
    return UserFactory(email="somu@town.example.jp")


@pytest.fixture
def line(customer_user):
    return SubscriptionFactory(
        site__customer=customer_user.customer, service_start=date(2014, 4, 1), static_ip=True
    )


def issue_invoice_in_the_portal(client, customer_user, line) -> Invoice:
    client.force_login(customer_user)
    with time_machine.travel(MARCH_2019, tick=False):
        client.post(reverse("subscriptions:quote-create", args=[line.pk]))
        client.post(reverse("subscriptions:quote-accept", args=[Quote.objects.get().pk]))
    client.logout()
    return Invoice.objects.get()


def test_the_customer_is_emailed_the_invoice_with_how_to_pay(
    client, settings, customer_user, line, send_emails
):
    settings.INVOICE_BANK_ACCOUNT = "テスト銀行 本店 普通 7654321"

    invoice = issue_invoice_in_the_portal(client, customer_user, line)

    [message] = send_emails()
    assert message.to == sorted(["somu@town.example.jp", line.site.customer.email.lower()])
    japanese, english = message.body.split("---------- English ----------")
    for text in (japanese, english):
        assert invoice.display_number in text
        assert "¥375,100" in text  # the invoice's own total
        assert "2019-03-31" in text  # due the day before the extension starts
        assert "テスト銀行 本店 普通 7654321" in text
        assert f"{settings.PORTAL_BASE_URL}/subscriptions/invoices/{invoice.pk}/" in text
    assert "請求書" in japanese and "御中" in japanese
    assert "Invoice" in english or "invoice" in english
    assert invoice.display_number in message.subject


def test_accepting_the_same_quote_twice_emails_one_invoice(line, send_emails):
    with time_machine.travel(MARCH_2019, tick=False):
        quote = quote_extension(subscription=line, by=None, now=MARCH_2019)
        accept_quote(quote=quote, by=None, now=MARCH_2019)
        with pytest.raises(ValidationError):
            accept_quote(quote=quote, by=None, now=MARCH_2019)  # a double click

    assert len(send_emails()) == 1


def test_the_payment_recorded_by_support_is_confirmed_with_the_extension(
    client, customer_user, line, send_emails
):
    invoice = issue_invoice_in_the_portal(client, customer_user, line)
    send_emails().clear()
    client.force_login(SupportUserFactory())
    url = reverse("admin:subscriptions_invoice_record_payment", args=[invoice.pk])

    client.post(url, {"amount_yen": 375_100, "paid_on": "2019-03-20", "reference": "A1"})
    client.post(url, {"amount_yen": 375_100, "paid_on": "2019-03-20", "reference": "A1"})

    [message] = send_emails()  # the replayed form queues nothing more
    assert "somu@town.example.jp" in message.to
    japanese, english = message.body.split("---------- English ----------")
    for text in (japanese, english):
        assert invoice.display_number in text
        assert "¥375,100" in text
        assert "2019-03-20" in text  # when it was paid
        assert "2021-12-31" in text  # the line now runs until the offer's end
    assert "入金" in japanese and "延長" in japanese
    assert "payment" in english and "extension is now active" in english
    assert OutboundEmail.objects.filter(key__startswith="payment-recorded:").count() == 1


def test_a_refused_payment_emails_nothing(line, send_emails):
    with time_machine.travel(MARCH_2019, tick=False):
        invoice = accept_quote(
            quote=quote_extension(subscription=line, by=None, now=MARCH_2019),
            by=None,
            now=MARCH_2019,
        )
    send_emails().clear()

    with pytest.raises(ValidationError):
        record_payment(
            invoice=invoice,
            amount_yen=1,
            paid_on=date(2019, 3, 1),
            reference="A1",
            by=None,
            now=MARCH_2019,
        )

    assert send_emails() == []
