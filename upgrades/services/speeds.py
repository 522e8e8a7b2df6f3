"""A line's wanted speed follows its grants: upgraded while any grant boosts it.

Every transition that adds or removes a boosting grant calls one of these two functions
in its own transaction, for the lines it touched. Each is two statements whatever the
number of lines: lock their speed rows (LineSpeed) in id order, then one UPDATE of them.
"""

from django.db.models import Exists, F, OuterRef, QuerySet

from subscriptions.models import LineSpeed
from support.followups import enqueue_on_commit
from upgrades.models import SpeedGrant


def _lock_lines(subscription_ids) -> None:
    # Serialises raising and lowering on the same line: whichever comes second sees the
    # grants the first committed (each statement takes a fresh snapshot).
    list(
        LineSpeed.objects.filter(subscription_id__in=subscription_ids)
        .order_by("subscription_id")
        .select_for_update()
        .values_list("subscription_id", flat=True)
    )


def _boosting_grant():
    return SpeedGrant.objects.boosting().filter(subscription_id=OuterRef("subscription_id"))


def raise_desired_speeds(*, subscription_ids: QuerySet | list[int], cause: str) -> int:
    """Mark upgraded the given lines that have a boosting grant and were not upgraded."""
    _lock_lines(subscription_ids)
    return (
        LineSpeed.objects.filter(subscription_id__in=subscription_ids, desired_upgraded=False)
        .filter(Exists(_boosting_grant()))
        .update(
            desired_upgraded=True,
            desired_version=F("desired_version") + 1,
            desired_cause=cause[:200],
        )
    )


def lower_desired_speeds(*, subscription_ids: QuerySet | list[int], cause: str) -> int:
    """Return to normal the given lines that no grant boosts any more."""
    _lock_lines(subscription_ids)
    return (
        LineSpeed.objects.filter(subscription_id__in=subscription_ids, desired_upgraded=True)
        .exclude(Exists(_boosting_grant()))
        .update(
            desired_upgraded=False,
            desired_version=F("desired_version") + 1,
            desired_cause=cause[:200],
        )
    )


def enqueue_follow_ups() -> None:
    """After commit: push changed speeds to the network (e-mails go by the outbox)."""
    # Imported here: tasks import services, not the other way round at module load.
    from upgrades import tasks

    enqueue_on_commit(tasks.reconcile_speeds)
