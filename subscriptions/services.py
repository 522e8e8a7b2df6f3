"""Extensions (FAQ Q4): quotes, prepaid invoices, payments, credit notes, reminders.

The money rules are in ``subscriptions.pricing``; this module applies them.
"""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from subscriptions.models import (
    ExtensionOffer,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    Quote,
    RenewalReminder,
    Subscription,
)
from subscriptions.pricing import Period, consumption_tax, prorated_price
from support.mail import bilingual_from_templates, customer_recipients
from support.outbox import queue_email

# A quote holds for this many days; after that the customer asks for a new one (the
# offer's prices may have changed).
QUOTE_VALID_DAYS = 30


def no_offer_message(*, today: date | None = None) -> str:
    """What to say when no offer is open: which one closed last, and whom to call."""
    today = today or timezone.localdate()
    contact = {"phone": settings.SUPPORT_PHONE, "email": settings.SUPPORT_EMAIL}
    last = ExtensionOffer.objects.filter(closes_on__lt=today).order_by("-closes_on").first()
    if last is None:
        return (
            _(
                "No extension offer is open now. Please contact customer support: "
                "%(phone)s, %(email)s."
            )
            % contact
        )
    return _(
        "No extension offer is open now: the last one, extending service until %(until)s, "
        "closed on %(closed)s. Please contact customer support: %(phone)s, %(email)s."
    ) % {"until": last.extends_until.isoformat(), "closed": last.closes_on.isoformat(), **contact}


def open_offer(*, today: date) -> ExtensionOffer | None:
    """The open offer that extends furthest, if any."""
    return ExtensionOffer.objects.open_on(today).order_by("-extends_until", "pk").first()


def extension_period(*, subscription: Subscription, offer: ExtensionOffer, today: date) -> Period:
    """The period an offer would extend a line by; ValidationError if not eligible.

    Eligible: not cancelled, the offer open today, and the line's service (term or paid
    extension) ending before the offer's end. The period runs from the first day
    without service — or from the day the offer opened, if the line had lapsed before:
    nobody pays for months with no service and no offer — to the offer's last day.
    """
    if subscription.status == Subscription.Status.CANCELLED:
        raise ValidationError(_("A cancelled subscription cannot be extended."))
    if not offer.is_open_on(today):
        raise ValidationError(no_offer_message(today=today))
    first_day = max(subscription.service_end, offer.opens_on)
    if subscription.service_end > offer.extends_until:
        raise ValidationError(
            _("This subscription already runs beyond %(date)s: nothing to extend.")
            % {"date": offer.extends_until.isoformat()}
        )
    return Period(first_day, offer.extends_until)


def quote_extension(
    *, subscription: Subscription, by, now: datetime, offer: ExtensionOffer | None = None
) -> Quote:
    """Price an extension of ``subscription`` under the open offer (or ``offer``)."""
    today = timezone.localdate(now)
    offer = offer or open_offer(today=today)
    if offer is None:
        raise ValidationError(no_offer_message(today=today))
    period = extension_period(subscription=subscription, offer=offer, today=today)
    months, days = period.months_and_days
    service = prorated_price(offer.annual_price_yen, period)
    static_ip = (
        prorated_price(offer.static_ip_annual_price_yen, period) if subscription.static_ip else 0
    )
    tax = consumption_tax(service + static_ip, offer.tax_rate_percent)
    return Quote.objects.create(
        subscription=subscription,
        offer=offer,
        first_day=period.first_day,
        last_day=period.last_day,
        months=months,
        days=days,
        service_yen=service,
        static_ip_yen=static_ip,
        tax_rate_percent=offer.tax_rate_percent,
        tax_yen=tax,
        total_yen=service + static_ip + tax,
        created_at=now,
        created_by=by,
    )


def _next_invoice_number() -> int:
    # The row lock holds until the issuing transaction ends: numbers are taken one at a
    # time, and a rolled-back issue gives its number back, so there are no gaps.
    sequence = InvoiceSequence.objects.select_for_update().get(name="invoice")
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=F("next_number") + 1)
    return sequence.next_number


def _period_text(first_day: date, last_day: date, months: int, days: int) -> str:
    return _("%(first)s to %(last)s (%(months)s months %(days)s days)") % {
        "first": first_day.isoformat(),
        "last": last_day.isoformat(),
        "months": months,
        "days": days,
    }


