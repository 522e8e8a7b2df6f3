"""Thin Celery tasks: take ids, call a service.

The tasks a commit asks for are follow-ups (support/followups.py): recorded with the
commit, sent after it, retried with backoff by the outbox until a run succeeds.
"""

from celery import shared_task
from django.utils import timezone

from support.followups import enqueue_on_commit
from upgrades.provisioning import get_backend
from upgrades.services import blanket, notices, provisioning


# Both are idempotent and resume where they stopped.
@shared_task
def apply_blanket_upgrade(blanket_id: int) -> None:
    blanket.apply_blanket_upgrade(blanket_id=blanket_id, now=timezone.now())


@shared_task
def end_blanket_grants(blanket_id: int) -> None:
    blanket.end_blanket_grants(blanket_id=blanket_id, now=timezone.now())


@shared_task
def resume_blanket_upgrades() -> None:
    """The last safety net: declarations and ends whose follow-up row itself is gone
    (deleted by hand, or from before follow-ups were recorded)."""
    for blanket_id in blanket.unfinished_blanket_upgrades(now=timezone.now()):
        enqueue_on_commit(apply_blanket_upgrade, blanket_id)
    for blanket_id in blanket.ended_blankets_with_boosting_grants():
        enqueue_on_commit(end_blanket_grants, blanket_id)


@shared_task
def revert_expired_grants() -> None:
    blanket.revert_expired_grants(now=timezone.now())


@shared_task
def remind_pending_grants() -> None:
    notices.queue_deadline_reminders(now=timezone.now())


@shared_task
def queue_stranded_notices() -> None:
    notices.queue_stranded_notices(now=timezone.now())


# Requests for a run merge while one waits (the follow-up key). A batch the network
# fails is set aside for its own backoff and the run raises at the end, so the outbox
# retries it with backoff too; beat runs it every minute as well. A run that stopped on
# its time budget asks for the next one.
@shared_task
def reconcile_speeds() -> None:
    backend = get_backend()  # one connection to the network for the whole run
    try:
        result = provisioning.reconcile_speeds(backend=backend, now=timezone.now())
    finally:
        backend.close()
    if result.more:
        enqueue_on_commit(reconcile_speeds)
