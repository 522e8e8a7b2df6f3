"""Reads for the portal's own pages."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Min, OuterRef, Prefetch, Q, QuerySet, Subquery

from incidents.models import CheckIn
from portal.models import Heartbeat
from portal.services import RECENT
from portal.tasks import HEARTBEAT_NAME
from subscriptions.models import OutOfSyncTally, Site, Subscription
from subscriptions.selectors import line_count_of_site
from support.models import FollowUp, OutboundEmail
from upgrades.models import BlanketUpgrade, CustomerNotice, SpeedGrant


@dataclass(frozen=True)
class SchedulerStatus:
    last_beat: datetime | None
    fresh: bool
    # Heartbeats in the last ten minutes; one beat process gives about ten.
    recent_beats: int = 0

    @property
    def several_beats(self) -> bool:
        expected = RECENT.total_seconds() / settings.CELERY_BEAT_SCHEDULE["heartbeat"]["schedule"]
        return self.recent_beats > expected * 1.5


def scheduler_status(*, now: datetime) -> SchedulerStatus:
    row = Heartbeat.objects.filter(name=HEARTBEAT_NAME).values_list("beat_at", "recent").first()
    beat, recent = row if row else (None, [])
    fresh = beat is not None and now - beat <= settings.HEARTBEAT_STALE_AFTER
    recent_beats = sum(datetime.fromisoformat(b) > now - RECENT for b in recent)
    return SchedulerStatus(last_beat=beat, fresh=fresh, recent_beats=recent_beats)


@dataclass(frozen=True)
class Backlog:
    """Work waiting for the workers: what an operator looks at when something is stuck."""

    follow_ups_waiting: int
    oldest_follow_up_at: datetime | None
    emails_queued: int
    oldest_email_queued_at: datetime | None
    emails_failed: int
    lines_out_of_sync: int
    declarations_granting: int
    notices_not_handed_over: int

    def as_dict(self, now: datetime) -> dict:
        oldest = self.oldest_email_queued_at
        oldest_follow_up = self.oldest_follow_up_at
        return {
            "follow_ups_waiting": self.follow_ups_waiting,
            "oldest_follow_up_waiting_seconds": round((now - oldest_follow_up).total_seconds())
            if oldest_follow_up
            else None,
            "emails_queued": self.emails_queued,
            "oldest_email_waiting_seconds": round((now - oldest).total_seconds())
            if oldest
            else None,
            "emails_failed": self.emails_failed,
            "lines_out_of_sync": self.lines_out_of_sync,
            "declarations_granting": self.declarations_granting,
            "notices_not_handed_over": self.notices_not_handed_over,
        }


def backlog() -> Backlog:
    """Six small queries, each on a partial or status index: cheap enough for /healthz."""
    follow_ups = FollowUp.objects.aggregate(count=Count("pk"), oldest=Min("created_at"))
    queued = OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    return Backlog(
        follow_ups_waiting=follow_ups["count"],
        oldest_follow_up_at=follow_ups["oldest"],
        emails_queued=queued["count"],
        oldest_email_queued_at=queued["oldest"],
        emails_failed=OutboundEmail.objects.filter(status=OutboundEmail.Status.FAILED).count(),
        lines_out_of_sync=OutOfSyncTally.objects.total(),
        declarations_granting=BlanketUpgrade.objects.filter(
            status=BlanketUpgrade.Status.APPLYING
        ).count(),
        notices_not_handed_over=CustomerNotice.objects.filter(queued_at__isnull=True).count(),
    )


# The customer home over the satellite line: a page of sites, a few lines each. A
# customer with 2,000 lines gets a summary and one page of 20 sites, not 1.2 MB of HTML.
HOME_SITES_PER_PAGE = 20
HOME_LINES_PER_SITE = 10
SITE_LINES_PER_PAGE = 50


@dataclass(frozen=True)
class LineSummary:
    """The customer's lines counted by what they read on the home page."""

    total: int
    in_service: int
    upgraded: int
    expiring_soon: int
    pending_answers: int


def line_summary(*, customer_id: int, today: date) -> LineSummary:
    """Two queries whatever the number of lines; the same states as
    ``Subscription.state_on`` (in service covers expiring soon and extended)."""
    active = Q(status=Subscription.Status.ACTIVE)
    in_service = active & (Q(term_end__gt=today) | Q(extended_until__gte=today))
    horizon = today + timedelta(days=settings.EXPIRING_SOON_DAYS)
    no_extension = Q(extended_until__isnull=True) | Q(extended_until__lt=F("term_end"))
    expiring_soon = (
        active
        & Q(term_end__gt=today)
        & (
            (no_extension & Q(term_end__lte=horizon))
            | Q(extended_until__gte=F("term_end"), extended_until__lt=horizon)
        )
    )
    counts = Subscription.objects.for_customer(customer_id).aggregate(
        total=Count("pk"),
        in_service=Count("pk", filter=in_service),
        upgraded=Count("pk", filter=in_service & Q(speed__applied_upgraded=True)),
        expiring_soon=Count("pk", filter=expiring_soon),
    )
    pending = (
        SpeedGrant.objects.for_customer(customer_id).filter(state=SpeedGrant.State.PENDING).count()
    )
    return LineSummary(**counts, pending_answers=pending)


def sites_with_subscriptions(
    *, customer_id: int, lines_per_site: int | None = HOME_LINES_PER_SITE
) -> QuerySet[Site]:
    """The customer's sites, each with its number of lines, its first ``lines_per_site``
    lines (newest first, in ``shown_lines``) with their plans, and the time of its last
    readiness check: two queries for a page of sites, whatever their size."""
    last_check = CheckIn.objects.filter(site_id=OuterRef("pk")).order_by("-checked_at")
    lines = Subscription.objects.select_related("plan").order_by("-service_start", "pk")
    if lines_per_site is not None:
        lines = lines[:lines_per_site]
    return (
        Site.objects.filter(customer_id=customer_id)
        .annotate(
            last_checked_at=Subquery(last_check.values("checked_at")[:1]),
            line_count=line_count_of_site(),
        )
        .prefetch_related(Prefetch("subscriptions", queryset=lines, to_attr="shown_lines"))
    )
