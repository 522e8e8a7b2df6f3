"""After-hours routing (FAQ Q3): a contact outside working hours alerts the on-call staff
at once, by e-mail and, when configured, a webhook for a chat or SMS gateway."""

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from support.models import AfterHoursAlert, OnCallShift

logger = logging.getLogger(__name__)


def alert_on_call(
    *, contact_kind: str, contact_id: int | str, summary: str, url: str, received_at: datetime
) -> AfterHoursAlert:
    """Record the alert for one after-hours contact (once) and send it after commit."""
    alert, created = AfterHoursAlert.objects.get_or_create(
        contact_kind=contact_kind,
        contact_id=str(contact_id),
        defaults={"summary": summary[:300], "url": url, "received_at": received_at},
    )
    if created:
        from support import tasks

        transaction.on_commit(lambda: tasks.send_after_hours_alert.delay(alert.pk))
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


def send_after_hours_alert(*, alert_id: int, now: datetime) -> bool:
    """Send one alert if not sent yet; returns whether this call sent it.

    The row is claimed (sent_at set) in a short transaction before the mail goes out, so
    two workers never both send it; a failed send clears the claim for the retry.
    """
    with transaction.atomic():
        alert = AfterHoursAlert.objects.select_for_update().get(pk=alert_id)
        if alert.sent_at is not None:
            return False
        recipients, nobody = _recipients(alert.received_at)
        AfterHoursAlert.objects.filter(pk=alert_id).update(
            sent_at=now, recipients=recipients, nobody_on_call=nobody
        )
    with translation.override("ja"):
        subject = _("[After hours] %(summary)s") % {"summary": alert.summary}
        body = "\n".join(
            [
                _("A contact arrived outside working hours.")
                if not nobody
                else _(
                    "A contact arrived outside working hours, and nobody is on call: "
                    "this goes to the whole support group."
                ),
                "",
                alert.summary,
                f"{settings.PORTAL_BASE_URL}{alert.url}",
            ]
        )
    try:
        if recipients:
            send_mail(subject, body, None, recipients)
    except OSError:
        AfterHoursAlert.objects.filter(pk=alert_id).update(sent_at=None)
        raise
    if settings.SUPPORT_ONCALL_WEBHOOK_URL:
        AfterHoursAlert.objects.filter(pk=alert_id).update(
            webhook_status=_post_webhook({"text": f"{subject}\n{body}"})
        )
    return True


def _post_webhook(payload: dict) -> str:
    request = urllib.request.Request(  # noqa: S310 (the operator's own setting)
        settings.SUPPORT_ONCALL_WEBHOOK_URL,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return f"HTTP {response.status}"
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        # The e-mail went out; a chat gateway that is down must not resend it.
        logger.warning("on-call webhook failed: %s", error)
        return f"failed: {error}"[:50]
