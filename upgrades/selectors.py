"""Reads for the upgrade pages, each a fixed number of queries."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext

from subscriptions.models import LineSpeed, OutOfSyncTally, Site, Subscription
from upgrades.models import BlanketUpgrade, BlanketUpgradeTally, SpeedGrant, UpgradeRequest

BANNER_LINES = 5


def pending_grants_for_customer(*, customer_id: int) -> list[SpeedGrant]:
    """The customer's blanket grants waiting for an answer (the banner on every page).

    At most BANNER_LINES + 1 rows: the banner lists a few and offers "all" for the rest,
    so a large organisation's every page stays small over the satellite line.
    """
    return list(
        SpeedGrant.objects.for_customer(customer_id)
        .filter(state=SpeedGrant.State.PENDING)
        .annotate(kept_by_other=Exists(_other_boosting_grant()))
        .select_related("subscription__site", "blanket_upgrade__disaster")
        .order_by("blanket_upgrade__deadline", "subscription__site__name")[: BANNER_LINES + 1]
    )


def _other_boosting_grant():
    """Another grant keeping the same line upgraded (a request, another disaster)."""
    return (
        SpeedGrant.objects.boosting()
        .filter(subscription_id=OuterRef("subscription_id"))
        .exclude(pk=OuterRef("pk"))
    )


def grants_for_customer(*, customer_id: int) -> QuerySet[SpeedGrant]:
    return (
        SpeedGrant.objects.for_customer(customer_id)
        .select_related(
            "subscription__site",
            "subscription__plan",
            "subscription__speed",
            "blanket_upgrade__disaster",
        )
        .order_by("-starts_at", "-pk")
    )


def requests_for_customer(*, customer_id: int) -> QuerySet[UpgradeRequest]:
    return (
        UpgradeRequest.objects.filter(customer_id=customer_id)
        .prefetch_related("sites", "events")
        .order_by("-received_at", "-pk")
    )


def sites_that_can_be_upgraded(*, customer_id: int, today) -> QuerySet[Site]:
    in_service = Subscription.objects.in_service(today).filter(site_id=OuterRef("pk"))
    return Site.objects.filter(customer_id=customer_id).filter(Exists(in_service)).order_by("name")


@dataclass(frozen=True)
class BlanketProgress:
    total: int
    pending: int
    confirmed: int
    declined: int
    reverted: int
    ended: int
    caught_up: int
    # Too many lines wait for the network to count them at each poll: caught_up is then
    # the grants less the lines waiting anywhere (blanket_progress).
    estimated: bool = False

    @property
    def percent_caught_up(self) -> int:
        return round(100 * self.caught_up / self.total) if self.total else 0

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "pending": self.pending,
            "confirmed": self.confirmed,
            "declined": self.declined,
            "reverted": self.reverted,
            "ended": self.ended,
            "caught_up": self.caught_up,
            "caught_up_estimated": self.estimated,
            "caught_up_about": gettext("about") if self.estimated else "",
            "percent_caught_up": self.percent_caught_up,
        }


def blanket_progress(*, blanket: BlanketUpgrade) -> BlanketProgress:
    """Grants by state and lines whose network speed matches what the grant wants.

    The states come from the blanket's tally rows, kept by the transitions themselves
    (BlanketUpgradeTally): a few rows, whatever the number of grants. "Caught up" is the
    blanket's grants less those whose line is out of sync (a boosting grant's line is
    wanted upgraded, DESIGN invariant 2, so it is caught up once applied). How many
    lines wait for the network at all is a tally too (OutOfSyncTally): none, and every
    grant is caught up; up to PROGRESS_EXACT_UP_TO, the blanket's are counted on the
    out-of-sync index (reading at most that many); more, and the page says "about":
    the lines waiting anywhere, at most the blanket's grants — while a nationwide
    declaration is being applied, nearly all of them are its own.
    """
    counts = BlanketUpgradeTally.objects.filter(blanket_upgrade=blanket).aggregate(
        **{state: Coalesce(Sum(state), 0) for state in BlanketUpgradeTally.STATES}
    )
    total = sum(counts.values())
    waiting_anywhere = OutOfSyncTally.objects.total()
    exact_up_to = settings.PROGRESS_EXACT_UP_TO
    if waiting_anywhere <= 0:
        return BlanketProgress(total=total, caught_up=total, **counts)
    if waiting_anywhere > exact_up_to:
        waiting = min(waiting_anywhere, total)
        return BlanketProgress(total=total, caught_up=total - waiting, estimated=True, **counts)
    of_blanket = SpeedGrant.objects.filter(
        blanket_upgrade=blanket, subscription_id=OuterRef("subscription_id")
    )
    waiting = (
        LineSpeed.objects.out_of_sync()
        .filter(Exists(of_blanket))
        # In the index's order: the plan reads the out-of-sync index, however stale the
        # statistics (a declaration's "every line out of sync" outlives it).
        .order_by("provisioning_failures", "subscription_id")[:exact_up_to]
        .count()
    )
    return BlanketProgress(total=total, caught_up=total - waiting, **counts)


def disasters_for_dashboard():
    return BlanketUpgrade.objects.select_related("disaster").order_by("-created_at")[:20]


@dataclass(frozen=True)
class EndingPreview:
    """What ending a disaster does to its lines, for the operator's confirmation."""

    still_upgraded: int
    kept_by_other_grant: int

    @property
    def back_to_normal(self) -> int:
        return self.still_upgraded - self.kept_by_other_grant


def other_active_blankets(*, blanket_id: int, now) -> list[BlanketUpgrade]:
    """Blanket upgrades of other disasters still waiting for answers (a handful at most)."""
    return list(
        BlanketUpgrade.objects.filter(
            status__in=[BlanketUpgrade.Status.APPLYING, BlanketUpgrade.Status.ACTIVE],
            deadline__gt=now,
        )
        .exclude(pk=blanket_id)
        .select_related("disaster")
        .order_by("pk")
    )


def ending_preview(*, blanket: BlanketUpgrade, now) -> EndingPreview:
    """Lines the blanket still boosts, and how many of them stay fast after it ends: kept
    by another boosting grant (an approved request, another disaster), or in the area of
    another active disaster, which takes them over. One aggregate."""
    kept = SpeedGrant.objects.filter(
        subscription_id=OuterRef("subscription_id"), state__in=SpeedGrant.BOOSTING
    ).exclude(blanket_upgrade_id=blanket.pk)
    others = other_active_blankets(blanket_id=blanket.pk, now=now)
    if any(other.disaster.nationwide for other in others):
        covered = Q(pk__isnull=False)
    else:
        areas = {code for other in others for code in other.disaster.prefectures}
        covered = Q(subscription__site__prefecture__in=areas)
    counts = (
        SpeedGrant.objects.filter(blanket_upgrade=blanket, state__in=SpeedGrant.BOOSTING)
        .annotate(kept=Exists(kept))
        .aggregate(
            still_upgraded=Count("pk"),
            kept_by_other_grant=Count("pk", filter=Q(kept=True) | covered),
        )
    )
    return EndingPreview(**counts)
