"""Extensions (FAQ Q4): state, eligibility, quotes, invoices, payments, credit notes."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from subscriptions.models import ExtensionOffer, Invoice, Subscription
from subscriptions.services import accept_quote, cancel_invoice, quote_extension, record_payment
from tests.factories import SubscriptionFactory, SupportUserFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")


def at(year, month, day) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=TOKYO)


@pytest.fixture
def expiring_2019():
    """The README's example: a line whose five years end on 2019-04-01, with a static IP."""
    return SubscriptionFactory(service_start=date(2014, 4, 1), static_ip=True)


def test_the_seed_offer_is_loaded_by_a_data_migration():
    offer = ExtensionOffer.objects.get()

    assert offer.extends_until == date(2021, 12, 31)
    assert offer.annual_price_yen == 100_000
    assert not offer.is_open_on(date(2026, 11, 24))


@pytest.mark.parametrize(
    ("day", "state"),
    [
        (date(2016, 6, 1), "active"),
        (date(2019, 1, 1), "expiring_soon"),  # 90 days before the end
        (date(2019, 3, 31), "expiring_soon"),
        (date(2019, 4, 1), "expired"),
        (date(2021, 6, 1), "expired"),
    ],
)
def test_state_follows_the_dates(expiring_2019, day, state):
    assert expiring_2019.state_on(day) == state


def test_a_paid_extension_makes_the_line_extended_until_the_offers_end(expiring_2019):
    Subscription.objects.filter(pk=expiring_2019.pk).update(extended_until=date(2021, 12, 31))
    expiring_2019.refresh_from_db()

    assert expiring_2019.state_on(date(2019, 4, 1)) == "extended"
    assert expiring_2019.state_on(date(2021, 12, 31)) == "extended"
    assert expiring_2019.state_on(date(2022, 1, 1)) == "expired"
    assert expiring_2019.last_day == date(2021, 12, 31)
    assert Subscription.objects.in_service(date(2020, 1, 1)).filter(pk=expiring_2019.pk).exists()


def test_the_seed_offer_quotes_the_period_from_expiry_to_december_2021(expiring_2019):
    quote = quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1))

    assert (quote.first_day, quote.last_day) == (date(2019, 4, 1), date(2021, 12, 31))
    assert (quote.months, quote.days) == (33, 0)
    assert quote.service_yen == 275_000
    assert quote.static_ip_yen == 66_000  # ¥24,000 a year * 33/12
    assert quote.tax_yen == 34_100
    assert quote.total_yen == 375_100


def test_a_line_ending_after_the_offer_is_not_eligible():
    late = SubscriptionFactory(service_start=date(2017, 6, 1))  # ends 2022-06-01

    with pytest.raises(ValidationError):
        quote_extension(subscription=late, by=None, now=at(2021, 1, 1))


def test_the_closed_offer_refuses_today_and_points_to_support(expiring_2019):
    with pytest.raises(ValidationError) as error:
        quote_extension(subscription=expiring_2019, by=None, now=at(2026, 11, 24))

    assert "03-6279-0933" in error.value.messages[0]


def test_accepting_issues_one_prepaid_invoice_due_before_the_extension(expiring_2019):
    quote = quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1))

    invoice = accept_quote(quote=quote, by=None, now=at(2019, 3, 2))

    assert invoice.status == "issued" and invoice.kind == "invoice"
    assert invoice.due_on == date(2019, 3, 31)
    assert invoice.issuer_registration_number.startswith("T")
    assert [line.amount_yen for line in invoice.lines.all()] == [275_000, 66_000]
    assert (invoice.subtotal_yen, invoice.tax_yen, invoice.total_yen) == (341_000, 34_100, 375_100)
    with pytest.raises(ValidationError):
        accept_quote(quote=quote, by=None, now=at(2019, 3, 2))


def test_a_period_that_has_begun_is_due_at_once():
    expired = SubscriptionFactory(service_start=date(2015, 1, 1))  # ended 2020-01-01
    quote = quote_extension(subscription=expired, by=None, now=at(2020, 6, 1))

    invoice = accept_quote(quote=quote, by=None, now=at(2020, 6, 1))

    assert invoice.due_on == date(2020, 6, 1)


