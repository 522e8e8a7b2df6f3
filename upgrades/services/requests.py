"""Upgrade requests: a customer asks for speed, support approves, the line is upgraded.

new → approved → applied → ended, or new → rejected / cancelled. Each move is a
conditional update on the request's status, recorded as an event the customer sees.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.contacts import arrival
from subscriptions.models import Site, Subscription
from support.channels import Channel
from support.contacts import record_first_response
from support.merging import check_merge, lock_pair, tell_customer_merged
from support.services import alert_on_call
from upgrades.models import CustomerNotice, SpeedGrant, UpgradeRequest, UpgradeRequestEvent
from upgrades.services.notices import queue_request_notice
from upgrades.services.speeds import (
    enqueue_follow_ups,
    lower_desired_speeds,
    raise_desired_speeds,
)

Status = UpgradeRequest.Status


def _record(upgrade_request: UpgradeRequest, status: str, *, by, now, note: str = "") -> None:
    UpgradeRequestEvent.objects.create(
        upgrade_request=upgrade_request, status=status, at=now, by=by, note=note
    )


def _move(upgrade_request: UpgradeRequest, *, from_: set[str], to: str, **fields) -> None:
    moved = UpgradeRequest.objects.filter(pk=upgrade_request.pk, status__in=from_).update(
        status=to, **fields
    )
    if not moved:
        upgrade_request.refresh_from_db(fields=["status"])
        raise ValidationError(
            _("This request is %(status)s and cannot be changed that way.")
            % {"status": upgrade_request.get_status_display()}
        )
    upgrade_request.refresh_from_db()


def request_upgrade(
    *,
    customer,
    sites: list[Site],
    reason: str,
    note: str = "",
    channel: Channel | str,
    requested_by=None,
    recorded_by=None,
    contact_name: str = "",
    contact_phone: str = "",
    now: datetime,
) -> UpgradeRequest:
    """Record a request for speed at some of a customer's sites.

    Every site must be the customer's and have a line in service. The request is linked
    to an active disaster that covers one of its sites, so support can sort by it.
    """
    check_sites_can_be_upgraded(customer=customer, sites=sites, today=timezone.localdate(now))
    with transaction.atomic():
        upgrade_request = UpgradeRequest.objects.create(
            customer=customer,
            reason=reason,
            note=note,
            channel=channel,
            requested_by=requested_by,
            recorded_by=recorded_by,
            contact_name=contact_name,
            contact_phone=contact_phone,
            **arrival(prefectures={site.prefecture for site in sites}, now=now),
        )
        upgrade_request.sites.set(sites)
        _record(upgrade_request, Status.NEW, by=requested_by or recorded_by, now=now, note=note)
        if upgrade_request.after_hours:
            alert_on_call(
                contact_kind="upgrade_request",
                contact_id=upgrade_request.pk,
                summary=_("Upgrade request #%(number)s from %(customer)s (%(sites)s)")
                % {
                    "number": upgrade_request.pk,
                    "customer": customer.name,
                    "sites": ", ".join(site.name for site in sites),
                },
                url=reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk]),
                received_at=now,
            )
    return upgrade_request


def check_sites_can_be_upgraded(*, customer, sites: list[Site], today) -> None:
    """Every site must be the customer's and have a line in service (ValidationError)."""
    if not sites:
        raise ValidationError({"sites": _("Choose at least one site.")})
    if any(site.customer_id != customer.pk for site in sites):
        raise ValidationError({"sites": _("Choose only your own organisation's sites.")})
    in_service = set(
        Subscription.objects.in_service(today)
        .filter(site__in=sites)
        .values_list("site_id", flat=True)
    )
    without = [site.name for site in sites if site.pk not in in_service]
    if without:
        raise ValidationError(
            {"sites": _("No subscription in service at: %s") % ", ".join(without)}
        )


def cancel_upgrade_request(*, upgrade_request: UpgradeRequest, by, now: datetime) -> None:
    """The customer withdraws a request nobody has decided on yet."""
    with transaction.atomic():
        _move(upgrade_request, from_={Status.NEW}, to=Status.CANCELLED, ended_at=now)
        _record(upgrade_request, Status.CANCELLED, by=by, now=now)


def approve_upgrade_request(
    *, upgrade_request: UpgradeRequest, by, now: datetime, note: str = ""
) -> list[SpeedGrant]:
    """Support approves: every in-service line at the requested sites gets a grant."""
    with transaction.atomic():
        _move(
            upgrade_request,
            from_={Status.NEW},
            to=Status.APPROVED,
            decided_at=now,
            decided_by=by,
            decision_note=note,
        )
        lines = Subscription.objects.in_service(timezone.localdate(now)).filter(
            site__in=upgrade_request.sites.all()
        )
        SpeedGrant.objects.bulk_create(
            [
                SpeedGrant(
                    subscription_id=line_id,
                    source=SpeedGrant.Source.REQUEST,
                    upgrade_request=upgrade_request,
                    state=SpeedGrant.State.ACTIVE,
                    starts_at=now,
                )
                for line_id in lines.values_list("pk", flat=True)
            ],
            ignore_conflicts=True,
        )
        grants = list(upgrade_request.grants.all())
        raise_desired_speeds(
            subscription_ids=[grant.subscription_id for grant in grants],
            cause=f"upgrade request {upgrade_request.pk} approved by {by.email}",
        )
        _record(upgrade_request, Status.APPROVED, by=by, now=now, note=note)
        record_first_response(upgrade_request, now=now)
        queue_request_notice(
            kind=CustomerNotice.Kind.REQUEST_APPROVED, upgrade_request=upgrade_request, now=now
        )
        enqueue_follow_ups()
    return grants


