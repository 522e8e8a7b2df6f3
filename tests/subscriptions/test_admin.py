"""The support desk's side of extensions: payments, credit notes, CSV, filters."""

import csv
import io
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from subscriptions.models import Invoice, Subscription
from subscriptions.services import accept_quote, quote_extension
from tests.factories import OperatorUserFactory, SubscriptionFactory, SupportUserFactory

pytestmark = pytest.mark.django_db
MARCH_2019 = datetime(2019, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


@pytest.fixture
def invoice():
    line = SubscriptionFactory(service_start=date(2014, 4, 1))
    return accept_quote(
        quote=quote_extension(subscription=line, by=None, now=MARCH_2019), by=None, now=MARCH_2019
    )


def test_support_records_the_exact_payment_and_the_extension_takes_effect(client, invoice):
    client.force_login(SupportUserFactory())
    # from the invoice list, its change page, then the "record a payment" button
    listed = client.get(reverse("admin:subscriptions_invoice_changelist")).text
    change = re.search(rf'href="([^"]*/subscriptions/invoice/{invoice.pk}/change/)"', listed)
    page = client.get(change.group(1)).text
    url = re.search(r'<a href="([^"]+)">入金を記録</a>', page).group(1)
    assert client.get(url).status_code == 200  # the form, not the admin index

    wrong = client.post(url, {"amount_yen": 300_000, "paid_on": "2019-03-20", "reference": "A1"})
    right = client.post(url, {"amount_yen": 302_500, "paid_on": "2019-03-20", "reference": "A1"})
    again = client.post(url, {"amount_yen": 302_500, "paid_on": "2019-03-20", "reference": "A1"})

    assert wrong.status_code == 200 and "¥302,500" in wrong.text
    assert right.status_code == 302
    assert "この請求書は入金済みです" in again.text  # shown on the form, no 500
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert Subscription.objects.get().extended_until == date(2021, 12, 31)


def test_cancelling_from_the_admin_issues_a_credit_note(client, invoice):
    client.force_login(SupportUserFactory())

    client.post(
        reverse("admin:subscriptions_invoice_changelist"),
        {"action": "cancel_with_credit_note", "_selected_action": [invoice.pk]},
    )

    assert Invoice.objects.filter(kind="credit_note", credits=invoice).exists()


def test_invoices_export_as_csv_for_accounting(client, invoice):
    client.force_login(SupportUserFactory())

    response = client.post(
        reverse("admin:subscriptions_invoice_changelist"),
        {"action": "export_csv", "_selected_action": [invoice.pk]},
    )

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "number"
    assert rows[1][0] == invoice.display_number
    assert rows[1][10] == "302500"


def test_the_subscription_queue_filters_by_state(client):
    client.force_login(OperatorUserFactory())
    expired = SubscriptionFactory(service_start=date(2014, 4, 1))
    expiring = SubscriptionFactory(service_start=date(2016, 5, 1))  # ends 2021-05-01

    with time_machine.travel(datetime(2021, 3, 1, tzinfo=ZoneInfo("Asia/Tokyo")), tick=False):
        page = client.get(
            reverse("admin:subscriptions_subscription_changelist"), {"state": "expiring_soon"}
        )

    assert expiring.contract_number in page.text
    assert expired.contract_number not in page.text


def test_support_cannot_edit_an_issued_invoice(client, invoice):
    client.force_login(SupportUserFactory())

    client.post(reverse("admin:subscriptions_invoice_change", args=[invoice.pk]), {"total_yen": 1})

    invoice.refresh_from_db()
    assert invoice.total_yen == 302_500


def test_an_operator_cannot_change_a_lines_speed_in_the_subscription_admin(client):
    from tests.factories import OperatorUserFactory
    from tests.upgrades.conftest import form_data, post_forms

    line = SubscriptionFactory(contract_number="K-0001")
    client.force_login(OperatorUserFactory())
    listed = client.get(reverse("admin:subscriptions_subscription_changelist")).text
    change = re.search(rf'href="([^"]*/subscriptions/subscription/{line.pk}/change/)"', listed)
    page = client.get(change.group(1)).text
    (form,) = [f for f in post_forms(page) if "contract_number" in dict(f["fields"])]

    # the speed fields are shown, not offered as inputs; a forged one changes nothing
    assert 'name="desired_upgraded"' not in page and 'name="applied_upgraded"' not in page
    client.post(
        change.group(1),
        form_data(
            form["fields"], desired_upgraded="on", desired_version="7", applied_upgraded="on"
        ),
    )

    line.refresh_from_db()
    assert (
        line.speed.desired_upgraded,
        line.speed.desired_version,
        line.speed.applied_upgraded,
    ) == (False, 0, False)
