"""Readiness (FAQ Q1, Q5 (2)): who has not checked their line lately, and asking them to.

Customers are asked at most once per period: monthly for sites not checked in
``READINESS_STALE_DAYS``, and once after each disaster for the sites in its scope.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from incidents.models import CheckIn, Disaster, ReadinessReminder
from subscriptions.models import Site, Subscription
from subscriptions.prefectures import Prefecture
from support.mail import bilingual_from_templates, customer_recipients
from support.outbox import queue_email


def _sites_with_service(now: datetime):
    return Site.objects.filter(
        Exists(
            Subscription.objects.in_service(timezone.localdate(now)).filter(site_id=OuterRef("pk"))
        )
    )


def _recently_checked(now: datetime):
    since = now - timedelta(days=settings.READINESS_STALE_DAYS)
    return Exists(CheckIn.objects.filter(site_id=OuterRef("pk"), checked_at__gte=since))


@dataclass(frozen=True)
class PrefectureReadiness:
    code: str
    name: str
    sites: int
    checked: int

    @property
    def percent(self) -> int:
        return round(100 * self.checked / self.sites) if self.sites else 0


def readiness_by_prefecture(*, now: datetime) -> list[PrefectureReadiness]:
    """Sites in service per prefecture and how many checked recently: one query."""
    rows = (
        _sites_with_service(now)
        .annotate(recent=_recently_checked(now))
        .values("prefecture")
        .annotate(sites=Count("pk"), checked=Count("pk", filter=Q(recent=True)))
        .order_by("prefecture")
    )
    return [
        PrefectureReadiness(
            r["prefecture"], Prefecture(r["prefecture"]).label, r["sites"], r["checked"]
        )
        for r in rows
    ]


def _send(*, customer, sites: list[Site], reason: str, period: str, context: dict, now) -> bool:
    """Record the reminder (once per customer and period) and queue its e-mail in the
    same transaction; the outbox sends it, and retries it if the mail server fails."""
    recipients = customer_recipients(customer)
    subject, body = bilingual_from_templates("incidents/email/readiness", context)
    try:
        with transaction.atomic():
            reminder = ReadinessReminder.objects.create(
                customer=customer,
                reason=reason,
                period=period,
                sites=[site.name for site in sites],
                recipients=recipients,
                sent_at=now,
            )
            queue_email(key=f"readiness:{reminder.pk}", to=recipients, subject=subject, body=body)
    except IntegrityError:
        return False  # already asked for this period
    return True


def _group_by_customer(sites) -> dict:
    grouped = defaultdict(list)
    for site in sites.select_related("customer").order_by("customer_id", "name"):
        grouped[site.customer].append(site)
    return grouped


def remind_unchecked_sites(*, now: datetime) -> int:
    """Monthly: one e-mail per customer listing its sites not checked lately."""
    stale = _sites_with_service(now).exclude(_recently_checked(now))
    period = timezone.localdate(now).strftime("%Y-%m")
    sent = 0
    for customer, sites in _group_by_customer(stale).items():
        context = _context(customer, sites, reason=ReadinessReminder.Reason.NOT_CHECKED)
        sent += _send(customer=customer, sites=sites, reason=ReadinessReminder.Reason.NOT_CHECKED,
                      period=period, context=context, now=now)  # fmt: skip
    return sent


def disasters_due_for_recheck(*, now: datetime) -> list[int]:
    """Disasters ended ``READINESS_RECHECK_AFTER_HOURS`` ago or more whose sites have not
    been asked to re-check yet.

    A day later, not at the end: customers read the "disaster ended" e-mail about their
    lines first, and the equipment check makes sense once things have settled. Derived
    from the disaster's own row, so a lost task or a broker outage only delays it.
    """
    after = timedelta(hours=settings.READINESS_RECHECK_AFTER_HOURS)
    return list(
        Disaster.objects.filter(
            ended_at__lte=now - after,
            # Not a disaster of long ago, ended before this job existed.
            ended_at__gte=now - after - timedelta(days=7),
            recheck_requested_at__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def ask_to_recheck_after_disaster(*, disaster_id: int, now: datetime) -> int:
    """After a disaster ended, ask every customer in its scope to check its equipment
    (once per customer and disaster), then mark the disaster as asked."""
    disaster = Disaster.objects.get(pk=disaster_id)
    sites = _sites_with_service(now).filter(disaster.covers("prefecture"))
    sent = 0
    for customer, customer_sites in _group_by_customer(sites).items():
        context = _context(
            customer,
            customer_sites,
            reason=ReadinessReminder.Reason.AFTER_DISASTER,
            disaster=disaster,
        )
        sent += _send(customer=customer, sites=customer_sites,
                      reason=ReadinessReminder.Reason.AFTER_DISASTER,
                      period=f"disaster-{disaster.pk}", context=context, now=now)  # fmt: skip
    Disaster.objects.filter(pk=disaster.pk, recheck_requested_at__isnull=True).update(
        recheck_requested_at=now
    )
    return sent


def _context(customer, sites, *, reason, disaster=None) -> dict:
    return {
        "customer": customer,
        "sites": sites,
        "reason": reason,
        "disaster": disaster,
        "portal_url": settings.PORTAL_BASE_URL + "/",
        "support_phone": settings.SUPPORT_PHONE,
    }
