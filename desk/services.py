"""The desk's use cases for inquiries: a customer asks, support answers (or notes
internally), the customer follows up, support closes. Each move is a conditional update
on the status."""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from desk.models import CannedReply, Inquiry, InquiryMessage
from incidents.contacts import arrival
from support.calendar import is_after_hours
from support.channels import Channel
from support.contacts import record_first_response
from support.mail import bilingual_from_templates, customer_recipients
from support.outbox import queue_email
from support.services import alert_on_call

InquiryStatus = Inquiry.Status


def _message_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    return body


def _move_inquiry(inquiry: Inquiry, *, from_: set[str], to: str, **fields) -> None:
    moved = Inquiry.objects.filter(pk=inquiry.pk, status__in=from_).update(status=to, **fields)
    if not moved:
        inquiry.refresh_from_db(fields=["status"])
        raise ValidationError(
            _("This inquiry is %(status)s and cannot be changed that way.")
            % {"status": inquiry.get_status_display()}
        )
    inquiry.refresh_from_db()


def open_inquiry(
    *,
    customer,
    subject: str,
    body: str,
    channel: Channel | str,
    by=None,
    recorded_by=None,
    site=None,
    contact_phone: str = "",
    now: datetime,
) -> Inquiry:
    """Record a customer's question with its first message.

    ``by`` is the customer's user who asked in the portal or API; ``recorded_by`` the
    staff member who took it by phone or e-mail. The site, if any, must be the
    customer's. After hours the inquiry is high priority and the on-call staff are told.
    """
    subject = (subject or "").strip()
    if not subject:
        raise ValidationError({"subject": _("Write a subject.")})
    body = _message_body(body)
    if site is not None and site.customer_id != customer.pk:
        raise ValidationError({"site": _("Choose only your own organisation's sites.")})
    # A question about no site in particular is about all of the customer's sites: a
    # disaster covering any of them makes it urgent.
    prefectures = (
        [site.prefecture]
        if site is not None
        else customer.sites.values_list("prefecture", flat=True).distinct()
    )
    with transaction.atomic():
        inquiry = Inquiry.objects.create(
            customer=customer,
            site=site,
            subject=subject,
            channel=channel,
            created_by=by,
            recorded_by=recorded_by,
            contact_phone=contact_phone,
            **arrival(prefectures=prefectures, now=now),
        )
        InquiryMessage.objects.create(
            inquiry=inquiry, author=by or recorded_by, body=body, created_at=now
        )
        if inquiry.after_hours:
            alert_on_call(
                contact_kind="inquiry",
                contact_id=inquiry.pk,
                summary=_("Inquiry #%(number)s from %(customer)s: %(subject)s")
                % {"number": inquiry.pk, "customer": customer.name, "subject": subject},
                url=reverse("admin:desk_inquiry_change", args=[inquiry.pk]),
                received_at=now,
            )
    return inquiry


def reply_to_inquiry(
    *,
    inquiry: Inquiry,
    by,
    body: str,
    internal: bool,
    now: datetime,
    canned_reply: CannedReply | None = None,
) -> InquiryMessage:
    """Support answers (the inquiry becomes *answered* and the customer is e-mailed) or
    adds an internal note, which changes nothing the customer sees and is never sent.

    A canned reply is added after the typed text, or sent alone when nothing is typed."""
    body = "\n\n".join(
        part for part in [body.strip(), canned_reply.body if canned_reply else ""] if part
    )
    body = _message_body(body)
    with transaction.atomic():
        if internal:
            # A note may be added at any time, even to a closed inquiry.
            inquiry = Inquiry.objects.select_for_update().get(pk=inquiry.pk)
        else:
            _move_inquiry(
                inquiry,
                from_={InquiryStatus.NEW, InquiryStatus.ANSWERED},
                to=InquiryStatus.ANSWERED,
            )
        message = InquiryMessage.objects.create(
            inquiry=inquiry,
            author=by,
            body=body,
            internal=internal,
            from_staff=True,
            created_at=now,
        )
        if not internal:
            record_first_response(inquiry, now=now)
            _queue_reply_email(message)
    return message


def customer_follow_up(*, inquiry: Inquiry, by, body: str, now: datetime) -> InquiryMessage:
    """The customer writes again: the inquiry goes back to support's queue as *new*
    (a closed one is reopened). After hours each follow-up alerts the staff on call, as a
    new inquiry does: nobody reads the queue at night."""
    if by.customer_id != inquiry.customer_id:
        raise ValidationError(_("This inquiry is another organisation's."))
    body = _message_body(body)
    with transaction.atomic():
        _move_inquiry(
            inquiry, from_=set(InquiryStatus.values), to=InquiryStatus.NEW, closed_at=None
        )
        message = InquiryMessage.objects.create(
            inquiry=inquiry, author=by, body=body, created_at=now
        )
        if is_after_hours(now):
            alert_on_call(
                contact_kind="inquiry_follow_up",
                contact_id=message.pk,
                summary=_("Follow-up on inquiry #%(number)s from %(customer)s: %(subject)s")
                % {
                    "number": inquiry.pk,
                    "customer": inquiry.customer.name,
                    "subject": inquiry.subject,
                },
                url=reverse("admin:desk_inquiry_change", args=[inquiry.pk]),
                received_at=now,
            )
    return message


def close_inquiry(*, inquiry: Inquiry, by, now: datetime) -> None:
    """Support closes an inquiry that needs nothing more."""
    with transaction.atomic():
        _move_inquiry(
            inquiry,
            from_={InquiryStatus.NEW, InquiryStatus.ANSWERED},
            to=InquiryStatus.CLOSED,
            closed_at=now,
        )


def assign_inquiries(*, inquiries, assignee) -> int:
    return Inquiry.objects.filter(pk__in=inquiries).update(assignee=assignee)


def _queue_reply_email(message: InquiryMessage) -> None:
    """Queue the e-mail of one staff reply to the customer's users (Japanese, English
    below) in the reply's transaction; the outbox sends it after commit, never the
    admin's web request. A failure stays visible on the reply in the admin."""
    inquiry = message.inquiry
    subject, body = bilingual_from_templates(
        "desk/email/inquiry_reply",
        {
            "inquiry": inquiry,
            "message": message,
            "url": settings.PORTAL_BASE_URL + reverse("desk:inquiry", args=[inquiry.pk]),
        },
    )
    email = queue_email(
        key=f"inquiry-reply:{message.pk}",
        to=customer_recipients(inquiry.customer),
        subject=subject,
        body=body,
    )
    InquiryMessage.objects.filter(pk=message.pk).update(email=email)