def reject_upgrade_request(
    *, upgrade_request: UpgradeRequest, by, now: datetime, reason: str
) -> None:
    """Support declines a request; the customer is told why."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the request is rejected.")})
    with transaction.atomic():
        _move(
            upgrade_request,
            from_={Status.NEW},
            to=Status.REJECTED,
            decided_at=now,
            decided_by=by,
            decision_note=reason,
            ended_at=now,
        )
        _record(upgrade_request, Status.REJECTED, by=by, now=now, note=reason)
        record_first_response(upgrade_request, now=now)
        queue_request_notice(
            kind=CustomerNotice.Kind.REQUEST_REJECTED, upgrade_request=upgrade_request, now=now
        )


def end_upgrade_request(*, upgrade_request: UpgradeRequest, by, now: datetime) -> None:
    """The upgrade is no longer needed: its grants end and the lines slow down."""
    with transaction.atomic():
        _move(
            upgrade_request, from_={Status.APPROVED, Status.APPLIED}, to=Status.ENDED, ended_at=now
        )
        grants = upgrade_request.grants.boosting()
        line_ids = list(grants.values_list("subscription_id", flat=True))
        grants.update(state=SpeedGrant.State.ENDED, ended_at=now)
        lower_desired_speeds(
            subscription_ids=line_ids,
            cause=f"upgrade request {upgrade_request.pk} ended by {by.email if by else 'staff'}",
        )
        _record(upgrade_request, Status.ENDED, by=by, now=now)
        enqueue_follow_ups()


# A request still in the desk's hands, which a duplicate can join.
REQUEST_MERGE_TARGETS = UpgradeRequest.OPEN_STATUSES


def merge_upgrade_requests(
    *, duplicate: UpgradeRequest, into: UpgradeRequest, by, now: datetime
) -> None:
    """Merge a request nobody has decided on into another of the same customer about the
    same matter (support/merging.py says which merges are refused).

    The duplicate is withdrawn with an event "merged into #N" the customer sees; its
    sites join the target while the target is still new (an approved target's grants are
    decided: support approves the duplicate's sites as a new request if needed). The
    customer is e-mailed once; nothing more is sent about the duplicate.
    """
    with transaction.atomic():
        duplicate, into = lock_pair(UpgradeRequest.objects, duplicate, into)
        check_merge(
            duplicate=duplicate,
            into=into,
            same_customer=duplicate.customer_id == into.customer_id,
            into_statuses=REQUEST_MERGE_TARGETS,
        )
        _move(duplicate, from_={Status.NEW}, to=Status.CANCELLED, ended_at=now, merged_into=into)
        _record(
            duplicate,
            Status.CANCELLED,
            by=by,
            now=now,
            note=_("Merged into request #%(number)s.") % {"number": into.pk},
        )
        sites = list(duplicate.sites.all())
        added = []
        if into.status == Status.NEW:
            already = set(into.sites.values_list("pk", flat=True))
            added = [site for site in sites if site.pk not in already]
            into.sites.add(*added)
        _record(
            into,
            into.status,
            by=by,
            now=now,
            note=_("Request #%(number)s merged into this one (sites added: %(sites)s).")
            % {
                "number": duplicate.pk,
                "sites": ", ".join(site.name for site in added) or "-",
            },
        )
        tell_customer_merged(
            duplicate=duplicate,
            into=into,
            customer=into.customer,
            url_path=reverse("upgrades:request", args=[into.pk]),
            now=now,
        )


def mark_applied_requests(*, now: datetime) -> int:
    """Approved requests whose every line runs fast on the network are *applied*."""
    lagging = SpeedGrant.objects.boosting().filter(
        upgrade_request_id=OuterRef("pk"), subscription__speed__applied_upgraded=False
    )
    with transaction.atomic():
        ids = list(
            UpgradeRequest.objects.filter(status=Status.APPROVED)
            .exclude(Exists(lagging))
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)
        )
        moved = UpgradeRequest.objects.filter(pk__in=ids, status=Status.APPROVED).update(
            status=Status.APPLIED
        )
        UpgradeRequestEvent.objects.bulk_create(
            [
                UpgradeRequestEvent(upgrade_request_id=pk, status=Status.APPLIED, at=now)
                for pk in ids
            ]
        )
    return moved
