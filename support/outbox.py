"""The outbox: every e-mail the portal sends is a row here first, sent later by Celery.

Queueing (``queue_email``, ``queue_emails``) writes rows inside the caller's transaction
and asks for a sender after commit. A sender (``send_queued_emails``) claims a batch
under a lease (SKIP LOCKED: two senders never take the same row), composes the rows an
app composes at send time, sends the batch over one SMTP connection, and records each
row's outcome: sent, retried later with backoff (the server is down or busy), failed
for good (the server refused it: shown to staff with the error), or skipped (its
composer says nobody needs it any more). Nothing is sent inside a web request or a
database transaction.

Sending twice is avoided by recording each message as sent as soon as the server has
accepted it, one statement each: a sender killed between the server's accept and that
record repeats that one message after its lease ends. Every message carries a
Message-ID made from its row, so a repeat is recognisable as the same message.
"""

import contextlib
import logging
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from support.followups import enqueue_on_commit, keep_alive
from support.models import OutboundEmail

logger = logging.getLogger(__name__)

SUBJECT_MAX = 250
# A sender renews its batch's lease this often while it sends (below OUTBOX_LEASE_SECONDS).
LEASE_RENEWAL_SECONDS = 30


def _clock() -> float:
    """The sender's clock for lease renewals (a test moves it without moving time)."""
    return time.monotonic()


@dataclass(frozen=True)
class Composed:
    """An e-mail as its composer wrote it at send time."""

    to: list[str]
    subject: str
    body: str


# A composer turns a batch of its rows' refs into e-mails: {ref: Composed, or None when
# the e-mail is not needed any more}. Apps above support register theirs when Django
# starts (their AppConfig.ready), as they register admin pages: support imports none.
Composer = Callable[[list[int]], dict[int, Composed | None]]
_composers: dict[str, Composer] = {}


def register_composer(name: str, composer: Composer) -> None:
    _composers[name] = composer


def fold_header(value: str, limit: int = SUBJECT_MAX) -> str:
    """One line, no control characters: a subject typed with a line break is still sent."""
    folded = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())
    return folded[: limit - 1] + "…" if len(folded) > limit else folded


def clean_addresses(addresses: Iterable[str]) -> list[str]:
    """Lower-cased, de-duplicated addresses; anything that could break a header is dropped."""
    cleaned = set()
    for address in addresses:
        address = (address or "").strip().lower()
        if address and "@" in address and not any(c.isspace() or c in ",;<>" for c in address):
            cleaned.add(address)
    return sorted(cleaned)


def queue_email(
    *,
    key: str,
    to: Iterable[str],
    subject: str,
    body: str,
    headers: dict[str, str] | None = None,
    now: datetime | None = None,
) -> OutboundEmail | None:
    """Queue one ready e-mail; returns None when ``key`` was queued before. ``headers``
    are sent with it (In-Reply-To, References, Auto-Submitted…)."""
    message = dict(key=key, to=to, subject=subject, body=body, headers=headers or {})
    queued = queue_emails([message], now=now)
    return queued[0] if queued else None


def queue_emails(messages: list[dict], *, now: datetime | None = None) -> list[OutboundEmail]:
    """Queue ready e-mails (dicts of key, to, subject, body) in one statement.

    Keys already queued are skipped. A message with no recipient is recorded as skipped,
    so the history says why nothing went out. Sending starts after commit.
    """
    # Due from the clock's now: ``now`` (the event's time) may be another moment when a
    # service is replayed with an explicit time.
    due = timezone.now()
    now = now or due
    rows = []
    for message in messages:
        to = clean_addresses(message["to"])
        rows.append(
            OutboundEmail(
                key=message["key"],
                to=to,
                subject=fold_header(message["subject"]),
                body=message["body"],
                headers={
                    name: fold_header(value, limit=2000)
                    for name, value in message.get("headers", {}).items()
                },
                status=OutboundEmail.Status.QUEUED if to else OutboundEmail.Status.SKIPPED,
                created_at=now,
                send_after=due,
            )
        )
    created = OutboundEmail.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.key for row in created]
    # ignore_conflicts leaves pk unset: read back the rows, marking those already there.
    fresh = OutboundEmail.objects.filter(key__in=keys, created_at=now)
    request_sending()
    return list(fresh.order_by("pk"))


