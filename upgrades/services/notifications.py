"""E-mails to customers about their grants and requests: Japanese, English below.

Notices are rows (queued by the transitions); this sender takes a batch under a lease,
sends it over one SMTP connection, and marks it sent. Two senders at once take different
rows (SKIP LOCKED), so each notice goes out once. A sender that dies between the mail
server's accept and the commit may leave a notice to be sent again when its lease ends:
we prefer a rare repeat to a lost deadline warning.
"""

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import DateTimeField, Q, Value
from django.urls import reverse

from support.mail import bilingual_from_templates
from upgrades.bulk import insert_from_select
from upgrades.models import Notification, SpeedGrant

RESPONSE_SALT = "upgrades.grant-response"
LEASE = timedelta(minutes=5)


def grant_response_token(grant_id: int, keep: bool) -> str:
    return signing.dumps({"g": grant_id, "keep": keep}, salt=RESPONSE_SALT, compress=True)


def read_grant_response_token(token: str, *, max_age: timedelta) -> tuple[int, bool]:
    """Raises signing.BadSignature (or SignatureExpired) for a forged or old link."""
    data = signing.loads(token, salt=RESPONSE_SALT, max_age=max_age)
    return int(data["g"]), bool(data["keep"])


def response_url(grant_id: int, keep: bool) -> str:
    path = reverse("upgrades:respond-by-link", args=[grant_response_token(grant_id, keep)])
    return f"{settings.PORTAL_BASE_URL}{path}"


def queue_deadline_reminders(*, now: datetime) -> int:
    """Queue one reminder per pending grant whose deadline is near. Set-based, idempotent."""
    soon = now + timedelta(hours=settings.BLANKET_REMINDER_HOURS)
    return insert_from_select(
        Notification,
        ["kind", "grant", "created_at"],
        SpeedGrant.objects.filter(
            state=SpeedGrant.State.PENDING,
            blanket_upgrade__deadline__gt=now,
            blanket_upgrade__deadline__lte=soon,
        )
        .order_by()
        .values_list(
            Value(Notification.Kind.DEADLINE_REMINDER),
            "pk",
            Value(now, output_field=DateTimeField()),
        ),
    )


def _claim(*, now: datetime, batch_size: int) -> list[int]:
    # ``now`` moves with the run (see send_notifications): a lease taken late in a long
    # run lasts as long as one taken at its start.
    with transaction.atomic():
        ids = list(
            Notification.objects.filter(sent_at__isnull=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        Notification.objects.filter(pk__in=ids).update(lease_until=now + LEASE)
    return ids


def _recipients(customer, users_by_customer: dict[int, list[str]]) -> list[str]:
    addresses = list(users_by_customer.get(customer.pk, []))
    if customer.email and customer.email.lower() not in addresses:
        addresses.append(customer.email.lower())
    return addresses


def _render(notification: Notification) -> tuple[str, str]:
    grant = notification.grant
    context = {
        "notification": notification,
        "grant": grant,
        "upgrade_request": notification.upgrade_request,
        "portal_url": settings.PORTAL_BASE_URL + "/",
        "support_phone": settings.SUPPORT_PHONE,
        "support_email": settings.SUPPORT_EMAIL,
    }
    if grant is not None and grant.blanket_upgrade_id:
        context["disaster"] = grant.blanket_upgrade.disaster
        context["deadline"] = grant.blanket_upgrade.deadline
        context["keep_url"] = response_url(grant.pk, keep=True)
        context["decline_url"] = response_url(grant.pk, keep=False)
    return bilingual_from_templates(f"upgrades/email/{notification.kind}", context)


def send_notifications(*, now: datetime, batch_size: int | None = None) -> int:
    """Send queued notices in batches; returns how many went out."""
    User = get_user_model()
    batch_size = batch_size or settings.NOTIFICATION_BATCH_SIZE
    sent = 0
    started = time.monotonic()
    while ids := _claim(
        now=now + timedelta(seconds=time.monotonic() - started), batch_size=batch_size
    ):
        notifications = list(
            Notification.objects.filter(pk__in=ids).select_related(
                "grant__subscription__site__customer",
                "grant__subscription__plan",
                "grant__blanket_upgrade__disaster",
                "upgrade_request__customer",
            )
        )
        customers = {
            (n.grant.subscription.site.customer if n.grant else n.upgrade_request.customer)
            for n in notifications
        }
        users_by_customer: dict[int, list[str]] = {}
        for customer_id, email in User.objects.filter(
            customer__in=customers, is_active=True
        ).values_list("customer_id", "email"):
            users_by_customer.setdefault(customer_id, []).append(email.lower())
        messages, delivered = [], []
        for notification in notifications:
            customer = (
                notification.grant.subscription.site.customer
                if notification.grant
                else notification.upgrade_request.customer
            )
            recipients = _recipients(customer, users_by_customer)
            notification.recipients = recipients
            if recipients:
                subject, body = _render(notification)
                messages.append(EmailMessage(subject, body, to=recipients))
            delivered.append(notification)
        get_connection().send_messages(messages)
        with transaction.atomic():
            for notification in delivered:
                notification.sent_at = now
                notification.lease_until = None
                notification.attempts += 1
            # One statement for the batch (its recipients differ row by row); the
            # declare and revert paths never come here.
            Notification.objects.bulk_update(
                delivered, ["sent_at", "lease_until", "attempts", "recipients"]
            )
        sent += len(messages)
    return sent
