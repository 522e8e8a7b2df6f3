"""The support mailbox (FAQ Q2: customers write to support@…): beat fetches it over IMAP
and each new e-mail becomes an inquiry, or a follow-up of the inquiry it answers.

Each message is processed exactly once:

1. It is recorded first, an ``InboundEmail`` row with its raw bytes, unique by
   Message-ID: two fetches at once insert one row.
2. It is processed in one transaction that takes the row with
   ``SELECT … FOR UPDATE SKIP LOCKED`` while it is still *received*, and ends with it
   *processed*: the inquiry, its attachments, the acknowledgement and the on-call alert
   commit together or not at all. A second fetch skips a row being processed; a worker
   killed half-way loses its transaction (PostgreSQL rolls it back when the connection
   drops), so the row is still *received* and the next run takes it — no lease to wait
   for, because nothing is left half done.
3. After the commit, it is moved to the processed folder by the one fetch that claims
   the move (``move_claimed_at``, taken for the batch under ``SKIP LOCKED``): a second
   fetch that saw the same message done leaves it to the first. A fetch that dies before the move
   leaves the message in the mailbox; a fetch after MOVE_LEASE finds its row done and
   only moves it.

A message that cannot be read is kept: its row (raw bytes, the error) is *failed* and
listed in the admin, and it is moved out of the way too, so it is not fetched every
minute. No network I/O happens inside a database transaction.
"""

import hashlib
import logging
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html import unescape

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from imap_tools import MailBox, MailBoxStartTls
from imap_tools.errors import MailboxCopyError, MailboxMoveError

from desk.models import InboundEmail, Inquiry, InquiryAttachment, InquiryMessage
from desk.services import email_follow_up, open_inquiry
from incidents.services import PHOTO_EXTENSIONS, check_photo
from subscriptions.models import Customer
from support.channels import Channel
from support.mail import bilingual_from_templates
from support.models import OutboundEmail
from support.outbox import message_id as outbox_message_id
from support.outbox import queue_email

logger = logging.getLogger(__name__)

