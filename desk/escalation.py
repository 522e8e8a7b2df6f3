"""Escalation of after-hours contacts nobody picks up (issue 11, SLA).

An after-hours contact alerts the staff on call at once (support.services). Left with no
assignee and no response, it reminds them after SUPPORT_ESCALATE_ONCALL_MINUTES, then
tells the whole support group after SUPPORT_ESCALATE_GROUP_MINUTES: each once per
contact, however often and however many beats run (the alert's unique stage).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Subquery
from django.db.models.functions import Cast
from django.urls import reverse

from desk.models import Inquiry
from incidents.models import DamageReport
from support.models import AfterHoursAlert, Contact
from support.services import send_after_hours_alert
from upgrades.models import UpgradeRequest

Stage = AfterHoursAlert.Stage

# Every contact kind by the name its alerts carry (the services' contact_kind).
KINDS: dict[str, type[Contact]] = {
    "upgrade_request": UpgradeRequest,
    "damage_report": DamageReport,
    "inquiry": Inquiry,
}
# Contacts older than this are not escalated any more: a day after, the desk's morning
# has them in its queue, and a beat back from a long stop does not page for old ones.
LOOK_BACK = timedelta(days=1)


def escalate_unpicked_contacts(*, now: datetime) -> int:
    """Send the reminder and the escalation due now for every kind; returns how many
    were due (sent by this call, or by a beat running at the same time). One query per
    kind finds its contacts due for either stage."""
    reminder_after = timedelta(minutes=settings.SUPPORT_ESCALATE_ONCALL_MINUTES)
    group_after = timedelta(minutes=settings.SUPPORT_ESCALATE_GROUP_MINUTES)
    sent = 0
    for kind, model in KINDS.items():
        alerts = AfterHoursAlert.objects.filter(
            contact_kind=kind, contact_id=Cast(OuterRef("pk"), CharField())
        )
        due = (
            model._default_manager.filter(
                status__in=model.OPEN_STATUSES,
                after_hours=True,
                assignee__isnull=True,
                first_response_at__isnull=True,
                merged_into__isnull=True,
                received_at__lte=now - reminder_after,
                received_at__gt=now - LOOK_BACK,
            )
            .annotate(
                reminded=Exists(alerts.filter(stage=Stage.REMINDER)),
                escalated=Exists(alerts.filter(stage=Stage.ESCALATION)),
                summary=Subquery(alerts.filter(stage=Stage.FIRST).values("summary")[:1]),
            )
            .exclude(reminded=True, escalated=True)
            .order_by("pk")
            .values("pk", "received_at", "summary", "reminded", "escalated")
        )
        for contact in due:
            stages = [] if contact["reminded"] else [Stage.REMINDER]
            if not contact["escalated"] and contact["received_at"] <= now - group_after:
                stages.append(Stage.ESCALATION)
            for stage in stages:
                send_after_hours_alert(
                    stage=stage,
                    contact_kind=kind,
                    contact_id=contact["pk"],
                    summary=contact["summary"] or f"{model._meta.verbose_name} #{contact['pk']}",
                    url=reverse(
                        f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                        args=[contact["pk"]],
                    ),
                    received_at=contact["received_at"],
                    now=now,
                )
                sent += 1
    return sent
