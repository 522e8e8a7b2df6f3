"""The desk's use cases for inquiries: a customer asks, support answers (or notes
internally), the customer follows up, support closes. Each move is a conditional update
on the status."""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from desk.canned import fill_placeholders, unknown_placeholders_message
from desk.models import CannedReply, Inquiry, InquiryMessage
from incidents.contacts import arrival
from incidents.models import DamageReport
from incidents.services import merge_damage_reports
from support.calendar import is_after_hours
from support.channels import Channel
from support.contacts import record_first_response
from support.mail import bilingual_from_templates, customer_recipients
from support.merging import check_merge, lock_pair, tell_customer_merged
from support.outbox import queue_email
from support.services import alert_on_call
from support.sla import first_response_due
from upgrades.models import UpgradeRequest
from upgrades.services.requests import merge_upgrade_requests

InquiryStatus = Inquiry.Status
# An inquiry still in the desk's hands (asked or answered), which another can join.
INQUIRY_MERGE_TARGETS = frozenset({InquiryStatus.NEW, InquiryStatus.ANSWERED})


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
    sender_email: str = "",
    now: datetime,
) -> Inquiry:
    """Record a customer's question with its first message.

    ``by`` is the customer's user who asked in the portal or API; ``recorded_by`` the
    staff member who took it by phone or e-mail. The site, if any, must be the
    customer's. After hours the inquiry is high priority and the on-call staff are told.
    An e-mail from an unknown sender has no customer, only its ``sender_email``: staff
    choose the customer later.
    """
    subject = (subject or "").strip()
    if not subject:
        raise ValidationError({"subject": _("Write a subject.")})
    body = _message_body(body)
    if customer is None and not sender_email:
        raise ValidationError({"customer": _("Choose the customer.")})
    if site is not None and (customer is None or site.customer_id != customer.pk):
        raise ValidationError({"site": _("Choose only your own organisation's sites.")})
    # A question about no site in particular is about all of the customer's sites: a
    # disaster covering any of them makes it urgent.
    prefectures = (
        [site.prefecture]
        if site is not None
        else customer.sites.values_list("prefecture", flat=True).distinct()
        if customer is not None
        else []
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
            sender_email=sender_email,
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
                % {"number": inquiry.pk, "customer": _who(inquiry), "subject": subject},
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

    A canned reply is added after the typed text, or sent alone when nothing is typed;
    its placeholders are filled from the inquiry here (desk/canned.py), the typed text is
    kept as written. A canned reply with an unknown placeholder is refused, never sent."""
    canned = ""
    if canned_reply is not None:
        try:
            canned = fill_placeholders(canned_reply.body, inquiry=inquiry)
        except ValueError as error:
            raise ValidationError(
                {"canned_reply": unknown_placeholders_message(error.args[0])}
            ) from None
    body = _message_body("\n\n".join(part for part in [body.strip(), canned] if part))
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


def _who(inquiry: Inquiry) -> str:
    if inquiry.customer_id is None:
        return _("unknown sender %(email)s") % {"email": inquiry.sender_email}
    return inquiry.customer.name


def customer_follow_up(*, inquiry: Inquiry, by, body: str, now: datetime) -> InquiryMessage:
    """The customer writes again: the inquiry goes back to support's queue as *new*
    (a closed one is reopened). After hours each follow-up alerts the staff on call, as a
    new inquiry does: nobody reads the queue at night."""
    if inquiry.customer_id is None or by.customer_id != inquiry.customer_id:
        raise ValidationError(_("This inquiry is another organisation's."))
    return _follow_up(inquiry=inquiry, author=by, body=body, now=now)


def email_follow_up(*, inquiry: Inquiry, author, body: str, now: datetime) -> InquiryMessage:
    """An e-mail that answers an inquiry (its reference in the subject, or a reply to an
    e-mail of ours) joins its conversation as the customer's follow-up. ``author`` is
    the customer's user who wrote, or None for an address that is no user's (the
    mailbox decided the e-mail belongs to this inquiry: desk/mailbox.py). A merged
    inquiry's e-mail goes to the inquiry it was merged into."""
    while inquiry.merged_into_id is not None:
        inquiry = Inquiry.objects.get(pk=inquiry.merged_into_id)
    return _follow_up(inquiry=inquiry, author=author, body=body, now=now)


def _follow_up(*, inquiry: Inquiry, author, body: str, now: datetime) -> InquiryMessage:
    body = _message_body(body)
    with transaction.atomic():
        merged_into, status = (
            Inquiry.objects.select_for_update()
            .values_list("merged_into_id", "status")
            .get(pk=inquiry.pk)
        )
        if merged_into is not None:
            # Nothing more happens under a merged inquiry: one conversation, in one place.
            raise ValidationError(
                _("This inquiry was merged into #%(number)s: please write there.")
                % {"number": merged_into}
            )
        # An answered or closed inquiry the customer writes to again waits for a new
        # first response, with a new target; one still waiting keeps its (earlier) one.
        sla = {} if status == InquiryStatus.NEW else _new_response_target(inquiry, now=now)
        _move_inquiry(
            inquiry, from_=set(InquiryStatus.values), to=InquiryStatus.NEW, closed_at=None, **sla
        )
        message = InquiryMessage.objects.create(
            inquiry=inquiry, author=author, body=body, created_at=now
        )
        if is_after_hours(now):
            alert_on_call(
                contact_kind="inquiry_follow_up",
                contact_id=message.pk,
                summary=_("Follow-up on inquiry #%(number)s from %(customer)s: %(subject)s")
                % {
                    "number": inquiry.pk,
                    "customer": _who(inquiry),
                    "subject": inquiry.subject,
                },
                url=reverse("admin:desk_inquiry_change", args=[inquiry.pk]),
                received_at=now,
            )
    return message


def _new_response_target(inquiry: Inquiry, *, now: datetime) -> dict:
    return {
        "first_response_at": None,
        "respond_by": first_response_due(
            priority=inquiry.priority, after_hours=is_after_hours(now), received_at=now
        ),
    }


def close_inquiry(*, inquiry: Inquiry, by, now: datetime) -> None:
    """Support closes an inquiry that needs nothing more."""
    with transaction.atomic():
        _move_inquiry(
            inquiry,
            from_={InquiryStatus.NEW, InquiryStatus.ANSWERED},
            to=InquiryStatus.CLOSED,
            closed_at=now,
        )


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
    to = set(customer_recipients(inquiry.customer)) if inquiry.customer_id else set()
    if inquiry.sender_email:
        to.add(inquiry.sender_email)
    email = queue_email(
        key=f"inquiry-reply:{message.pk}",
        to=sorted(to),
        # The reference lets the customer's answer find this inquiry (desk/mailbox.py);
        # one for both languages, outside the translated text.
        subject=f"{inquiry.reference} {subject}",
        body=body,
        headers=thread_headers(inquiry),
    )
    InquiryMessage.objects.filter(pk=message.pk).update(email=email)


def assign_inquiry_customer(*, inquiry: Inquiry, customer, by, now: datetime) -> None:
    """Staff say which customer an unknown sender's e-mail came from; the inquiry is
    that customer's from then on (its sender still gets the replies)."""
    with transaction.atomic():
        if not Inquiry.objects.filter(pk=inquiry.pk, customer__isnull=True).update(
            customer=customer
        ):
            raise ValidationError(_("This inquiry's customer is already known."))
        InquiryMessage.objects.create(
            inquiry=inquiry,
            author=by,
            internal=True,
            from_staff=True,
            created_at=now,
            body=_("Customer set to %(customer)s (the sender %(email)s was unknown).")
            % {"customer": customer.name, "email": inquiry.sender_email},
        )
    inquiry.refresh_from_db()


def thread_headers(inquiry: Inquiry) -> dict[str, str]:
    """The headers that make a customer's mail program show our e-mail under theirs
    (In-Reply-To the last e-mail they sent about it, References the thread), and send
    their answer to the support mailbox rather than to the portal's no-reply address."""
    headers = {"Reply-To": settings.SUPPORT_EMAIL}
    theirs = list(
        inquiry.emails.exclude(message_id__startswith="<sha256.")
        .order_by("-fetched_at", "-pk")
        .values_list("message_id", flat=True)[:10]
    )
    if theirs:
        headers["In-Reply-To"] = theirs[0]
        headers["References"] = " ".join(reversed(theirs))
    return headers


def merge_inquiries(*, duplicate: Inquiry, into: Inquiry, by, now: datetime) -> None:
    """Merge an inquiry into another of the same customer about the same matter.

    The duplicate is closed and points at the target; its messages move to the target's
    conversation with their times, so the customer reads one conversation and staff one
    history (an internal note on each says what was merged). A duplicate that waited for
    an answer makes the target wait too. The customer is e-mailed once.
    """
    with transaction.atomic():
        # Both rows locked in pk order: two agents merging crosswise wait, never deadlock.
        duplicate, into = lock_pair(Inquiry.objects, duplicate, into)
        check_merge(
            duplicate=duplicate,
            into=into,
            same_customer=duplicate.customer_id == into.customer_id,
            into_statuses=INQUIRY_MERGE_TARGETS,
        )
        if duplicate.status not in INQUIRY_MERGE_TARGETS:
            raise ValidationError(
                _("#%(number)s is closed: only an open inquiry can be merged.")
                % {"number": duplicate.pk}
            )
        waiting = duplicate.status == InquiryStatus.NEW
        _move_inquiry(
            duplicate,
            from_={InquiryStatus.NEW, InquiryStatus.ANSWERED},
            to=InquiryStatus.CLOSED,
            closed_at=now,
            merged_into=into,
        )
        moved = InquiryMessage.objects.filter(inquiry=duplicate).update(inquiry=into)
        if waiting and into.status == InquiryStatus.ANSWERED:
            # The duplicate's question waits for an answer: so does the target now, by
            # the duplicate's target.
            _move_inquiry(
                into,
                from_={InquiryStatus.ANSWERED},
                to=InquiryStatus.NEW,
                first_response_at=None,
                respond_by=duplicate.respond_by,
            )
        InquiryMessage.objects.bulk_create(
            [
                InquiryMessage(
                    inquiry=into,
                    author=by,
                    internal=True,
                    from_staff=True,
                    created_at=now,
                    body=_(
                        "Inquiry #%(number)s “%(subject)s” merged into this one: its "
                        "%(count)s messages are shown here."
                    )
                    % {"number": duplicate.pk, "subject": duplicate.subject, "count": moved},
                ),
                InquiryMessage(
                    inquiry=duplicate,
                    author=by,
                    internal=True,
                    from_staff=True,
                    created_at=now,
                    body=_("Merged into inquiry #%(number)s; its messages were moved there.")
                    % {"number": into.pk},
                ),
            ]
        )
        tell_customer_merged(
            duplicate=duplicate,
            into=into,
            customer=into.customer,
            url_path=reverse("desk:inquiry", args=[into.pk]),
            now=now,
        )


def merge_contacts(*, duplicate, into, by, now: datetime) -> None:
    """Merge two contacts that are the same matter, whatever their kind: each kind's own
    service moves its data (support/merging.py says why they live in their apps)."""
    services = {
        Inquiry: merge_inquiries,
        UpgradeRequest: merge_upgrade_requests,
        DamageReport: merge_damage_reports,
    }
    if type(duplicate) is not type(into) or type(into) not in services:
        raise ValidationError(_("Only two contacts of the same kind can be merged."))
    services[type(into)](duplicate=duplicate, into=into, by=by, now=now)
