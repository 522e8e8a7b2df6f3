"""Mass messages: an operator's own words to every customer of an area, or to everyone.

The operator previews the audience (``preview_audience``), then sends
(``send_mass_message``): that records the message with its counts and, after commit,
asks a worker to queue the deliveries (``queue_mass_message_deliveries``). Queueing
walks the audience by customer id in chunks, a constant number of statements per chunk,
and keeps its place on the message, so a national audience (100,000 organisations) is
queued by a worker while the operator watches the progress, and a worker that dies
resumes where the last chunk committed.

Each organisation gets its message once: the chunk is queued under a lock on the
message row, its delivery rows are unique per (message, customer), and its outbox row's
key is ``mass-message:<id>:customer:<customer id>``.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.models import Disaster, MassMessage, MassMessageDelivery
from subscriptions.models import Customer, Subscription
from subscriptions.prefectures import Prefecture
from support.followups import enqueue_on_commit, keep_alive
from support.mail import recipients_by_customer
from support.models import OutboundEmail
from support.outbox import fold_header, queue_emails
from support.webhooks import post_json

CHUNK_SIZE = 1000


@dataclass(frozen=True)
class Scope:
    """Who a message is for: every site, or sites in these prefectures."""

    nationwide: bool
    prefectures: tuple[str, ...] = ()


@dataclass(frozen=True)
class AudienceCount:
    organisations: int
    addresses: int


def resolve_scope(
    *, audience: str, disaster: Disaster | None = None, prefectures: list[str] | None = None
) -> Scope:
    """The sites an audience means; refuses an audience without its disaster or prefectures."""
    if audience == MassMessage.Audience.EVERYONE:
        return Scope(nationwide=True)
    if audience == MassMessage.Audience.DISASTER:
        if disaster is None or not disaster.is_active:
            raise ValidationError(_("Choose an active disaster."), code="no_disaster")
        if disaster.nationwide:
            return Scope(nationwide=True)
        return Scope(nationwide=False, prefectures=tuple(sorted(disaster.prefectures)))
    if audience == MassMessage.Audience.PREFECTURES:
        codes = sorted(set(prefectures or []))
        if not codes or any(code not in Prefecture.values for code in codes):
            raise ValidationError(_("Choose at least one prefecture."), code="no_prefectures")
        return Scope(nationwide=False, prefectures=tuple(codes))
    raise ValidationError(_("Choose who the message is for."), code="no_audience")


def audience_customers(*, scope: Scope, day: date, after: int = 0) -> QuerySet[Customer]:
    """Organisations with at least one line in service on ``day`` at a site in scope,
    with an id above ``after``.

    An EXISTS per customer, walked in customer-id order: a chunk reads the customers it
    returns and their sites' lines (indexes on site.customer and subscription.site), not
    every line in scope again, so the work of a whole send grows with the audience, not
    with its square.
    """
    lines = Subscription.objects.in_service(day).filter(site__customer_id=OuterRef("pk"))
    if not scope.nationwide:
        lines = lines.filter(site__prefecture__in=scope.prefectures)
    return Customer.objects.filter(pk__gt=after).filter(Exists(lines))


def _addresses_of(customer_ids) -> QuerySet:
    """(customer id, address) pairs, de-duplicated: the active users' and the contact's."""
    users = (
        get_user_model()
        .objects.filter(customer_id__in=customer_ids, is_active=True)
        .exclude(email="")
        .annotate(address=Lower("email"))
        .values_list("customer_id", "address")
        .order_by()
    )
    contacts = (
        Customer.objects.filter(pk__in=customer_ids)
        .exclude(email="")
        .annotate(address=Lower("email"))
        .values_list("pk", "address")
        .order_by()
    )
    return users.union(contacts)


def preview_audience(*, scope: Scope, day: date) -> AudienceCount:
    """How many organisations and e-mail addresses a message would reach: two counts,
    whatever the size of the audience."""
    customers = audience_customers(scope=scope, day=day)
    return AudienceCount(
        organisations=customers.count(),
        addresses=_addresses_of(customers.values("pk")).count(),
    )


def compose(message: MassMessage) -> tuple[str, str]:
    """Subject and body: the Japanese text, then the English one when the operator wrote it
    (the shape of every other bilingual e-mail), from a template."""
    subject = message.subject_ja.strip()
    if message.subject_en.strip():
        subject = f"{subject} / {message.subject_en.strip()}"
    body = render_to_string(
        "incidents/email/mass_message.txt",
        {
            "message": message,
            "portal_url": settings.PORTAL_BASE_URL + "/",
            "support_phone": settings.SUPPORT_PHONE,
        },
    )
    return fold_header(subject), body.strip() + "\n"


def send_mass_message(
    *,
    operator,
    subject_ja: str,
    body_ja: str,
    subject_en: str = "",
    body_en: str = "",
    audience: str,
    disaster: Disaster | None = None,
    prefectures: list[str] | None = None,
    idempotency_key: str,
    now: datetime,
) -> MassMessage:
    """Record the message with the audience's counts and queue it for every organisation.

    A token used before returns the message it sent (its ``created_at`` is not ``now``):
    a double submit sends once. The deliveries are queued by a worker after commit.
    """
    existing = MassMessage.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if not existing.is_queued:  # a replay asks again for the queueing still due
            _queue_after_commit(existing.pk)
        return existing
    if not subject_ja.strip() or not body_ja.strip():
        raise ValidationError(_("The Japanese subject and message are required."))
    scope = resolve_scope(audience=audience, disaster=disaster, prefectures=prefectures)
    day = timezone.localdate(now)
    counts = preview_audience(scope=scope, day=day)
    try:
        with transaction.atomic():
            message = MassMessage.objects.create(
                subject_ja=subject_ja.strip(),
                body_ja=body_ja.strip(),
                subject_en=subject_en.strip(),
                body_en=body_en.strip(),
                audience=audience,
                disaster=disaster if audience == MassMessage.Audience.DISASTER else None,
                nationwide=scope.nationwide,
                prefectures=list(scope.prefectures),
                service_day=day,
                created_by=operator,
                created_at=now,
                organisations=counts.organisations,
                addresses=counts.addresses,
                idempotency_key=idempotency_key,
            )
            _queue_after_commit(message.pk)
    except IntegrityError:
        # The same token confirmed twice at once: the other request made it.
        return MassMessage.objects.get(idempotency_key=idempotency_key)
    return message


def _queue_after_commit(message_id: int) -> None:
    from incidents import tasks

    # A follow-up row of this commit: a broker that is down only delays it.
    enqueue_on_commit(tasks.queue_mass_message, message_id)


def queue_mass_message_deliveries(
    *, message_id: int, now: datetime, chunk_size: int = CHUNK_SIZE, max_chunks: int | None = None
) -> int:
    """Queue the message for the organisations not queued yet; returns how many it queued.

    Each chunk is one transaction under a lock on the message row: a second worker waits
    and continues after the first one's chunk, a dead worker's chunk is rolled back and
    done again. Statements per chunk: lock, customers, users, outbox insert and read-back,
    deliveries, progress.
    """
    queued = 0
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        keep_alive()
        chunks += 1
        with transaction.atomic():
            message = MassMessage.objects.select_for_update().filter(pk=message_id).first()
            if message is None or message.queued_at is not None:
                break
            customers = list(
                audience_customers(
                    scope=_scope_of(message),
                    day=message.service_day,
                    after=message.last_customer_id,
                )
                .filter(pk__gt=message.last_customer_id)
                .order_by("pk")
                .values_list("pk", "email")[:chunk_size]
            )
            if not customers:
                MassMessage.objects.filter(pk=message.pk).update(queued_at=now)
                _post_webhook_after_commit(message)
                break
            _queue_chunk(message, customers, now=now)
            queued += len(customers)
            MassMessage.objects.filter(pk=message.pk).update(
                last_customer_id=customers[-1][0],
                queued_organisations=message.queued_organisations + len(customers),
            )
    return queued


def _scope_of(message: MassMessage) -> Scope:
    return Scope(nationwide=message.nationwide, prefectures=tuple(message.prefectures))


def _key(message_id: int, customer_id: int) -> str:
    return f"mass-message:{message_id}:customer:{customer_id}"


def _queue_chunk(message: MassMessage, customers: list[tuple[int, str]], *, now: datetime) -> None:
    ids = [pk for pk, _email in customers]
    recipients = recipients_by_customer(customers)
    subject, body = compose(message)
    queue_emails(
        [
            dict(key=_key(message.pk, pk), to=recipients[pk], subject=subject, body=body)
            for pk in ids
        ],
        now=now,
    )
    emails = dict(
        OutboundEmail.objects.filter(key__in=[_key(message.pk, pk) for pk in ids]).values_list(
            "key", "pk"
        )
    )
    MassMessageDelivery.objects.bulk_create(
        [
            MassMessageDelivery(
                message_id=message.pk,
                customer_id=pk,
                email_id=emails.get(_key(message.pk, pk)),
                queued_at=now,
            )
            for pk in ids
        ],
        ignore_conflicts=True,
    )


def messages_to_resume(*, now: datetime) -> list[int]:
    """Messages whose queueing has not finished a while after they were sent: a lost task
    message or a dead worker. Queueing again is harmless."""
    return list(
        MassMessage.objects.filter(
            queued_at__isnull=True, created_at__lte=now - timedelta(minutes=5)
        ).values_list("pk", flat=True)
    )


def _post_webhook_after_commit(message: MassMessage) -> None:
    if not settings.MASS_MESSAGE_WEBHOOK_URL:
        return
    from incidents import tasks

    enqueue_on_commit(tasks.post_mass_message_webhook, message.pk)


def post_mass_message_webhook(*, message_id: int) -> bool:
    """Post the message to the SMS / chat gateway once it is posted: a finished post is
    never repeated. A post cut off half way ("posting": the worker died) is posted again
    by the follow-up's next run, which only one worker holds at a time; the gateway may
    then see it twice, which is better than never."""
    if not settings.MASS_MESSAGE_WEBHOOK_URL:
        return False
    if not MassMessage.objects.filter(pk=message_id, webhook_status__in=["", "posting"]).update(
        webhook_status="posting"
    ):
        return False
    message = MassMessage.objects.get(pk=message_id)
    subject, body = compose(message)
    payload = {
        "id": message.pk,
        "subject": subject,
        "text": body,
        "audience": message.audience,
        "nationwide": message.nationwide,
        "prefectures": message.prefectures,
        "organisations": message.organisations,
    }
    code, error = post_json(settings.MASS_MESSAGE_WEBHOOK_URL, payload)
    status = f"posted ({code})" if code else f"failed: {error}"[:50]
    MassMessage.objects.filter(pk=message_id).update(webhook_status=status)
    return status.startswith("posted")
