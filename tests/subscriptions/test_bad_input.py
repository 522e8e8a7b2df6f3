"""Bad input on the extension side: messages or 400s, never a 500 (review findings)."""

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from subscriptions.invoice_pdf import render_invoice_pdf
from subscriptions.models import ExtensionOffer, Subscription
from subscriptions.services import accept_quote, quote_extension, record_payment
from tests.factories import OperatorUserFactory, SubscriptionFactory, SupportUserFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
MARCH_2019 = datetime(2019, 3, 1, 10, tzinfo=TOKYO)


@pytest.mark.parametrize("year", ["abc", "0", "99999999999999999999"])
def test_a_forged_expiry_year_filters_nothing_instead_of_failing(client, year):
    client.force_login(OperatorUserFactory())

    response = client.get(
        reverse("admin:subscriptions_subscription_changelist"), {"term_end_year": year}
    )

    assert response.status_code == 200


def test_a_forged_huge_id_in_an_admin_action_is_ignored(client):
    client.force_login(SupportUserFactory())

    response = client.post(
        reverse("admin:subscriptions_invoice_changelist"),
        {"action": "export_csv", "_selected_action": ["99999999999999999999"]},
    )

    assert response.status_code in {200, 302}


def test_an_offer_price_beyond_any_real_one_is_refused_by_the_admin(client):
    client.force_login(OperatorUserFactory())

    response = client.post(
        reverse("admin:subscriptions_extensionoffer_add"),
        {
            "name": "typo",
            "extends_until": "2027-12-31",
            "annual_price_yen": "9000000000000000000",
            "static_ip_annual_price_yen": "0",
            "tax_rate_percent": "10",
            "opens_on": "2026-01-01",
            "closes_on": "2026-12-31",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["annual_price_yen"]
    assert not ExtensionOffer.objects.filter(name="typo").exists()


def test_a_lapsed_line_is_billed_from_the_day_a_new_offer_opened_not_from_its_lapse():
    lapsed = SubscriptionFactory(service_start=date(2015, 10, 1))  # ended 2020-10-01
    offer = ExtensionOffer.objects.create(
        name="2027",
        extends_until=date(2027, 12, 31),
        annual_price_yen=100_000,
        static_ip_annual_price_yen=24_000,
        tax_rate_percent=10,
        opens_on=date(2026, 1, 1),
        closes_on=date(2026, 12, 31),
    )

    quote = quote_extension(
        subscription=lapsed, offer=offer, by=None, now=datetime(2026, 11, 24, tzinfo=TOKYO)
    )

    assert (quote.first_day, quote.last_day) == (date(2026, 1, 1), date(2027, 12, 31))
    assert quote.service_yen == 200_000  # two years, not seven


def test_a_line_prepaid_before_its_term_ends_is_in_service_in_the_state_filter(client):
    line = SubscriptionFactory(service_start=date(2016, 10, 1))  # term ends 2021-10-01
    Subscription.objects.filter(pk=line.pk).update(extended_until=date(2021, 12, 31))
    client.force_login(OperatorUserFactory())

    with time_machine.travel(datetime(2021, 8, 1, tzinfo=TOKYO), tick=False):
        active = client.get(
            reverse("admin:subscriptions_subscription_changelist"), {"state": "active"}
        )
        soon = client.get(
            reverse("admin:subscriptions_subscription_changelist"), {"state": "expiring_soon"}
        )

    # the term ends within 90 days, but the paid extension runs to 2021-12-31: in service
    assert line.contract_number in active.text
    assert line.contract_number not in soon.text


def test_the_invoice_pdf_embeds_its_japanese_font():
    if not Path(settings.INVOICE_PDF_FONT).is_file():
        pytest.skip(
            "fonts-ipaexfont-gothic is not installed (apt-get install fonts-ipaexfont-gothic)"
        )
    line = SubscriptionFactory(service_start=date(2014, 4, 1))
    invoice = accept_quote(
        quote=quote_extension(subscription=line, by=None, now=MARCH_2019), by=None, now=MARCH_2019
    )
    record_payment(
        invoice=invoice, amount_yen=invoice.total_yen, paid_on=date(2019, 3, 1), reference="x",
        by=SupportUserFactory(), now=MARCH_2019,
    )  # fmt: skip
    invoice.refresh_from_db()

    pdf = render_invoice_pdf(invoice)

    assert b"/FontFile2" in pdf  # the TrueType font travels inside the PDF