def request_sending(senders: int = 1) -> None:
    """After commit, ask ``senders`` workers to send what is queued.

    A broker that cannot take the message only delays the e-mail: the rows are in the
    database and the beat sweeper sends them within a minute.
    """
    from support import tasks

    for _ in range(senders):
        enqueue_on_commit(tasks.send_queued_emails)


def message_id(email: OutboundEmail) -> str:
    """The same Message-ID every time a row is sent: a rare repeat is the same message."""
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">") or "bcp-portal"
    digest = sha256(email.key.encode()).hexdigest()[:16]
    return f"<outbox.{email.pk}.{digest}@{domain}>"


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def _claim(*, now: datetime, batch_size: int) -> list[int]:
    with transaction.atomic():
        ids = list(
            OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED, send_after__lte=now)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
            OutboundEmail.objects.filter(pk__in=ids).update(lease_until=now + lease)
    return ids


def _compose(rows: list[OutboundEmail]) -> list[OutboundEmail]:
    """Fill in the rows whose app composes them now; returns them (to be saved)."""
    by_composer: dict[str, list[OutboundEmail]] = {}
    for row in rows:
        if row.composer:
            by_composer.setdefault(row.composer, []).append(row)
    for name, group in by_composer.items():
        composer = _composers.get(name)
        if composer is None:
            for row in group:
                row.status, row.last_error = OutboundEmail.Status.FAILED, f"no composer {name}"
            continue
        composed = composer([row.composer_ref for row in group])
        for row in group:
            message = composed.get(row.composer_ref)
            if message is None:
                row.status = OutboundEmail.Status.SKIPPED
                continue
            row.to = clean_addresses(message.to)
            row.subject = fold_header(message.subject)
            row.body = message.body
            if not row.to:
                row.status = OutboundEmail.Status.SKIPPED
    return [row for by_name in by_composer.values() for row in by_name]


