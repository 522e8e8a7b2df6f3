"""A customer's whole story on one page, for support staff: the organisation, its login
users, sites and lines, speed grants and answers, requests, damage reports and visits,
inquiries, invoices and readiness checks, newest first.

One query per section whatever the rows: each list is cut at a limit in SQL, and a
window count on the same query says how many there are in all, so the page shows
"N more" with a link to the admin's list of that kind for this customer: never a
silent cut.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, Subquery, Window
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode

from desk.models import Call, Inquiry, InquiryMessage
from incidents.models import CheckIn, DamageReport
from subscriptions.models import Customer, Invoice, Site, Subscription
from subscriptions.selectors import line_count_of_site
from upgrades.models import SpeedGrant, UpgradeRequest

# Enough to read a customer's recent story; the rest is one click away in the admin.
LIMIT = 20
SITES = 25
LINES_PER_SITE = 10


@dataclass(frozen=True)
class Section:
    rows: list[Any]
    total: int
    # The admin's list of this kind narrowed to the customer ("" when there is none).
    all_url: str = ""

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class CustomerStory:
    customer: Customer
    users: Section
    sites: Section
    grants: Section
    upgrade_requests: Section
    damage_reports: Section
    inquiries: Section
    invoices: Section
    check_ins: Section
    calls: Section


def _changelist(model, **filters) -> str:
    opts = model._meta
    return f"{reverse(f'admin:{opts.app_label}_{opts.model_name}_changelist')}?{urlencode(filters)}"


def _section(queryset, *, limit: int = LIMIT, all_url: str = "") -> Section:
    # COUNT(*) OVER () is computed before LIMIT: every row carries the full total.
    rows = list(queryset.annotate(rows_in_all=Window(Count("pk")))[:limit])
    return Section(rows=rows, total=rows[0].rows_in_all if rows else 0, all_url=all_url)


def customer_story(customer_id: int) -> CustomerStory:
    """Everything about one customer organisation; 404 for an unknown id."""
    customer = get_object_or_404(Customer, pk=customer_id)
    cid = customer.pk
    User = get_user_model()

    sites = (
        Site.objects.filter(customer_id=cid)
        .annotate(line_count=line_count_of_site())
        .order_by("name", "pk")
        .prefetch_related(
            Prefetch(
                "subscriptions",
                # A sliced prefetch: at most LINES_PER_SITE per site, still one query.
                queryset=Subscription.objects.select_related("plan", "speed").order_by(
                    "contract_number", "pk"
                )[:LINES_PER_SITE],
                to_attr="shown_lines",
            )
        )
    )
    last_message = (
        InquiryMessage.objects.filter(inquiry=OuterRef("pk"))
        .order_by("-created_at", "-pk")
        .values("created_at")[:1]
    )

    return CustomerStory(
        customer=customer,
        users=_section(
            User.objects.filter(customer_id=cid).order_by("full_name", "email"),
            all_url=_changelist(User, customer__id__exact=cid),
        ),
        sites=_section(sites, limit=SITES, all_url=_changelist(Site, customer__id__exact=cid)),
        grants=_section(
            SpeedGrant.objects.filter(subscription__site__customer_id=cid)
            .select_related(
                "subscription__site",
                "blanket_upgrade__disaster",
                "upgrade_request",
                "responded_by",
            )
            .order_by("-starts_at", "-pk"),
            all_url=_changelist(SpeedGrant, customer=cid),
        ),
        upgrade_requests=_section(
            UpgradeRequest.objects.filter(customer_id=cid)
            .select_related("assignee", "disaster")
            .prefetch_related(Prefetch("sites", queryset=Site.objects.order_by("name")))
            .order_by("-received_at", "-pk"),
            all_url=_changelist(UpgradeRequest, customer__id__exact=cid),
        ),
        damage_reports=_section(
            DamageReport.objects.filter(site__customer_id=cid)
            .select_related("site", "assignee")
            .prefetch_related("visits")
            .order_by("-received_at", "-pk"),
            all_url=_changelist(DamageReport, customer=cid),
        ),
        inquiries=_section(
            Inquiry.objects.filter(customer_id=cid)
            .select_related("site", "assignee")
            .annotate(last_message_at=Subquery(last_message))
            .order_by("-received_at", "-pk"),
            all_url=_changelist(Inquiry, customer__id__exact=cid),
        ),
        invoices=_section(
            Invoice.objects.filter(customer_id=cid)
            .select_related("subscription")
            .order_by("-number"),
            all_url=_changelist(Invoice, customer__id__exact=cid),
        ),
        # Readiness checks have no admin list: the page says how many more there are.
        check_ins=_section(
            CheckIn.objects.filter(site__customer_id=cid)
            .select_related("site")
            .order_by("-checked_at", "-pk"),
        ),
        # The phone system's calls: all of them in the desk's caller log, for this customer.
        calls=_section(
            Call.objects.filter(customer_id=cid)
            .select_related("callback_by")
            .order_by("-received_at", "-pk"),
            all_url=f"{reverse('desk:calls')}?{urlencode({'customer': cid})}",
        ),
    )
