"""Reconciling: move each line's speed on the network towards the wanted one.

A run takes a batch of out-of-sync lines under a short lease (committed, so no database
transaction stays open while the network is called), sends the batch, and records what
the network confirmed. If the network fails, the leases are released and the error goes
up so the task retries with backoff; nothing is marked applied that was not. Re-running
once everything agrees changes nothing.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from subscriptions.models import Subscription
from upgrades.models import ProvisioningChange
from upgrades.provisioning import ProvisioningUnavailable, SpeedChange
from upgrades.services.requests import mark_applied_requests


@dataclass(frozen=True)
class ReconcileResult:
    applied: int
    batches: int


def _claim_batch(*, now: datetime, batch_size: int, lease: timedelta) -> list[dict]:
    with transaction.atomic():
        rows = list(
            Subscription.objects.out_of_sync()
            .filter(Q(provisioning_lease_until__isnull=True) | Q(provisioning_lease_until__lt=now))
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .values(
                "pk",
                "contract_number",
                "desired_upgraded",
                "desired_version",
                "desired_cause",
                "applied_upgraded",
                "plan__normal_kbps",
                "plan__upgraded_kbps",
            )[:batch_size]
        )
        if rows:
            Subscription.objects.filter(pk__in=[row["pk"] for row in rows]).update(
                provisioning_lease_until=now + lease
            )
    return rows


def _speed(row: dict, upgraded: bool) -> int:
    return row["plan__upgraded_kbps"] if upgraded else row["plan__normal_kbps"]


def reconcile_speeds(
    *, backend, now: datetime, batch_size: int | None = None, max_batches: int | None = None
) -> ReconcileResult:
    """Push every out-of-sync line's wanted speed to the network, batch by batch."""
    batch_size = batch_size or settings.PROVISIONING_BATCH_SIZE
    lease = timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)
    applied = batches = 0
    started = time.monotonic()
    while max_batches is None or batches < max_batches:
        # The lease runs from this claim, not from the start of a long run.
        claimed_at = now + timedelta(seconds=time.monotonic() - started)
        rows = _claim_batch(now=claimed_at, batch_size=batch_size, lease=lease)
        if not rows:
            break
        ids = [row["pk"] for row in rows]
        try:
            backend.apply(
                [
                    SpeedChange(
                        change_id=f"{row['pk']}-{row['desired_version']}",
                        line=row["contract_number"],
                        speed_kbps=_speed(row, row["desired_upgraded"]),
                    )
                    for row in rows
                ]
            )
        except ProvisioningUnavailable:
            Subscription.objects.filter(pk__in=ids).update(provisioning_lease_until=None)
            raise
        batch = uuid.uuid4()
        with transaction.atomic():
            for upgraded in (True, False):
                Subscription.objects.filter(
                    pk__in=[row["pk"] for row in rows if row["desired_upgraded"] is upgraded]
                ).update(applied_upgraded=upgraded, provisioning_lease_until=None)
            ProvisioningChange.objects.bulk_create(
                [
                    ProvisioningChange(
                        subscription_id=row["pk"],
                        version=row["desired_version"],
                        upgraded=row["desired_upgraded"],
                        from_kbps=_speed(row, row["applied_upgraded"]),
                        to_kbps=_speed(row, row["desired_upgraded"]),
                        cause=row["desired_cause"] or "-",
                        batch=batch,
                        applied_at=now,
                    )
                    for row in rows
                ],
                ignore_conflicts=True,
            )
        applied += len(rows)
        batches += 1
    # Also when nothing was pushed: a request whose lines were already fast is applied.
    mark_applied_requests(now=now)
    return ReconcileResult(applied=applied, batches=batches)
