"""The extension as a customer goes through it: quote, invoice, printable page, PDF."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from subscriptions.models import Invoice, Quote
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
MARCH_2019 = datetime(2019, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


@pytest.fixture
def customer_user():
    return UserFactory()


@pytest.fixture
def line(customer_user):
    return SubscriptionFactory(
        site__customer=customer_user.customer, service_start=date(2014, 4, 1), static_ip=True
    )


def test_today_the_closed_offer_is_said_plainly_with_the_support_contacts(
    client, customer_user, line
):
    client.force_login(customer_user)

    page = client.get(line.get_absolute_url())

    assert "2021-12-31 まで延長するプランは 2021-12-31 に受付を終了しました" in page.text
    assert "03-6279-0933" in page.text
    assert "見積" not in page.text  # no quote button


def test_in_2019_the_customer_quotes_accepts_and_gets_the_invoice_and_its_pdf(
    client, customer_user, line
):
    client.force_login(customer_user)
    with time_machine.travel(MARCH_2019, tick=False):
        page = client.get(line.get_absolute_url())
        quoted = client.post(reverse("subscriptions:quote-create", args=[line.pk]))
        quote = Quote.objects.get()
        quote_page = client.get(quoted["Location"])
        accepted = client.post(reverse("subscriptions:quote-accept", args=[quote.pk]))
        invoice = Invoice.objects.get()
        printable = client.get(accepted["Location"])
        pdf = client.get(reverse("subscriptions:invoice-pdf", args=[invoice.pk]))
        listing = client.get(reverse("subscriptions:invoices"))

    assert "2019-04-01" in page.text and "2021-12-31" in page.text
    assert "¥375,100" in quote_page.text
    assert accepted["Location"] == invoice.get_absolute_url()
    assert invoice.display_number in printable.text
    assert "T1234567890123" in printable.text  # the issuer's registration number
    assert "¥34,100" in printable.text
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert invoice.display_number in pdf["Content-Disposition"]
    assert invoice.display_number in listing.text


def test_another_organisations_line_quote_and_invoice_are_not_found(client, line):
    with time_machine.travel(MARCH_2019, tick=False):
        from subscriptions.services import accept_quote, quote_extension

        quote = quote_extension(subscription=line, by=None, now=MARCH_2019)
        invoice = accept_quote(quote=quote, by=None, now=MARCH_2019)
        client.force_login(UserFactory())

        responses = [
            client.get(line.get_absolute_url()),
            client.post(reverse("subscriptions:quote-create", args=[line.pk])),
            client.get(reverse("subscriptions:quote", args=[quote.pk])),
            client.post(reverse("subscriptions:quote-accept", args=[quote.pk])),
            client.get(reverse("subscriptions:invoice", args=[invoice.pk])),
            client.get(reverse("subscriptions:invoice-pdf", args=[invoice.pk])),
        ]

    assert [r.status_code for r in responses] == [404] * 6
    assert Quote.objects.count() == 1


def test_a_second_quote_while_an_invoice_waits_is_refused_with_a_message(
    client, customer_user, line
):
    client.force_login(customer_user)
    with time_machine.travel(MARCH_2019, tick=False):
        client.post(reverse("subscriptions:quote-create", args=[line.pk]))
        client.post(reverse("subscriptions:quote-accept", args=[Quote.objects.get().pk]))
        client.post(reverse("subscriptions:quote-create", args=[line.pk]))
        refused = client.post(
            reverse("subscriptions:quote-accept", args=[Quote.objects.latest("pk").pk]),
            follow=True,
        )

    assert "お支払い待ちの請求書がすでにあります" in refused.text
    assert Invoice.objects.count() == 1