def _permanent(error: Exception) -> bool:
    """The server refused this message itself (5xx): trying again would not help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return True
    code = getattr(error, "smtp_code", None)
    return isinstance(code, int) and 500 <= code < 600


def _backoff(attempts: int) -> timedelta:
    base = settings.OUTBOX_RETRY_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def _send_batch(rows: list[OutboundEmail], report: SendReport) -> None:
    """Send the batch's queued rows over one connection; note each row's outcome on it."""
    ready = [row for row in rows if row.status == OutboundEmail.Status.QUEUED]
    if not ready:
        return
    connection = get_connection(fail_silently=False)
    error: Exception | None = None
    try:
        connection.open()
        renewed = _clock()
        for index, row in enumerate(ready):
            if _clock() - renewed > LEASE_RENEWAL_SECONDS:
                # A slow server: the batch's rest stays this sender's. A sender that dies
                # leaves it for at most one lease, not for the time a whole batch takes.
                _renew_lease(ready[index:])
                renewed = _clock()
            message = EmailMessage(
                row.subject,
                row.body,
                to=row.to,
                headers={**row.headers, "Message-ID": message_id(row)},
            )
            try:
                connection.send_messages([message])
            except (OSError, smtplib.SMTPException) as refused:
                if _permanent(refused):
                    row.status, row.last_error = OutboundEmail.Status.FAILED, str(refused)
                    continue
                error = refused  # the server is down or busy: the rest waits too
                for waiting in ready[index:]:
                    waiting.last_error = f"{type(refused).__name__}: {refused}"[:2000]
                break
            row.status = OutboundEmail.Status.SENT
            # Recorded at once, in its own statement: a sender killed now repeats at most
            # this one message (with the same Message-ID), not its whole batch.
            OutboundEmail.objects.filter(pk=row.pk, status=OutboundEmail.Status.QUEUED).update(
                status=OutboundEmail.Status.SENT,
                sent_at=timezone.now(),
                lease_until=None,
                attempts=F("attempts") + 1,
                last_error="",
            )
    except (OSError, smtplib.SMTPException) as refused:  # could not connect at all
        error = refused
        for row in ready:
            row.last_error = f"{type(refused).__name__}: {refused}"[:2000]
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.close()
    if error is not None:
        report.errors.append(f"{type(error).__name__}: {error}")


def _renew_lease(rows: list[OutboundEmail]) -> None:
    lease_until = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    OutboundEmail.objects.filter(
        pk__in=[row.pk for row in rows], status=OutboundEmail.Status.QUEUED
    ).update(lease_until=lease_until)


def _save_composed(rows: list[OutboundEmail], composed: list[OutboundEmail]) -> None:
    """Before sending: what each composed e-mail says (the history), and those skipped."""
    with transaction.atomic():
        if composed:
            # Rows differ, one statement for the batch.
            OutboundEmail.objects.bulk_update(composed, ["to", "subject", "body"])
        skipped = [row.pk for row in rows if row.status == OutboundEmail.Status.SKIPPED]
        OutboundEmail.objects.filter(pk__in=skipped).update(
            status=OutboundEmail.Status.SKIPPED, lease_until=None
        )


def _record(rows: list[OutboundEmail], report: SendReport) -> None:
    """After sending: the rows that failed or wait for another attempt (sent ones were
    recorded one by one as the server accepted them)."""
    now = timezone.now()
    failed = [row for row in rows if row.status == OutboundEmail.Status.FAILED]
    retry = [row for row in rows if row.status == OutboundEmail.Status.QUEUED]
    for row in retry:
        row.attempts += 1
        row.lease_until = None
        row.send_after = now + _backoff(row.attempts)
        if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            row.status = OutboundEmail.Status.FAILED
            failed.append(row)
    for row in failed:
        row.lease_until = None
        logger.error("e-mail %s (%s) failed: %s", row.pk, row.key, row.last_error)
    # Rare rows, each with its own error and next attempt.
    OutboundEmail.objects.bulk_update(
        failed + retry, ["status", "attempts", "lease_until", "send_after", "last_error"]
    )
    report.sent += sum(row.status == OutboundEmail.Status.SENT for row in rows)
    report.skipped += sum(row.status == OutboundEmail.Status.SKIPPED for row in rows)
    report.failed += len(failed)
    report.retried += len([row for row in retry if row.status == OutboundEmail.Status.QUEUED])


def send_queued_emails(
    *, batch_size: int | None = None, time_budget: float | None = None
) -> SendReport:
    """Send what is due, batch after batch, until nothing is due, the mail server fails,
    or ``time_budget`` seconds have passed (the task then asks for another run)."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    report = SendReport()
    started = time.monotonic()
    with _commits_without_waiting_for_disk():
        while ids := _claim(now=timezone.now(), batch_size=batch_size):
            keep_alive()
            rows = list(OutboundEmail.objects.filter(pk__in=ids).order_by("pk"))
            composed = _compose(rows)
            _save_composed(rows, composed)
            _send_batch(rows, report)
            _record(rows, report)
            report.batches += 1
            if report.errors:
                break  # the server is failing: leave the rest to the backoff
            if time_budget is not None and time.monotonic() - started > time_budget:
                break
    return report


@contextlib.contextmanager
def _commits_without_waiting_for_disk():
    """PostgreSQL's ``synchronous_commit = off`` for the sender's own connection.

    Each accepted message is recorded in its own commit; waiting for the disk on each
    one cost a fifth of the sending rate (bench/notifications.py). Without the wait a
    killed *worker* still loses nothing (its commits are in PostgreSQL's memory and log
    buffer); only a crash of PostgreSQL itself may forget the last fraction of a second
    of records, and those messages are sent again, with the same Message-ID.
    """
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        if postgresql:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")


def has_due_emails(*, now: datetime) -> bool:
    """Whether a sender would find work now: rows held by another sender (or by a dead
    one, until its lease ends) do not count, so a run does not call the next in a loop."""
    return (
        OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED, send_after__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .exists()
    )


def next_lease_end(*, now: datetime) -> datetime | None:
    """When the first row another sender holds comes free (None: no row is held)."""
    return OutboundEmail.objects.filter(
        status=OutboundEmail.Status.QUEUED, lease_until__gte=now
    ).aggregate(first=Min("lease_until"))["first"]


def retry_now(*, emails) -> int:
    """Staff ask for failed e-mails to be tried again now (after fixing an address…)."""
    moved = emails.filter(status=OutboundEmail.Status.FAILED).update(
        status=OutboundEmail.Status.QUEUED,
        send_after=timezone.now(),
        lease_until=None,
        attempts=0,
    )
    if moved:
        request_sending()
    return moved