REFERENCE = re.compile(r"\[#INQ-(\d+)\]", re.IGNORECASE)
# support.outbox.message_id: <outbox.{pk}.{digest}@{domain}>
OUR_MESSAGE_ID = re.compile(r"<outbox\.(\d+)\.[0-9a-f]+@[^>\s]+>")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Senders that are machines: answering them would start a mail loop.
MACHINE_SENDERS = {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply"}
PDF = "application/pdf"
SUBJECT_MAX = 200


def canonical_email(address: str) -> str:
    # The one form of an address that accounts compare (portal.accounts' canonical_email,
    # reached through the user model: desk sits below portal).
    return get_user_model().normalize_username(address)


class UnreadableEmail(Exception):
    """The message cannot be turned into an inquiry; its row keeps it for staff."""


@dataclass
class Attachment:
    filename: str
    data: bytes


@dataclass
class ParsedEmail:
    message_id: str
    sender: str
    subject: str
    body: str
    references: list[str] = field(default_factory=list)  # In-Reply-To first
    attachments: list[Attachment] = field(default_factory=list)
    automated: bool = False


@dataclass
class FetchReport:
    processed: int = 0
    failed: int = 0
    moved: int = 0
    skipped: int = 0


# --- reading a message -----------------------------------------------------------------


def message_id_of(raw: bytes) -> str:
    """The message's Message-ID, or one made from its bytes when it has none (the same
    bytes fetched again are the same message)."""
    headers = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    found = MESSAGE_ID.search(str(headers.get("Message-ID", "")))
    if found:
        return found.group(0)[:500]
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@missing-message-id>"


def _own_addresses() -> set[str]:
    addresses = {
        settings.SUPPORT_EMAIL,
        settings.DEFAULT_FROM_EMAIL,
        settings.SERVER_EMAIL,
        settings.SUPPORT_MAILBOX_USER,
    }
    return {canonical_email(parseaddr(a)[1]) for a in addresses if a and "@" in a}


def _automated(message: EmailMessage, sender: str) -> bool:
    """An auto-reply, a bounce or bulk mail (RFC 3834 and the usual headers): never
    acknowledged, so that two robots never answer each other for ever."""
    auto_submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if str(message.get("Precedence", "")).strip().lower() in {"bulk", "junk", "list"}:
        return True
    if any(message.get(h) for h in ("List-Id", "List-Unsubscribe", "X-Autoreply")):
        return True
    if message.get_content_type() == "multipart/report":  # a delivery report (bounce)
        return True
    local = sender.split("@", 1)[0]
    return local in MACHINE_SENDERS or local.startswith("owner-") or sender in _own_addresses()


def _text(message: EmailMessage) -> str:
    """The plain text, or the HTML's text when there is no plain part."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part.get_content()
    if part.get_content_subtype() == "html":
        text = re.sub(r"(?is)<(script|style).*?</\1>", "", text)
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text)
        text = unescape(strip_tags(text))
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_email(raw: bytes) -> ParsedEmail:
    """Decode a message: encoded-word subjects, ISO-2022-JP / UTF-8 bodies, multipart
    (text/plain preferred, else the HTML's text) and its attachments."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        sender = canonical_email(parseaddr(str(message.get("From", "")))[1])
        subject = " ".join(str(message.get("Subject", "")).split())
        body = _text(message)
        references = [
            found
            for header in ("In-Reply-To", "References")
            for found in MESSAGE_ID.findall(str(message.get(header, "")))
        ]
        attachments = [
            Attachment(
                filename=" ".join((part.get_filename() or "").split())[:200],
                data=part.get_payload(decode=True) or b"",
            )
            for part in message.iter_attachments()
            if not part.is_multipart()
        ]
    except Exception as error:  # the email package raises many kinds on broken input
        raise UnreadableEmail(f"{type(error).__name__}: {error}") from error
    if "@" not in sender:
        raise UnreadableEmail(_("The e-mail has no sender address."))
    return ParsedEmail(
        message_id=message_id_of(raw),
        sender=sender,
        subject=subject[:SUBJECT_MAX] or _("(no subject)"),
        body=body or _("(no text)"),
        references=references,
        attachments=attachments,
        automated=_automated(message, sender),
    )


# --- who wrote, about what -------------------------------------------------------------


def match_sender(address: str):
    """(customer, user) for a sender: a customer's active user with that address, else
    the one customer whose contact e-mail it is; (None, None) for an unknown sender."""
    user = (
        get_user_model()
        .objects.alias(email_lower=Lower("email"))
        .filter(email_lower=address, is_active=True, customer__isnull=False)
        .select_related("customer")
        .first()
    )
    if user is not None:
        return user.customer, user
    customers = list(
        Customer.objects.alias(email_lower=Lower("email")).filter(email_lower=address)[:2]
    )
    return (customers[0], None) if len(customers) == 1 else (None, None)


def _inquiry_answered(parsed: ParsedEmail, customer) -> Inquiry | None:
    """The inquiry this e-mail answers. A reply to an e-mail of ours (its In-Reply-To or
    References hold our Message-ID) belongs to that e-mail's inquiry whoever sends it:
    they received it. The reference in the subject is trusted only from the inquiry's
    own customer (or its sender, while unknown): anyone can type a number."""
    for reference in parsed.references:
        ours = OUR_MESSAGE_ID.fullmatch(reference)
        if ours:
            email = OutboundEmail.objects.filter(pk=int(ours.group(1))).first()
            if email is not None and outbox_message_id(email) == reference:
                inquiry = (
                    Inquiry.objects.filter(messages__email=email).first()
                    or Inquiry.objects.filter(emails__acknowledgement=email).first()
                )
                if inquiry is not None:
                    return inquiry
        earlier = InboundEmail.objects.filter(message_id=reference, inquiry__isnull=False)
        inquiry = Inquiry.objects.filter(emails__in=earlier).first()
        if inquiry is not None and _senders_inquiry(inquiry, parsed, customer):
            return inquiry
    numbered = REFERENCE.search(parsed.subject)
    if numbered:
        inquiry = Inquiry.objects.filter(pk=int(numbered.group(1))).first()
        if inquiry is not None and _senders_inquiry(inquiry, parsed, customer):
            return inquiry
    return None


def _senders_inquiry(inquiry: Inquiry, parsed: ParsedEmail, customer) -> bool:
    if inquiry.customer_id is not None:
        return customer is not None and customer.pk == inquiry.customer_id
    return canonical_email(inquiry.sender_email) == parsed.sender


# --- attachments -----------------------------------------------------------------------


def _check_attachment(attachment: Attachment) -> str:
    """The attachment's type by its content: a PDF by its magic bytes, an image by the
    damage-photo rules (JPEG or PNG, size and pixel limits); else ValidationError."""
    name = attachment.filename or _("attachment")
    if len(attachment.data) > settings.SUPPORT_MAILBOX_ATTACHMENT_MAX_BYTES:
        raise ValidationError(
            _("%(name)s is too large: at most %(mb)s MB per file.")
            % {"name": name, "mb": settings.SUPPORT_MAILBOX_ATTACHMENT_MAX_BYTES // 2**20}
        )
    if attachment.data.startswith(b"%PDF-"):
        return PDF
    try:
        return check_photo(ContentFile(attachment.data, name=name))
    except ValidationError:
        raise ValidationError(
            _("%(name)s is not a JPEG or PNG photo or a PDF.") % {"name": name}
        ) from None


def _store_attachments(message: InquiryMessage, attachments: list[Attachment]) -> list[str]:
    """Store the acceptable attachments privately; returns why the others were refused."""
    refused = []
    for attachment in attachments:
        try:
            content_type = _check_attachment(attachment)
        except ValidationError as error:
            refused.extend(error.messages)
            continue
        extension = "pdf" if content_type == PDF else PHOTO_EXTENSIONS[content_type]
        stored = InquiryAttachment(
            inquiry_id=message.inquiry_id,
            message=message,
            filename=attachment.filename,
            content_type=content_type,
            size=len(attachment.data),
        )
        # Stored under a name of ours with the detected type's extension, never the
        # sender's (an HTML file named photo.jpg stays unserved).
        stored.file.save(
            f"inquiry-{message.inquiry_id}.{extension}",
            ContentFile(attachment.data),
            save=False,
        )
        stored.save()
    return refused


# --- processing ------------------------------------------------------------------------


def _acknowledge(inbound: InboundEmail, inquiry: Inquiry, parsed: ParsedEmail) -> OutboundEmail:
    subject, body = bilingual_from_templates(
        "desk/email/inquiry_received",
        {"inquiry": inquiry, "phone": settings.SUPPORT_PHONE},
    )
    return queue_email(
        key=f"inquiry-ack:{inbound.pk}",
        to=[parsed.sender],
        subject=f"{inquiry.reference} {subject}",
        body=body,
        headers={
            # RFC 3834: an automatic answer, which other robots must not answer.
            "Auto-Submitted": "auto-replied",
            "Reply-To": settings.SUPPORT_EMAIL,
            "In-Reply-To": parsed.message_id,
            "References": parsed.message_id,
        },
    )


def _process(inbound: InboundEmail, parsed: ParsedEmail, *, now: datetime) -> None:
    """Turn one recorded e-mail into an inquiry or a follow-up (inside the caller's
    transaction, which holds the row)."""
    fields = {"state": InboundEmail.State.PROCESSED, "processed_at": now}
    if parsed.sender in _own_addresses():
        # One of our own e-mails came back: recorded, nothing more (no loop).
        InboundEmail.objects.filter(pk=inbound.pk).update(
            **fields, error=_("Sent from our own address: ignored.")
        )
        return
    customer, user = match_sender(parsed.sender)
    inquiry = _inquiry_answered(parsed, customer)
    if inquiry is not None:
        message = email_follow_up(inquiry=inquiry, author=user, body=parsed.body, now=now)
        inquiry = message.inquiry
    else:
        inquiry = open_inquiry(
            customer=customer,
            subject=parsed.subject,
            body=parsed.body,
            channel=Channel.EMAIL,
            by=user,
            recorded_by=None,
            sender_email="" if user is not None else parsed.sender,
            now=now,
        )
        message = inquiry.messages.get()
        if not parsed.automated:
            fields["acknowledgement"] = _acknowledge(inbound, inquiry, parsed)
    refused = _store_attachments(message, parsed.attachments)
    if refused:
        InquiryMessage.objects.create(
            inquiry=inquiry,
            internal=True,
            from_staff=True,
            created_at=now,
            body=_("Attachments not kept (the e-mail as received is kept with it): %(why)s")
            % {"why": " ".join(refused)},
        )
    InboundEmail.objects.filter(pk=inbound.pk).update(
        **fields, inquiry=inquiry, inquiry_message=message
    )


def record(*, raw: bytes, folder: str, uid: str, now: datetime) -> InboundEmail:
    """The message's row, written once (unique Message-ID) before anything else."""
    message_id = message_id_of(raw)
    try:
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        sender = ", ".join(a for _name, a in getaddresses([str(headers.get("From", ""))]))
        subject = " ".join(str(headers.get("Subject", "")).split())
    except Exception:  # a header too broken to decode: the raw bytes say it all
        sender, subject = "", ""
    try:
        with transaction.atomic():
            inbound, _created = InboundEmail.objects.get_or_create(
                message_id=message_id,
                defaults={
                    "folder": folder,
                    "uid": uid,
                    "raw": raw,
                    "sender": sender[:300],
                    "subject": subject[:300],
                    "fetched_at": now,
                },
            )
    except IntegrityError:  # another fetch inserted it between our read and insert
        inbound = InboundEmail.objects.get(message_id=message_id)
    return inbound


def process_recorded(*, inbound_id: int, now: datetime) -> bool:
    """Process one recorded e-mail if it is still waiting and nobody else holds it;
    returns whether this call finished it (processed or failed)."""
    raw = InboundEmail.objects.values_list("raw", flat=True).get(pk=inbound_id)
    try:
        parsed = parse_email(bytes(raw))
        with transaction.atomic():
            inbound = (
                InboundEmail.objects.select_for_update(skip_locked=True)
                .filter(pk=inbound_id, state=InboundEmail.State.RECEIVED)
                .first()
            )
            if inbound is None:
                return False  # done already, or another fetch is on it right now
            _process(inbound, parsed, now=now)
        return True
    except (UnreadableEmail, ValidationError) as error:
        reason = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
    except Exception as error:  # kept for staff rather than retried for ever
        logger.exception("support mailbox: e-mail %s failed", inbound_id)
        reason = f"{type(error).__name__}: {error}"
    failed = InboundEmail.objects.filter(pk=inbound_id, state=InboundEmail.State.RECEIVED).update(
        state=InboundEmail.State.FAILED, error=reason[:5000], processed_at=now
    )
    return bool(failed)


def _connect():
    context = ssl.create_default_context(cafile=settings.SUPPORT_MAILBOX_CA_FILE or None)
    host, port = settings.SUPPORT_MAILBOX_HOST, settings.SUPPORT_MAILBOX_PORT
    timeout = settings.SUPPORT_MAILBOX_TIMEOUT
    if settings.SUPPORT_MAILBOX_SSL:
        box = MailBox(host, port, timeout=timeout, ssl_context=context)
    else:
        box = MailBoxStartTls(host, port, timeout=timeout, ssl_context=context)
    return box.login(settings.SUPPORT_MAILBOX_USER, settings.SUPPORT_MAILBOX_PASSWORD)


def _fetch_raw(box, uid: str) -> bytes | None:
    # BODY.PEEK: the message stays unread in the customer-visible sense; the exact bytes
    # are kept (imap-tools' parsed message would re-serialise them).
    status, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        return None
    return next((item[1] for item in data if isinstance(item, tuple)), None)


# A fetch that claimed a move has this long to make it before another may take it over.
MOVE_LEASE = timedelta(minutes=10)


def _claim_moves(done: dict[str, int], *, now: datetime) -> list[str]:
    """The uids of ``done`` (uid: row) whose move this fetch takes: rows nobody claimed,
    or whose claim is older than MOVE_LEASE (that fetch died before moving)."""
    claimable = Q(move_claimed_at__isnull=True) | Q(move_claimed_at__lt=now - MOVE_LEASE)
    with transaction.atomic():
        # Two statements for the whole batch: rows another fetch is claiming right now
        # are skipped, and once it commits they are no longer claimable.
        claimed = set(
            InboundEmail.objects.select_for_update(skip_locked=True)
            .filter(claimable, pk__in=done.values())
            .values_list("pk", flat=True)
        )
        InboundEmail.objects.filter(pk__in=claimed).update(move_claimed_at=now)
    return [uid for uid, inbound_id in done.items() if inbound_id in claimed]


def _move(box, uids: list[str], folder: str) -> int:
    """Move the messages done; one another fetch moved meanwhile is already gone (the
    server refuses the whole command then: move the rest one by one)."""
    if not uids:
        return 0
    try:
        box.move(uids, folder)
        return len(uids)
    except (MailboxCopyError, MailboxMoveError):
        moved = 0
        for uid in uids:
            try:
                box.move(uid, folder)
                moved += 1
            except (MailboxCopyError, MailboxMoveError):
                logger.info("support mailbox: message %s was moved by another fetch", uid)
        return moved


def fetch_support_mailbox(*, now: datetime) -> FetchReport:
    """Fetch the mailbox's new e-mails (at most SUPPORT_MAILBOX_BATCH a run), process
    each once, and move those done to the processed folder."""
    report = FetchReport()
    if not settings.SUPPORT_MAILBOX_HOST:
        return report
    folder = settings.SUPPORT_MAILBOX_FOLDER
    processed_folder = settings.SUPPORT_MAILBOX_PROCESSED_FOLDER
    with _connect() as box:
        if not box.folder.exists(processed_folder):
            box.folder.create(processed_folder)
        box.folder.set(folder)
        done: dict[str, int] = {}
        for uid in box.uids("ALL")[: settings.SUPPORT_MAILBOX_BATCH]:
            raw = _fetch_raw(box, uid)
            if raw is None:
                continue  # expunged meanwhile (another fetch moved it)
            inbound = record(raw=raw, folder=folder, uid=uid, now=now)
            if inbound.state == InboundEmail.State.RECEIVED:
                if process_recorded(inbound_id=inbound.pk, now=now):
                    inbound.refresh_from_db(fields=["state"])
                    if inbound.state == InboundEmail.State.FAILED:
                        report.failed += 1
                    else:
                        report.processed += 1
                else:
                    inbound.refresh_from_db(fields=["state"])
            if inbound.state == InboundEmail.State.RECEIVED:
                report.skipped += 1  # another fetch holds it: it moves it when done
            else:
                done[uid] = inbound.pk
        report.moved = _move(box, _claim_moves(done, now=now), processed_folder)
    # Rows staff asked to process again (admin), already out of the mailbox.
    waiting = InboundEmail.objects.filter(state=InboundEmail.State.RECEIVED, fetched_at__lt=now)
    for inbound_id in waiting.order_by("pk").values_list("pk", flat=True)[:50]:
        if process_recorded(inbound_id=inbound_id, now=now):
            report.processed += 1
    return report


def staff_url(inbound: InboundEmail) -> str:
    return reverse("admin:desk_inboundemail_change", args=[inbound.pk])
