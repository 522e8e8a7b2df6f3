"""After-hours routing (FAQ Q3): a contact outside working hours alerts the on-call staff
at once, by e-mail and, when configured, a webhook for a chat or SMS gateway. Left without
an assignee or a response, it reminds the on-call staff, then escalates to the whole
support group (desk/escalation.py finds those due)."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from support.followups import enqueue_on_commit
from support.mail import bilingual_from_templates
from support.models import AfterHoursAlert, OnCallShift
from support.outbox import fold_header, queue_email
from support.webhooks import post_json

Stage = AfterHoursAlert.Stage


def alert_on_call(
    *,
    contact_kind: str,
    contact_id: int | str,
    summary: str,
    url: str,
    received_at: datetime,
    details: str = "",
) -> AfterHoursAlert:
    """Record the alert for one after-hours contact, once, and queue its e-mail to the
    staff on call then (or the whole support group, told so) in the same transaction."""
    return send_after_hours_alert(
        stage=Stage.FIRST,
        contact_kind=contact_kind,
        contact_id=contact_id,
        summary=summary,
        url=url,
        received_at=received_at,
        now=received_at,
        details=details,
    )


def send_after_hours_alert(
    *,
    stage: str,
    contact_kind: str,
    contact_id: int | str,
    summary: str,
    url: str,
    received_at: datetime,
    now: datetime,
    details: str = "",
) -> AfterHoursAlert:
    """One stage of the alerts about an after-hours contact, once per contact and stage
    (the unique constraint: two beats at once queue one e-mail): the first alert and the
    reminder go to the staff on call at ``now`` (or the whole support group, told so),
    the escalation to the whole support group and the staff on call."""
    with transaction.atomic():
        alert, created = AfterHoursAlert.objects.get_or_create(
            contact_kind=contact_kind,
            contact_id=str(contact_id),
            stage=stage,
            defaults={
                "summary": summary[:300],
                "details": details,
                "url": url,
                "received_at": received_at,
                "alerted_at": now,
            },
        )
        if not created:
            return alert
        recipients, nobody = _recipients(now)
        if stage == Stage.ESCALATION:
            recipients, nobody = sorted(set(recipients) | set(_support_group())), False
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
    return _support_group(), True


def _support_group() -> list[str]:
    group = get_user_model().objects.filter(groups__name="support", is_active=True)
    return sorted(set(group.values_list("email", flat=True)) - {""})


def _alert_text(alert: AfterHoursAlert, *, nobody_on_call: bool) -> tuple[str, str]:
    # The summary may hold anything a customer typed: the outbox folds line breaks out
    # of the subject.
    return bilingual_from_templates(
        "support/email/after_hours_alert",
        {
            "alert": alert,
            "nobody_on_call": nobody_on_call,
            # Whole minutes the contact has waited when this stage went out.
            "waited": int((alert.alerted_at - alert.received_at).total_seconds() // 60)
            if alert.alerted_at
            else 0,
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
