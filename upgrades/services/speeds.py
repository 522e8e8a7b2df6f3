"""A line's wanted speed follows its grants: upgraded while any grant boosts it.

Every transition that adds or removes a boosting grant calls one of these two functions
in its own transaction, for the lines it touched. Each is three statements whatever the
number of lines: lock their speed rows (LineSpeed) in id order, one UPDATE of them, and
the count of lines waiting for the network (OutOfSyncTally) moved by what it changed.
"""

from django.db.models import Exists, F, OuterRef, QuerySet

from subscriptions.models import LineSpeed, OutOfSyncTally
from support.followups import enqueue_on_commit
from upgrades.bulk import update_returning
from upgrades.models import SpeedGrant


def _speeds(subscription_ids, line_range: tuple[int, int] | None) -> QuerySet:
    lines = LineSpeed.objects.filter(subscription_id__in=subscription_ids)
    if line_range is not None:
        # The chunk's range of line ids as well: the plan reads that range of the key,
        # not the whole table to meet the subquery (a cost that grows with the table).
        lines = lines.filter(subscription_id__gt=line_range[0], subscription_id__lte=line_range[1])
    return lines


def _lock_lines(lines: QuerySet) -> None:
    # Serialises raising and lowering on the same line: whichever comes second sees the
    # grants the first committed (each statement takes a fresh snapshot).
    list(
        lines.order_by("subscription_id")
        .select_for_update()
        .values_list("subscription_id", flat=True)
    )


def _boosting_grant():
    return SpeedGrant.objects.boosting().filter(subscription_id=OuterRef("subscription_id"))


def _change_desired(lines: QuerySet, *, upgraded: bool, cause: str) -> int:
    applied = update_returning(
        lines,
        {
            "desired_upgraded": upgraded,
            "desired_version": F("desired_version") + 1,
            "desired_cause": cause[:200],
        },
        returning="applied_upgraded",
    )
    # A line whose network speed already is the new wanted one comes back into sync;
    # every other one starts to wait for the network.
    back_in_sync = sum(1 for speed in applied if speed == upgraded)
    OutOfSyncTally.objects.add(len(applied) - 2 * back_in_sync)
    return len(applied)


def raise_desired_speeds(
    *,
    subscription_ids: QuerySet | list[int],
    cause: str,
    line_range: tuple[int, int] | None = None,
) -> int:
    """Mark upgraded the given lines that have a boosting grant and were not upgraded
    (``line_range``: the ids are within (low, high], a chunk's)."""
    lines = _speeds(subscription_ids, line_range)
    _lock_lines(lines)
    return _change_desired(
        lines.filter(desired_upgraded=False).filter(Exists(_boosting_grant())),
        upgraded=True,
        cause=cause,
    )


def lower_desired_speeds(
    *,
    subscription_ids: QuerySet | list[int],
    cause: str,
    line_range: tuple[int, int] | None = None,
) -> int:
    """Return to normal the given lines that no grant boosts any more."""
    lines = _speeds(subscription_ids, line_range)
    _lock_lines(lines)
    return _change_desired(
        lines.filter(desired_upgraded=True).exclude(Exists(_boosting_grant())),
        upgraded=False,
        cause=cause,
    )


def enqueue_follow_ups() -> None:
    """After commit: push changed speeds to the network (e-mails go by the outbox)."""
    # Imported here: tasks import services, not the other way round at module load.
    from upgrades import tasks

    enqueue_on_commit(tasks.reconcile_speeds)
