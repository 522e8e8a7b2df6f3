"""Reconciling: move each line's speed on the network towards the wanted one.

A run claims a batch of due out-of-sync lines under a short lease (committed, so no
database transaction stays open while the network is called), sends the batch, and records
what the network confirmed; nothing is marked applied that was not. Re-running once
everything agrees changes nothing.

The network may be down, or sick for some lines only. A batch it fails (an error, a refused
connection, a timeout) is set aside: the lease becomes a backoff that doubles with each
failure in a row, capped and jittered, and no run claims those lines before it ends. The
run goes on with other lines, lines that failed least first, so one slow batch does not
hold back the rest; after a few failed batches it gives up, as the network is then likely
down for everyone. A reconcile asked for by each commit during an outage thus finds the
failed lines not yet due and POSTs nothing for them: POSTs grow with the outage's length,
not with the number of commits. While lines wait out a backoff, a run ends by raising
``ReconcileIncomplete`` so that its caller comes back.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, CharField, Min
from django.db.models.expressions import RawSQL
from django.utils import timezone

from subscriptions.models import LineSpeed, OutOfSyncTally
from support.followups import keep_alive
from upgrades.bulk import bool_array, int_array, text_array, update_returning
from upgrades.models import ProvisioningChange
from upgrades.provisioning import ProvisioningUnavailable, SpeedChange
from upgrades.services.requests import mark_applied_requests

logger = logging.getLogger(__name__)

# LineSpeed.provisioning_failures is a PositiveSmallIntegerField; the backoff is capped
# long before, so the count only has to stay in range.
MAX_COUNTED_FAILURES = 32767


@dataclass(frozen=True)
class ReconcileResult:
    applied: int  # changes the network confirmed
    batches: int  # batches the network confirmed
    set_aside: int = 0  # batches the network failed in this run
    more: bool = False  # the run stopped on a budget while lines were still due
    # When the first line the network failed (in this run or before) ends its backoff.
    retry_at: datetime | None = None


class ReconcileIncomplete(ProvisioningUnavailable):
    """Lines wait out a backoff after the network failed them; try again at ``retry_at``.

    What the run did push is recorded; ``result`` says how much.
    """

    def __init__(self, result: ReconcileResult):
        super().__init__(
            f"{result.set_aside} batch(es) set aside, {result.applied} change(s) applied, "
            f"lines wait until {timezone.localtime(result.retry_at):%H:%M:%S}"
        )
        self.result = result


def set_aside_delay(failures: int) -> timedelta:
    """How long lines the network failed ``failures`` times in a row wait before a retry.

    The delay doubles from PROVISIONING_BACKOFF_BASE_SECONDS up to
    PROVISIONING_BACKOFF_MAX_SECONDS; "equal jitter" keeps half of it and draws the other
    half at random, so batches that failed together come back spread out, and never
    sooner than half the delay.
    """
    ceiling = settings.PROVISIONING_BACKOFF_MAX_SECONDS
    delay = min(ceiling, settings.PROVISIONING_BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 30))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 (not a secret)


def _claim_batch(
    *, now: datetime, batch_size: int, lease_until: datetime, after: tuple[int, int] | None = None
) -> list[dict]:
    due = (
        LineSpeed.objects.due_for_provisioning(now)
        # Lines the network failed least go first: a batch that keeps failing waits
        # behind the others instead of using up every run's attempts.
        .order_by("provisioning_failures", "subscription_id")
    )
    if after is not None:
        # Where the run's last batch ended, in the claim's own order: each batch reads
        # the out-of-sync index from there, not again past every line already applied
        # (whose index entries stay until a vacuum).
        due = due.filter(
            RawSQL(
                '("subscriptions_linespeed"."provisioning_failures",'
                ' "subscriptions_linespeed"."subscription_id") > (%s, %s)',
                after,
                output_field=BooleanField(),
            )
        )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _claim_batch_in_one_statement(
                due, batch_size=batch_size, lease_until=lease_until
            )
        rows = list(
            due.select_for_update(skip_locked=True, of=("self",)).values(*CLAIMED)[:batch_size]
        )
        if rows:
            LineSpeed.objects.filter(
                subscription_id__in=[row["subscription_id"] for row in rows]
            ).update(provisioning_lease_until=lease_until)
    return rows


# What a claim reads of each line: enough to push it and to audit it afterwards.
CLAIMED = (
    "subscription_id",
    "subscription__contract_number",
    "desired_upgraded",
    "desired_version",
    "desired_cause",
    "applied_upgraded",
    "provisioning_failures",
    "subscription__plan__normal_kbps",
    "subscription__plan__upgraded_kbps",
)


def _claim_batch_in_one_statement(due, *, batch_size: int, lease_until: datetime) -> list[dict]:
    """PostgreSQL: the batch is locked (SKIP LOCKED), leased and read by one UPDATE …
    RETURNING: no id list goes back to the database. The due lines' condition is the
    queryset's own SQL, so the claim keeps using the out-of-sync index.

    The subquery hands the UPDATE each locked row's physical address (``ctid``), which it
    reads directly (a TID scan) instead of finding every line again in the key's index.
    A line changed by another transaction since this statement began is locked in its
    new version, which the UPDATE does not see: it is left out of this batch and stays
    due for the next claim."""
    locked, params = (
        due.select_for_update(skip_locked=True)
        .annotate(line_tid=RawSQL('"subscriptions_linespeed".ctid', (), output_field=CharField()))
        .values("line_tid")[:batch_size]
        .query.sql_with_params()
    )
    # The subquery is Django's compiled SQL; every value stays a parameter.
    claim = (
        "UPDATE subscriptions_linespeed ls SET provisioning_lease_until = %s"  # noqa: S608
        f" FROM ({locked}) due (line_tid), subscriptions_subscription s, subscriptions_plan p"
        " WHERE ls.ctid = due.line_tid AND s.id = ls.subscription_id AND p.id = s.plan_id"
        " RETURNING ls.subscription_id, s.contract_number, ls.desired_upgraded,"
        " ls.desired_version, ls.desired_cause, ls.applied_upgraded,"
        " ls.provisioning_failures, p.normal_kbps, p.upgraded_kbps"
    )
    with connection.cursor() as cursor:
        cursor.execute(claim, [lease_until, *params])
        rows = [dict(zip(CLAIMED, row, strict=True)) for row in cursor.fetchall()]
    # RETURNING keeps no order: the batch goes to the network in the claim's order.
    rows.sort(key=lambda row: (row["provisioning_failures"], row["subscription_id"]))
    return rows


def _speed(row: dict, upgraded: bool) -> int:
    return (
        row["subscription__plan__upgraded_kbps"]
        if upgraded
        else row["subscription__plan__normal_kbps"]
    )


def _set_aside(
    rows: list[dict], *, failed_at: datetime, error: Exception, lease_until: datetime
) -> None:
    # The batch keeps together: one failure count (its worst line's) and one return time,
    # so it comes back as one POST rather than as lines scattered over many. Lines another
    # run took once this run's lease ran out are that run's (see _record_applied).
    failures = min(max(row["provisioning_failures"] for row in rows) + 1, MAX_COUNTED_FAILURES)
    delay = set_aside_delay(failures)
    LineSpeed.objects.filter(
        subscription_id__in=[row["subscription_id"] for row in rows],
        provisioning_lease_until=lease_until,
    ).update(provisioning_lease_until=failed_at + delay, provisioning_failures=failures)
    logger.warning(
        "provisioning: %d line(s) set aside for %d s after %d failure(s) in a row: %s",
        len(rows),
        delay.total_seconds(),
        failures,
        error,
    )


def _record_applied(rows: list[dict], *, now: datetime, lease_until: datetime) -> None:
    """The network took the batch: each line's applied speed is the one it was sent (a
    change wanted since is pushed by a later batch), and one audit row per change.

    Only the lines this run still holds are recorded: those whose lease is still the one
    its claim wrote (``lease_until``). A line whose lease ran out while the network took
    the batch may have been claimed, pushed and recorded by another run; that run
    records it, so no change is audited or counted twice and no conflict check is paid
    per row. The audit's unique (line, version) index stays as the last guard: a
    duplicate would now fail the batch's record (an error the task retries) rather than
    be skipped.

    The claimed lines were out of sync: each comes back into sync (one fewer waiting for
    the network, OutOfSyncTally) unless its wanted speed changed since the claim."""
    batch = uuid.uuid4()
    causes = [row["desired_cause"] or "-" for row in rows]
    if connection.vendor == "postgresql":
        # One statement from arrays of the batch's values (in their text form, see
        # upgrades/bulk.py): no model object per row. The lease travels as a column of
        # the (materialized) batch, compared in the join: as a constant it would be a
        # filter on the speed table that its statistics (leases are mostly NULL) call
        # nearly empty, and the planner would scan the table for it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH sent AS MATERIALIZED (SELECT *, %s::timestamptz AS lease"
                "   FROM unnest(%s::bigint[], %s::integer[],"
                "   %s::boolean[], %s::integer[], %s::integer[], %s::varchar[])"
                "   AS sent (id, version, upgraded, from_kbps, to_kbps, cause)),"
                " applied AS (UPDATE subscriptions_linespeed s"
                "   SET applied_upgraded = sent.upgraded, provisioning_lease_until = NULL,"
                "       provisioning_failures = 0"
                "   FROM sent WHERE s.subscription_id = sent.id"
                "   AND s.provisioning_lease_until = sent.lease"
                "   RETURNING sent.*, s.desired_upgraded = sent.upgraded AS in_sync),"
                " tallied AS (INSERT INTO subscriptions_outofsynctally (slot, lines)"
                "   SELECT %s, coalesce(sum(CASE WHEN in_sync THEN -1 ELSE 1 END), 0)"
                "   FROM applied ON CONFLICT (slot) DO UPDATE"
                "   SET lines = subscriptions_outofsynctally.lines + excluded.lines)"
                " INSERT INTO upgrades_provisioningchange (subscription_id, version, upgraded,"
                "  from_kbps, to_kbps, cause, batch, applied_at)"
                " SELECT id, version, upgraded, from_kbps, to_kbps, cause, %s, %s FROM applied",
                [
                    lease_until,
                    int_array(row["subscription_id"] for row in rows),
                    int_array(row["desired_version"] for row in rows),
                    bool_array(row["desired_upgraded"] for row in rows),
                    int_array(_speed(row, row["applied_upgraded"]) for row in rows),
                    int_array(_speed(row, row["desired_upgraded"]) for row in rows),
                    text_array(causes),
                    random.randrange(OutOfSyncTally.SLOTS),  # noqa: S311 (spreads, not secret)
                    batch,
                    now,
                ],
            )
        return
    with transaction.atomic():
        # The lines still held, read in the transaction that updates them (SQLite lets
        # no other writer commit in between).
        held = set(
            LineSpeed.objects.filter(
                subscription_id__in=[row["subscription_id"] for row in rows],
                provisioning_lease_until=lease_until,
            ).values_list("subscription_id", flat=True)
        )
        kept = [
            (row, cause)
            for row, cause in zip(rows, causes, strict=True)
            if row["subscription_id"] in held
        ]
        for upgraded in (True, False):
            wanted_now = update_returning(
                LineSpeed.objects.filter(
                    subscription_id__in=[
                        row["subscription_id"]
                        for row, _ in kept
                        if row["desired_upgraded"] is upgraded
                    ]
                ),
                {
                    "applied_upgraded": upgraded,
                    "provisioning_lease_until": None,
                    "provisioning_failures": 0,
                },
                returning="desired_upgraded",
            )
            OutOfSyncTally.objects.add(
                sum(-1 if wanted == upgraded else 1 for wanted in wanted_now)
            )
        ProvisioningChange.objects.bulk_create(
            [
                ProvisioningChange(
                    subscription_id=row["subscription_id"],
                    version=row["desired_version"],
                    upgraded=row["desired_upgraded"],
                    from_kbps=_speed(row, row["applied_upgraded"]),
                    to_kbps=_speed(row, row["desired_upgraded"]),
                    cause=cause,
                    batch=batch,
                    applied_at=now,
                )
                for row, cause in kept
            ]
        )


def reconcile_speeds(
    *, backend, now: datetime, batch_size: int | None = None, max_batches: int | None = None
) -> ReconcileResult:
    """Push every due out-of-sync line's wanted speed to the network, batch by batch.

    A batch the network fails is set aside for its backoff and the run goes on with other
    lines, up to PROVISIONING_MAX_FAILED_BATCHES failed batches. A run claims no new batch
    after PROVISIONING_RUN_SECONDS (or ``max_batches`` batches) and then says whether
    lines are still due (``more``), so the caller can ask for another run.

    While out-of-sync lines wait out a backoff (set aside by this run or an earlier one),
    the run ends by raising ``ReconcileIncomplete`` (a ``ProvisioningUnavailable``) after
    recording what the network took, so the caller keeps retrying, with its own backoff,
    until every line is through; ``retry_at`` says when the first one is due. The lines
    set aside stay set aside whoever asks: an early retry costs queries, not a POST.
    """
    batch_size = batch_size or settings.PROVISIONING_BATCH_SIZE
    lease = timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)
    applied = batches = set_aside = 0
    more = False
    started = time.monotonic()
    after = None
    while True:
        keep_alive()
        elapsed = time.monotonic() - started
        # A lease, or a backoff, runs from its own moment, not from the start of the run.
        at = now + timedelta(seconds=elapsed)
        tried = batches + set_aside
        if (
            (max_batches is not None and tried >= max_batches)
            or (tried and elapsed >= settings.PROVISIONING_RUN_SECONDS)
            or set_aside >= settings.PROVISIONING_MAX_FAILED_BATCHES
        ):
            more = LineSpeed.objects.due_for_provisioning(at).exists()
            break
        lease_until = at + lease
        rows = _claim_batch(now=at, batch_size=batch_size, lease_until=lease_until, after=after)
        if not rows:
            if after is None:
                break
            # Once more from the start: lines that fell due behind the run's position.
            after = None
            continue
        last = rows[-1]
        after = (last["provisioning_failures"], last["subscription_id"])
        try:
            backend.apply(
                [
                    SpeedChange(
                        change_id=f"{row['subscription_id']}-{row['desired_version']}",
                        line=row["subscription__contract_number"],
                        speed_kbps=_speed(row, row["desired_upgraded"]),
                    )
                    for row in rows
                ]
            )
        except ProvisioningUnavailable as error:
            failed_at = now + timedelta(seconds=time.monotonic() - started)
            _set_aside(rows, failed_at=failed_at, error=error, lease_until=lease_until)
            set_aside += 1
            continue
        _record_applied(rows, now=now, lease_until=lease_until)
        applied += len(rows)
        batches += 1
    # Also when nothing was pushed: a request whose lines were already fast is applied.
    mark_applied_requests(now=now)
    retry_at = (
        LineSpeed.objects.out_of_sync()
        .filter(provisioning_failures__gt=0, provisioning_lease_until__gte=at)
        .aggregate(first=Min("provisioning_lease_until"))["first"]
    )
    result = ReconcileResult(
        applied=applied, batches=batches, set_aside=set_aside, more=more, retry_at=retry_at
    )
    if retry_at is not None:
        raise ReconcileIncomplete(result)
    return result