@transaction.atomic
def accept_quote(*, quote: Quote, by, now: datetime) -> Invoice:
    """Issue the one prepaid invoice for a quote's whole period.

    The quote must still be valid today (same offer open, same period), and the line
    must not already have an unpaid invoice. Due the day before the extension starts,
    or at once when it has already started. The customer is e-mailed the invoice with
    how to pay, in the same transaction.
    """
    # NO KEY: a credit note being inserted for this line (a foreign-key check) need not wait.
    subscription = Subscription.objects.select_for_update(no_key=True).get(pk=quote.subscription_id)
    today = timezone.localdate(now)
    period = extension_period(subscription=subscription, offer=quote.offer, today=today)
    if (period.first_day, period.last_day) != (quote.first_day, quote.last_day):
        raise ValidationError(_("This quote is out of date; please ask for a new one."))
    if hasattr(quote, "invoice"):
        raise ValidationError(_("This quote has already been accepted."))
    if timezone.localdate(quote.created_at) + timedelta(days=QUOTE_VALID_DAYS) < today:
        raise ValidationError(_("This quote is out of date; please ask for a new one."))
    if subscription.invoices.filter(
        kind=Invoice.Kind.INVOICE, status=Invoice.Status.ISSUED
    ).exists():
        raise ValidationError(_("An invoice for this subscription is already waiting for payment."))
    invoice = Invoice.objects.create(
        number=_next_invoice_number(),
        status=Invoice.Status.ISSUED,
        customer_id=subscription.site.customer_id,
        subscription=subscription,
        quote=quote,
        extends_until=quote.last_day,
        issued_on=today,
        due_on=max(today, quote.first_day - timedelta(days=1)),
        issuer_name=settings.INVOICE_ISSUER_NAME,
        issuer_registration_number=settings.INVOICE_REGISTRATION_NUMBER,
        subtotal_yen=quote.subtotal_yen,
        tax_rate_percent=quote.tax_rate_percent,
        tax_yen=quote.tax_yen,
        total_yen=quote.total_yen,
        created_at=now,
        issued_by=by,
    )
    period_text = _period_text(quote.first_day, quote.last_day, quote.months, quote.days)
    lines = [
        InvoiceLine(
            invoice=invoice,
            description=_("BCP line service %(contract)s, %(period)s")
            % {"contract": subscription.contract_number, "period": period_text},
            amount_yen=quote.service_yen,
            tax_rate_percent=quote.tax_rate_percent,
        )
    ]
    if quote.static_ip_yen:
        lines.append(
            InvoiceLine(
                invoice=invoice,
                description=_("Static IP address, %(period)s") % {"period": period_text},
                amount_yen=quote.static_ip_yen,
                tax_rate_percent=quote.tax_rate_percent,
            )
        )
    InvoiceLine.objects.bulk_create(lines)
    _queue_invoice_issued(invoice=invoice, subscription=subscription)
    return invoice


def _invoice_url(invoice: Invoice) -> str:
    return f"{settings.PORTAL_BASE_URL}{invoice.get_absolute_url()}"


def _queue_invoice_issued(*, invoice: Invoice, subscription: Subscription) -> None:
    """Tell the customer what to pay, by when and where, with the invoice's own totals."""
    customer = subscription.site.customer
    subject, body = bilingual_from_templates(
        "subscriptions/email/invoice_issued",
        {
            "customer": customer,
            "invoice": invoice,
            "subscription": subscription,
            "total": f"{invoice.total_yen:,}",
            "bank_account": settings.INVOICE_BANK_ACCOUNT,
            "invoice_url": _invoice_url(invoice),
        },
    )
    queue_email(
        key=f"invoice-issued:{invoice.pk}",
        to=customer_recipients(customer),
        subject=subject,
        body=body,
    )


@transaction.atomic
def record_payment(
    *, invoice: Invoice, amount_yen: int, paid_on: date, reference: str, by, now: datetime
) -> Payment:
    """Record a bank transfer; the exact total pays the invoice and makes the extension
    effective (the line's service runs to the offer's end), all in one transaction, with
    the customer's e-mail saying both.

    Anything else is refused with a message: a different amount, an invoice already
    paid or cancelled, a credit note. Two recordings at once: the invoice's row lock lets
    one through; the other finds it paid.
    """
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.kind != Invoice.Kind.INVOICE:
        raise ValidationError(_("A credit note is not paid."))
    if locked.status == Invoice.Status.PAID:
        raise ValidationError(_("This invoice has already been paid."))
    if locked.status == Invoice.Status.CANCELLED:
        raise ValidationError(_("This invoice has been cancelled."))
    if amount_yen != locked.total_yen:
        raise ValidationError(
            {
                "amount_yen": _(
                    "The amount must be the invoice total, ¥%(total)s (received ¥%(amount)s)."
                )
                % {"total": f"{locked.total_yen:,}", "amount": f"{amount_yen:,}"}
            }
        )
    if not reference.strip():
        raise ValidationError({"reference": _("Enter the bank-transfer reference.")})
    if paid_on > timezone.localdate(now):
        raise ValidationError({"paid_on": _("A payment cannot be dated in the future.")})
    if locked.subscription.status == Subscription.Status.CANCELLED:
        raise ValidationError(
            _("The subscription has been cancelled: cancel the invoice and refund instead.")
        )
    payment = Payment.objects.create(
        invoice=locked,
        amount_yen=amount_yen,
        paid_on=paid_on,
        reference=reference.strip(),
        recorded_by=by,
        recorded_at=now,
    )
    Invoice.objects.filter(pk=locked.pk).update(status=Invoice.Status.PAID, paid_at=now)
    Subscription.objects.filter(pk=locked.subscription_id).update(
        extended_until=locked.extends_until
    )
    _queue_payment_recorded(payment=payment, invoice=locked)
    return payment


