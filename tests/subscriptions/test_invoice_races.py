"""Invoices and payments under real concurrency (DESIGN invariants 1, 3 and 6).

Invoice numbers come from one locked sequence row, so invoices and credit notes issued at
the same moment still get every number once, in a run without gaps, and an issue that
fails gives its number back; a line locked while it is invoiced gets one unpaid invoice
however many acceptances arrive together. A bank transfer recorded twice at once is taken
once and extends the line once; a payment meeting a cancellation leaves one of the two.

Only PostgreSQL's row locks show this: each job runs in a thread with its own connection,
opened before a barrier that releases all jobs together. The assertions hold whatever the
interleaving: they check the end state, not who won.
"""

import random
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import translation

from subscriptions.models import (
    ExtensionOffer,
    Invoice,
    InvoiceSequence,
    Payment,
    Quote,
    Subscription,
)
from subscriptions.services import accept_quote, cancel_invoice, quote_extension, record_payment
from tests.factories import SubscriptionFactory, SupportUserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

TOKYO = ZoneInfo("Asia/Tokyo")
# While the seed offer (until 2021-12-31) was open, a month before the lines expire.
QUOTED_AT = datetime(2019, 3, 1, 10, 0, tzinfo=TOKYO)
ISSUED_AT = datetime(2019, 3, 2, 10, 0, tzinfo=TOKYO)
PAID_AT = datetime(2019, 3, 20, 10, 0, tzinfo=TOKYO)
JOIN_TIMEOUT = 30  # seconds; a job still running after this is stuck in a lock wait

ISSUE_TRIALS = 3
ISSUES = 20  # quotes accepted at once, each for its own line
SECOND_INVOICES = 3  # lines that already have an unpaid invoice: refused
ABANDONED = 3  # issues whose transaction fails after taking a number
CANCELS = 3  # credit notes issued at the same moment
PAIRS = 2  # lines whose quote is accepted twice, and lines with two quotes accepted at once
PAYMENT_TRIALS = 10
PAYERS = 6


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL's row locks and real concurrency, not {connection.vendor}")