def test_invoice_numbers_follow_each_other_credit_notes_included(expiring_2019):
    other = SubscriptionFactory(service_start=date(2015, 5, 1))
    first = accept_quote(
        quote=quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1)),
        by=None,
        now=at(2019, 3, 1),
    )
    second = accept_quote(
        quote=quote_extension(subscription=other, by=None, now=at(2019, 3, 1)),
        by=None,
        now=at(2019, 3, 1),
    )
    credit = cancel_invoice(invoice=second, by=None, now=at(2019, 3, 2))

    assert [first.number, second.number, credit.number] == [
        first.number,
        first.number + 1,
        first.number + 2,
    ]
    assert credit.display_number.startswith("CN-")


def test_the_exact_payment_pays_and_extends_in_one_go(expiring_2019):
    staff = SupportUserFactory()
    invoice = accept_quote(
        quote=quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1)),
        by=None,
        now=at(2019, 3, 1),
    )

    with pytest.raises(ValidationError) as short:
        record_payment(
            invoice=invoice,
            amount_yen=375_000,
            paid_on=date(2019, 3, 20),
            reference="ﾌﾘｺﾐ 123",
            by=staff,
            now=at(2019, 3, 20),
        )
    assert "amount_yen" in short.value.message_dict
    record_payment(
        invoice=invoice,
        amount_yen=375_100,
        paid_on=date(2019, 3, 20),
        reference="ﾌﾘｺﾐ 123",
        by=staff,
        now=at(2019, 3, 20),
    )

    invoice.refresh_from_db()
    expiring_2019.refresh_from_db()
    assert invoice.status == "paid"
    assert expiring_2019.extended_until == date(2021, 12, 31)
    assert expiring_2019.state_on(date(2020, 1, 1)) == "extended"
    with pytest.raises(ValidationError):
        record_payment(
            invoice=invoice,
            amount_yen=375_100,
            paid_on=date(2019, 3, 20),
            reference="again",
            by=staff,
            now=at(2019, 3, 21),
        )


def test_cancelling_leaves_the_invoice_as_issued_and_adds_a_credit_note(expiring_2019):
    invoice = accept_quote(
        quote=quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1)),
        by=None,
        now=at(2019, 3, 1),
    )

    credit = cancel_invoice(invoice=invoice, by=None, now=at(2019, 3, 5))

    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    assert (invoice.total_yen, invoice.issued_on) == (375_100, date(2019, 3, 1))
    assert credit.credits == invoice and credit.total_yen == -375_100
    assert sum(line.amount_yen for line in credit.lines.all()) == -341_000
    with pytest.raises(ValidationError):
        record_payment(
            invoice=invoice,
            amount_yen=375_100,
            paid_on=date(2019, 3, 6),
            reference="x",
            by=SupportUserFactory(),
            now=at(2019, 3, 6),
        )
    assert Invoice.objects.count() == 2


def test_a_payment_in_the_future_or_for_a_cancelled_line_is_refused(expiring_2019):
    invoice = accept_quote(
        quote=quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1)),
        by=None,
        now=at(2019, 3, 1),
    )
    staff = SupportUserFactory()

    with pytest.raises(ValidationError) as future:
        record_payment(
            invoice=invoice, amount_yen=invoice.total_yen, paid_on=date(2019, 4, 1),
            reference="x", by=staff, now=at(2019, 3, 2),
        )  # fmt: skip
    Subscription.objects.filter(pk=expiring_2019.pk).update(status="cancelled")
    with pytest.raises(ValidationError):
        record_payment(
            invoice=invoice, amount_yen=invoice.total_yen, paid_on=date(2019, 3, 2),
            reference="x", by=staff, now=at(2019, 3, 2),
        )  # fmt: skip

    assert "paid_on" in future.value.message_dict
    invoice.refresh_from_db()
    assert invoice.status == "issued"


def test_a_quote_older_than_thirty_days_must_be_renewed(expiring_2019):
    quote = quote_extension(subscription=expiring_2019, by=None, now=at(2019, 1, 2))

    with pytest.raises(ValidationError):
        accept_quote(quote=quote, by=None, now=at(2019, 3, 1))


def test_who_issued_and_who_cancelled_is_kept(expiring_2019):
    staff = SupportUserFactory()
    invoice = accept_quote(
        quote=quote_extension(subscription=expiring_2019, by=None, now=at(2019, 3, 1)),
        by=staff,
        now=at(2019, 3, 1),
    )

    credit = cancel_invoice(invoice=invoice, by=staff, now=at(2019, 3, 2))

    invoice.refresh_from_db()
    assert (invoice.issued_by, invoice.cancelled_by, credit.issued_by) == (staff, staff, staff)
