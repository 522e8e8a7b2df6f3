"""The support desk's one queue: every contact, whatever its kind, in one list.

One database query lists the page, whatever the rows: each kind is narrowed by the same
filters and reduced to the same columns, the three are put together with UNION ALL, and
the database sorts and slices the whole (the paginator's count is a second query). No
kind is capped: the oldest contact is on the last page, not gone.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, CharField, F, IntegerField, QuerySet, Value, When
from django.db.models.functions import Coalesce, Substr
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from desk.models import Call, Inquiry
from incidents.models import DamageReport
from support.models import ContactPriority
from upgrades.models import UpgradeRequest

KINDS = {
    "upgrade_request": _("Upgrade request"),
    "damage_report": _("Damage report"),
    "inquiry": _("Inquiry"),
    # Open while ringing, and once missed until someone calls back: the callback list.
    "call": _("Phone call"),
}
MODELS = {
    "upgrade_request": UpgradeRequest,
    "damage_report": DamageReport,
    "inquiry": Inquiry,
    "call": Call,
}
# The sorts an agent picks, as ORDER BY of the combined columns. Every sort ends on the
# kind and number so that a page boundary never moves between two loads.
SORTS = {
    # Triage: high priority first, then the one waiting longest.
    "priority": ("q_rank", "q_received", "q_kind", "q_pk"),
    "oldest": ("q_received", "q_kind", "q_pk"),
    "newest": ("-q_received", "-q_kind", "-q_pk"),
    # The first-response target soonest first; contacts without one come last.
    # Those still waiting for a first response come before those already answered.
    "sla": (
        F("q_first_response_at").asc(nulls_first=True),
        F("q_respond_by").asc(nulls_last=True),
        "q_received",
        "q_kind",
        "q_pk",
    ),
}
SUMMARY_LENGTH = 80


@dataclass(frozen=True)
class QueueFilters:
    kind: str = ""
    open_only: bool = True
    priority: str = ""
    after_hours: bool = False
    mine: bool = False
    unassigned: bool = False
    overdue: bool = False
    sort: str = "priority"


def _columns(kind: str, *, customer: str, summary: str, unknown: str | None = None) -> dict:
    """The same columns, in the same order, for every kind: UNION pairs them by position,
    so every one is an annotation made here (a model field would be put first)."""
    return {
        "q_kind": Value(kind, output_field=CharField()),
        "q_pk": F("pk"),
        "q_received": F("received_at"),
        "q_rank": Case(
            When(priority=ContactPriority.HIGH, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        "q_priority": F("priority"),
        "q_status": F("status"),
        "q_after_hours": F("after_hours"),
        "q_assignee_id": F("assignee_id"),
        "q_assignee_name": F("assignee__full_name"),
        "q_assignee_email": F("assignee__email"),
        "q_respond_by": F("respond_by"),
        "q_first_response_at": F("first_response_at"),
        "q_customer_id": F(f"{customer}_id"),
        # An inquiry e-mailed by an unknown sender has no customer: its address instead.
        "q_customer_name": (
            Coalesce(F(f"{customer}__name"), F(unknown), output_field=CharField())
            if unknown
            else F(f"{customer}__name")
        ),
        "q_summary": Substr(summary, 1, SUMMARY_LENGTH, output_field=CharField()),
    }


def _kind_rows(kind: str, filters: QueueFilters, *, user_id: int, now: datetime) -> QuerySet:
    model = MODELS[kind]
    queryset = model.objects.all()
    if filters.open_only:
        queryset = queryset.open().filter(merged_into__isnull=True)
    if filters.priority:
        queryset = queryset.filter(priority=filters.priority)
    if filters.after_hours:
        queryset = queryset.filter(after_hours=True)
    if filters.mine:
        queryset = queryset.filter(assignee_id=user_id)
    if filters.unassigned:
        queryset = queryset.filter(assignee__isnull=True)
    if filters.overdue:
        queryset = queryset.past_target(now)
    columns = {
        "upgrade_request": _columns(kind, customer="customer", summary="reason"),
        "damage_report": _columns(kind, customer="site__customer", summary="description"),
        "inquiry": _columns(kind, customer="customer", summary="subject", unknown="sender_email"),
        "call": _columns(kind, customer="customer", summary="from_number"),
    }[kind]
    return queryset.order_by().annotate(**columns).values(*columns)


def queue(*, filters: QueueFilters, user_id: int, now: datetime) -> QuerySet:
    """The contacts the filters keep, every kind in one sorted query (rows are dicts)."""
    kinds = [filters.kind] if filters.kind else list(KINDS)
    parts = [_kind_rows(kind, filters, user_id=user_id, now=now) for kind in kinds]
    combined = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    return combined.order_by(*SORTS[filters.sort])


def customer_url(customer_id: int) -> str:
    """The desk's page of everything about the customer."""
    return reverse("desk:customer", args=[customer_id])


@dataclass(frozen=True)
class QueueRow:
    """One contact as the queue shows it."""

    kind: str
    number: int
    received_at: datetime
    customer_name: str
    customer_url: str
    summary: str
    priority: str
    status: str
    after_hours: bool
    assignee: str
    respond_by: datetime | None
    first_response_at: datetime | None
    overdue: bool
    url: str

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]

    @property
    def high_priority(self) -> bool:
        return self.priority == ContactPriority.HIGH

    @property
    def priority_label(self) -> str:
        return _label(ContactPriority, self.priority)

    @property
    def status_label(self) -> str:
        return _label(MODELS[self.kind].Status, self.status)

    @classmethod
    def from_values(cls, row: dict, *, now: datetime) -> "QueueRow":
        kind = row["q_kind"]
        model = MODELS[kind]
        summary = row["q_summary"] or ""
        if kind == "upgrade_request":
            summary = str(_label(UpgradeRequest.Reason, summary))
        return cls(
            kind=kind,
            number=row["q_pk"],
            received_at=row["q_received"],
            customer_name=(
                row["q_customer_name"]
                if row["q_customer_id"] is not None
                # An e-mail from an unknown address, a call from an unknown number.
                else _("Unknown sender %(email)s") % {"email": row["q_customer_name"]}
                if kind == "inquiry"
                else str(_("Unknown caller"))
            ),
            customer_url=customer_url(row["q_customer_id"]) if row["q_customer_id"] else "",
            summary=summary,
            priority=row["q_priority"],
            status=row["q_status"],
            after_hours=bool(row["q_after_hours"]),
            assignee=row["q_assignee_name"] or row["q_assignee_email"] or "",
            respond_by=row["q_respond_by"],
            first_response_at=row["q_first_response_at"],
            overdue=model(
                status=row["q_status"],
                respond_by=row["q_respond_by"],
                first_response_at=row["q_first_response_at"],
            ).is_past_target(now),
            url=reverse("desk:call", args=[row["q_pk"]])
            if kind == "call"
            else reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                args=[row["q_pk"]],
            ),
        )


def _label(choices, value: str):
    try:
        return choices(value).label
    except ValueError:
        return value
