"""After-hours routing (FAQ Q3): a contact outside working hours alerts the on-call staff
at once, by e-mail and, when configured, a webhook for a chat or SMS gateway."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from support.calendar import is_after_hours
from support.channels import Channel
from support.followups import enqueue_on_commit
from support.mail import bilingual_from_templates, customer_recipients
from support.models import AfterHoursAlert, CannedReply, Inquiry, InquiryMessage, OnCallShift
from support.outbox import fold_header, queue_email
from support.webhooks import post_json


def alert_on_call(
    *, contact_kind: str, contact_id: int | str, summary: str, url: str, received_at: datetime
) -> AfterHoursAlert:
    """Record the alert for one after-hours contact, once, and queue its e-mail to the
    staff on call then (or the whole support group, told so) in the same transaction."""
    with transaction.atomic():
        alert, created = AfterHoursAlert.objects.get_or_create(
            contact_kind=contact_kind,
            contact_id=str(contact_id),
            defaults={"summary": summary[:300], "url": url, "received_at": received_at},
        )
        if not created:
            return alert
        recipients, nobody = _recipients(received_at)
        subject, body = _alert_text(alert, nobody_on_call=nobody)
        email = queue_email(
            key=f"after-hours:{alert.pk}", to=recipients, subject=subject, body=body
        )
        AfterHoursAlert.objects.filter(pk=alert.pk).update(
            email=email, recipients=recipients, nobody_on_call=nobody
        )
        if settings.SUPPORT_ONCALL_WEBHOOK_URL:
            from support import tasks

            enqueue_on_commit(tasks.post_after_hours_webhook, alert.pk)
    alert.refresh_from_db()
    return alert


def _recipients(at: datetime) -> tuple[list[str], bool]:
    on_call = list(
        OnCallShift.objects.covering(at)
        .filter(staff__is_active=True)
        .values_list("staff__email", flat=True)
        .distinct()
    )
    if on_call:
        return sorted(on_call), False
    # Nobody on call: the whole support group, and the message says so.
    group = get_user_model().objects.filter(groups__name="support", is_active=True)
    return sorted(set(group.values_list("email", flat=True))), True


def _alert_text(alert: AfterHoursAlert, *, nobody_on_call: bool) -> tuple[str, str]:
    # The summary may hold anything a customer typed: the outbox folds line breaks out
    # of the subject.
    return bilingual_from_templates(
        "support/email/after_hours_alert",
        {
            "alert": alert,
            "nobody_on_call": nobody_on_call,
            "url": f"{settings.PORTAL_BASE_URL}{alert.url}",
        },
    )


def post_after_hours_webhook(*, alert_id: int) -> bool:
    """Post one alert to the chat / SMS gateway; returns whether this call did. A finished
    post is never repeated; one cut off half way ("posting": the worker died) is posted
    again by the follow-up's next run (at least once, like the broadcast webhook)."""
    if not settings.SUPPORT_ONCALL_WEBHOOK_URL:
        return False
    if not AfterHoursAlert.objects.filter(pk=alert_id, webhook_status__in=["", "posting"]).update(
        webhook_status="posting"
    ):
        return False
    alert = AfterHoursAlert.objects.get(pk=alert_id)
    subject, body = _alert_text(alert, nobody_on_call=alert.nobody_on_call)
    status = _post_webhook({"text": f"{fold_header(subject)}\n{body}"})
    AfterHoursAlert.objects.filter(pk=alert_id).update(webhook_status=status)
    return True


def _post_webhook(payload: dict) -> str:
    # The e-mail went out; a chat gateway that is down must not resend it.
    status, error = post_json(settings.SUPPORT_ONCALL_WEBHOOK_URL, payload)
    return f"HTTP {status}" if status else f"failed: {error}"[:50]


# Inquiries: a customer asks, support answers (or notes internally), the customer
# follows up, support closes. Each move is a conditional update on the status.

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
    after_hours = is_after_hours(now)
    with transaction.atomic():
        inquiry = Inquiry.objects.create(
            customer=customer,
            site=site,
            subject=subject,
            channel=channel,
            received_at=now,
            after_hours=after_hours,
            priority=Inquiry.Priority.HIGH if after_hours else Inquiry.Priority.NORMAL,
            created_by=by,
            recorded_by=recorded_by,
            contact_phone=contact_phone,
        )
        InquiryMessage.objects.create(
            inquiry=inquiry, author=by or recorded_by, body=body, created_at=now
        )
        if after_hours:
            alert_on_call(
                contact_kind="inquiry",
                contact_id=inquiry.pk,
                summary=_("Inquiry #%(number)s from %(customer)s: %(subject)s")
                % {"number": inquiry.pk, "customer": customer.name, "subject": subject},
                url=reverse("admin:support_inquiry_change", args=[inquiry.pk]),
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
            _queue_reply_email(message)
    return message


def customer_follow_up(*, inquiry: Inquiry, by, body: str, now: datetime) -> InquiryMessage:
    """The customer writes again: the inquiry goes back to support's queue as *new*
    (a closed one is reopened)."""
    if by.customer_id != inquiry.customer_id:
        raise ValidationError(_("This inquiry is another organisation's."))
    body = _message_body(body)
    with transaction.atomic():
        _move_inquiry(
            inquiry, from_=set(InquiryStatus.values), to=InquiryStatus.NEW, closed_at=None
        )
        return InquiryMessage.objects.create(inquiry=inquiry, author=by, body=body, created_at=now)


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
        "support/email/inquiry_reply",
        {
            "inquiry": inquiry,
            "message": message,
            "url": settings.PORTAL_BASE_URL + reverse("support:inquiry", args=[inquiry.pk]),
        },
    )
    email = queue_email(
        key=f"inquiry-reply:{message.pk}",
        to=customer_recipients(inquiry.customer),
        subject=subject,
        body=body,
    )
    InquiryMessage.objects.filter(pk=message.pk).update(email=email)