def _queue_payment_recorded(*, payment: Payment, invoice: Invoice) -> None:
    """One e-mail for both events: the exact payment settles the invoice and makes the
    extension active in the same transaction, so "received" and "now runs until" are one
    moment and one message."""
    subscription = Subscription.objects.select_related("site__customer").get(
        pk=invoice.subscription_id
    )
    customer = subscription.site.customer
    subject, body = bilingual_from_templates(
        "subscriptions/email/payment_recorded",
        {
            "customer": customer,
            "invoice": invoice,
            "payment": payment,
            "subscription": subscription,
            "amount": f"{payment.amount_yen:,}",
            "invoice_url": _invoice_url(invoice),
        },
    )
    queue_email(
        key=f"payment-recorded:{payment.pk}",
        to=customer_recipients(customer),
        subject=subject,
        body=body,
    )


@transaction.atomic
def cancel_invoice(*, invoice: Invoice, by, now: datetime) -> Invoice:
    """Cancel an unpaid invoice by issuing a credit note for its full amount."""
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if locked.kind != Invoice.Kind.INVOICE or locked.status != Invoice.Status.ISSUED:
        raise ValidationError(_("Only an invoice waiting for payment can be cancelled."))
    Invoice.objects.filter(pk=locked.pk).update(status=Invoice.Status.CANCELLED, cancelled_by=by)
    today = timezone.localdate(now)
    credit = Invoice.objects.create(
        number=_next_invoice_number(),
        kind=Invoice.Kind.CREDIT_NOTE,
        status=Invoice.Status.ISSUED,
        customer_id=locked.customer_id,
        subscription_id=locked.subscription_id,
        credits=locked,
        issued_on=today,
        due_on=today,
        issuer_name=settings.INVOICE_ISSUER_NAME,
        issuer_registration_number=settings.INVOICE_REGISTRATION_NUMBER,
        subtotal_yen=-locked.subtotal_yen,
        tax_rate_percent=locked.tax_rate_percent,
        tax_yen=-locked.tax_yen,
        total_yen=-locked.total_yen,
        created_at=now,
        issued_by=by,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=credit,
            description=_("Cancels %(number)s: %(line)s")
            % {"number": locked.display_number, "line": line.description},
            amount_yen=-line.amount_yen,
            tax_rate_percent=line.tax_rate_percent,
        )
        for line in locked.lines.all()
    )
    return credit


def send_renewal_reminders(*, now: datetime) -> int:
    """E-mail customers whose line's service ends within RENEWAL_REMINDER_DAYS, with the
    offer they can take (or the note that none is open): once per line and service end.

    The reminder row and its e-mail are queued in one transaction, so a line is never
    reminded twice for the same end; the outbox sends it and retries a failure.
    """

    today = timezone.localdate(now)
    horizon = today + timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    offer = open_offer(today=today)
    candidates = (
        Subscription.objects.in_service(today)
        .filter(Q(term_end__lte=horizon) | Q(extended_until__lt=horizon))
        .select_related("site__customer", "plan")
    )
    sent = 0
    for subscription in candidates:
        end = subscription.service_end
        if end > horizon:
            continue
        customer = subscription.site.customer
        recipients = customer_recipients(customer)
        context = {
            "subscription": subscription,
            "customer": customer,
            "last_day": end - timedelta(days=1),
            "offer": offer if offer and offer.extends_until >= end else None,
            "support_phone": settings.SUPPORT_PHONE,
            "support_email": settings.SUPPORT_EMAIL,
            "portal_url": f"{settings.PORTAL_BASE_URL}{subscription.get_absolute_url()}",
        }
        with transaction.atomic():
            reminder, created = RenewalReminder.objects.get_or_create(
                subscription=subscription,
                service_end=end,
                defaults={"sent_at": now, "offer": offer, "recipients": recipients},
            )
            if not created:
                continue
            subject, body = bilingual_from_templates("subscriptions/email/renewal", context)
            queue_email(key=f"renewal:{reminder.pk}", to=recipients, subject=subject, body=body)
        sent += 1
    return sent
