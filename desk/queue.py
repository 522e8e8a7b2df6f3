"""The support desk's one queue: every open contact, whatever its kind, newest first.

Each kind keeps its own admin queue; this page puts them side by side for the person on
duty (filter by kind, after hours, priority, mine). Three queries, whatever the rows.
"""

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from desk.models import Inquiry
from incidents.models import DamageReport
from upgrades.models import UpgradeRequest

KINDS = {
    "upgrade_request": _("Upgrade request"),
    "damage_report": _("Damage report"),
    "inquiry": _("Inquiry"),
}
LIMIT = 100


@dataclass(frozen=True)
class Contact:
    kind: str
    number: int
    received_at: datetime
    customer: str
    summary: str
    after_hours: bool
    high_priority: bool
    assignee: str
    url: str

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]


def open_contacts(*, kind: str = "", after_hours: bool = False, high: bool = False, assignee=None):
    """Open contacts of every kind (or one), newest first, at most LIMIT of each kind."""
    contacts: list[Contact] = []

    def narrowed(queryset):
        if after_hours:
            queryset = queryset.filter(after_hours=True)
        if high:
            queryset = queryset.filter(priority="high")
        if assignee is not None:
            queryset = queryset.filter(assignee=assignee)
        return queryset.order_by("-received_at")[:LIMIT]

    if kind in ("", "upgrade_request"):
        for r in narrowed(
            UpgradeRequest.objects.filter(status__in=["new", "approved"]).select_related(
                "customer", "assignee"
            )
        ):
            contacts.append(
                Contact(
                    "upgrade_request",
                    r.pk,
                    r.received_at,
                    r.customer.name,
                    r.get_reason_display(),
                    r.after_hours,
                    r.priority == "high",
                    str(r.assignee or ""),
                    reverse("admin:upgrades_upgraderequest_change", args=[r.pk]),
                )
            )
    if kind in ("", "damage_report"):
        for r in narrowed(
            DamageReport.objects.filter(closed_at__isnull=True).select_related(
                "site__customer", "assignee"
            )
        ):
            contacts.append(
                Contact(
                    "damage_report",
                    r.pk,
                    r.received_at,
                    r.site.customer.name,
                    r.description[:80],
                    r.after_hours,
                    r.priority == "high",
                    str(r.assignee or ""),
                    reverse("admin:incidents_damagereport_change", args=[r.pk]),
                )
            )
    if kind in ("", "inquiry"):
        for r in narrowed(
            Inquiry.objects.filter(status="new").select_related("customer", "assignee")
        ):
            contacts.append(
                Contact(
                    "inquiry",
                    r.pk,
                    r.received_at,
                    r.customer.name,
                    r.subject,
                    r.after_hours,
                    r.priority == "high",
                    str(r.assignee or ""),
                    reverse("admin:desk_inquiry_change", args=[r.pk]),
                )
            )
    return sorted(contacts, key=lambda c: c.received_at, reverse=True)