def race(jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in a thread of its own, all released together by a barrier.

    Returns each job's result in order, or the exception it raised in its place. Jobs
    run in English (the portal's default is Japanese) so refusals read as in the code.
    """
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            try:
                # Connect first (Django opens one connection per thread): connecting takes
                # milliseconds and would stagger the start.
                connection.ensure_connection()
            except BaseException:
                barrier.abort()  # release the others instead of leaving them waiting
                raise
            barrier.wait(timeout=JOIN_TIMEOUT)
            with translation.override("en"):
                results[index] = job()
        except BaseException as error:
            results[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, job), name=f"race-{index}", daemon=True)
        for index, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"jobs still running after {JOIN_TIMEOUT}s (a lock wait?): {hung}"
    return results


def quote_for_a_new_line() -> Quote:
    """A quote for a line whose five years end on 2019-04-01, up to 2021-12-31."""
    line = SubscriptionFactory(service_start=date(2014, 4, 1))
    return quote_extension(subscription=line, by=None, now=QUOTED_AT)


def issue_for_a_new_line() -> Invoice:
    return accept_quote(quote=quote_for_a_new_line(), by=None, now=QUOTED_AT)


class IssueAbandoned(Exception):
    """What fails the issuing transaction after the invoice took its number."""


def accept_fresh(quote_pk: int) -> Invoice:
    # Loaded in the job's own thread, as each request of a double submit would.
    return accept_quote(quote=Quote.objects.get(pk=quote_pk), by=None, now=ISSUED_AT)


def issue_then_fail(quote: Quote) -> None:
    # As a caller whose work after the issue fails (a view's atomic request, say): the
    # whole transaction, the invoice's number included, rolls back.
    with transaction.atomic():
        accept_quote(quote=quote, by=None, now=ISSUED_AT)
        raise IssueAbandoned


def messages(error: object) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else repr(error)


SINGLE_OUTCOMES = ("issue", "second", "abandon", "cancel")
# Two acceptances for one line at once: one is invoiced, the other refused with this.
PAIR_REFUSALS = {
    "twice": "This quote has already been accepted.",
    "rival": "An invoice for this subscription is already waiting for payment.",
}


def as_expected(kind: str, pk: int, result: object) -> bool:
    """Whether a job of the first test ended as it should; ``pk`` is its quote or invoice."""
    if kind == "issue":
        return isinstance(result, Invoice) and result.quote_id == pk
    if kind == "second":
        return "already waiting for payment" in messages(result)
    if kind == "abandon":
        return isinstance(result, IssueAbandoned)
    return isinstance(result, Invoice) and result.credits_id == pk  # a credit note


def numbering_problems(first: int) -> list[str]:
    """What is wrong with the numbers issued since ``first``; empty when nothing is."""
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    next_number = InvoiceSequence.objects.get(name="invoice").next_number
    problems = []
    if numbers != list(range(first, first + len(numbers))):
        missing = sorted(set(range(first, max(numbers, default=first) + 1)) - set(numbers))
        problems.append(f"numbers not a run from {first}: missing {missing}, got {numbers}")
    if next_number != first + len(numbers):
        problems.append(f"the sequence's next number is {next_number}, not {first + len(numbers)}")
    return problems


def test_invoices_issued_at_once_take_every_number_once_without_gaps():
    shuffle = random.Random(20190301).shuffle  # a fixed seed: the same start order each run
    first = InvoiceSequence.objects.get(name="invoice").next_number
    expected_rows = 0

    for trial in range(ISSUE_TRIALS):
        # given twenty quotes for twenty lines; lines whose invoice awaits payment, each
        # quoted again; quotes whose issue will fail; unpaid invoices to cancel; quotes
        # to be accepted twice; lines with two quotes
        quotes = [quote_for_a_new_line() for _ in range(ISSUES)]
        second_quotes = [
            quote_extension(subscription=invoice.subscription, by=None, now=QUOTED_AT)
            for invoice in [issue_for_a_new_line() for _ in range(SECOND_INVOICES)]
        ]
        doomed = [quote_for_a_new_line() for _ in range(ABANDONED)]
        to_cancel = [issue_for_a_new_line() for _ in range(CANCELS)]
        twice = [quote_for_a_new_line() for _ in range(PAIRS)]
        rivals = [
            (quote, quote_extension(subscription=quote.subscription, by=None, now=QUOTED_AT))
            for quote in [quote_for_a_new_line() for _ in range(PAIRS)]
        ]
        expected_rows += SECOND_INVOICES + CANCELS

        # when all of them are accepted or cancelled at the same moment
        jobs = [
            *[
                ("issue", q.pk, partial(accept_quote, quote=q, by=None, now=ISSUED_AT))
                for q in quotes
            ],
            *[
                ("second", q.pk, partial(accept_quote, quote=q, by=None, now=ISSUED_AT))
                for q in second_quotes
            ],
            *[("abandon", q.pk, partial(issue_then_fail, q)) for q in doomed],
            *[
                ("cancel", i.pk, partial(cancel_invoice, invoice=i, by=None, now=ISSUED_AT))
                for i in to_cancel
            ],
            *[("twice", q.subscription_id, partial(accept_fresh, q.pk)) for q in twice * 2],
            *[
                ("rival", q.subscription_id, partial(accept_fresh, q.pk))
                for pair in rivals
                for q in pair
            ],
        ]
        shuffle(jobs)
        results = race([job for _, _, job in jobs])

        # then the quotes were invoiced, the second invoices refused, the failed issues
        # rolled back and the invoices cancelled; of each pair, one was invoiced
        unexpected = {
            (kind, pk): messages(result)
            for (kind, pk, _), result in zip(jobs, results, strict=True)
            if kind in SINGLE_OUTCOMES and not as_expected(kind, pk, result)
        }
        assert not unexpected, f"trial {trial}: unexpected outcomes {unexpected}"
        pairs: dict[tuple[str, int], list[str]] = {}
        for (kind, line_pk, _), result in zip(jobs, results, strict=True):
            if kind in PAIR_REFUSALS:
                won = isinstance(result, Invoice) and result.subscription_id == line_pk
                pairs.setdefault((kind, line_pk), []).append(
                    "invoiced" if won else messages(result)
                )
        wrong_pairs = {
            key: outcomes
            for key, outcomes in pairs.items()
            if sorted(outcomes, key="invoiced".__ne__) != ["invoiced", PAIR_REFUSALS[key[0]]]
        }
        assert not wrong_pairs, f"trial {trial}: one of each pair should be invoiced: {wrong_pairs}"
        assert not Invoice.objects.filter(quote__in=doomed + second_quotes).exists()
        expected_rows += ISSUES + CANCELS + 2 * PAIRS
        assert Invoice.objects.count() == expected_rows

        # and every number, credit notes' included, was taken once, in a run with no gaps
        problems = numbering_problems(first)
        assert not problems, f"trial {trial}: {problems}"


def pay(invoice: Invoice, *, by, reference: str) -> Payment:
    return record_payment(
        invoice=invoice,
        amount_yen=invoice.total_yen,
        paid_on=date(2019, 3, 20),
        reference=reference,
        by=by,
        now=PAID_AT,
    )


def test_a_payment_recorded_twice_at_once_is_taken_once_and_extends_the_line_once():
    staff = SupportUserFactory()
    offer = ExtensionOffer.objects.get()
    assert offer.extends_until == date(2021, 12, 31)

    for trial in range(PAYMENT_TRIALS):
        # given an unpaid invoice for the whole extension
        invoice = issue_for_a_new_line()

        # when the same bank transfer is recorded several times at the same moment
        results = race([partial(pay, invoice, by=staff, reference=f"ﾌﾘｺﾐ {trial}")] * PAYERS)

        # then one recording is taken, the others are told it is already paid
        taken = [result for result in results if isinstance(result, Payment)]
        refused = [result for result in results if "already been paid" in messages(result)]
        assert (len(taken), len(refused)) == (1, PAYERS - 1), (
            f"trial {trial}: {[messages(result) for result in results]}"
        )
        assert list(Payment.objects.filter(invoice=invoice).values_list("pk", flat=True)) == [
            taken[0].pk
        ]
        paid = Invoice.objects.get(pk=invoice.pk)
        assert (paid.status, paid.paid_at) == (Invoice.Status.PAID, PAID_AT)
        assert (paid.total_yen, paid.number) == (invoice.total_yen, invoice.number)
        line = Subscription.objects.get(pk=invoice.subscription_id)
        assert line.extended_until == offer.extends_until


def test_a_payment_racing_a_cancellation_either_pays_or_cancels_never_both():
    staff = SupportUserFactory()
    shuffle = random.Random(20190320).shuffle  # a fixed seed: the same start order each run
    first = InvoiceSequence.objects.get(name="invoice").next_number

    for trial in range(PAYMENT_TRIALS):
        # given an unpaid invoice
        invoice = issue_for_a_new_line()

        # when staff record its payment and cancel it, each three times, at the same moment
        jobs = [partial(pay, invoice, by=staff, reference=f"ﾌﾘｺﾐ {trial}")] * 3
        jobs += [partial(cancel_invoice, invoice=invoice, by=staff, now=PAID_AT)] * 3
        shuffle(jobs)
        results = race(jobs)

        # then exactly one job won, and the invoice, payment, credit note and line agree
        won = [result for result in results if isinstance(result, Payment | Invoice)]
        refused = [result for result in results if isinstance(result, ValidationError)]
        assert (len(won), len(refused)) == (1, 5), (
            f"trial {trial}: {[messages(result) for result in results]}"
        )
        after = Invoice.objects.get(pk=invoice.pk)
        line = Subscription.objects.get(pk=invoice.subscription_id)
        payments = Payment.objects.filter(invoice=invoice).count()
        credit_notes = Invoice.objects.filter(credits=invoice).count()
        state = (after.status, payments, credit_notes, line.extended_until)
        if isinstance(won[0], Payment):
            assert state == ("paid", 1, 0, date(2021, 12, 31)), f"trial {trial}: {state}"
        else:
            assert state == ("cancelled", 0, 1, None), f"trial {trial}: {state}"
        assert (after.total_yen, after.number) == (invoice.total_yen, invoice.number)

    problems = numbering_problems(first)
    assert not problems, problems
