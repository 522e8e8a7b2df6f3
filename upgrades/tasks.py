"""Thin Celery tasks: take ids, call a service, retry with backoff."""

from celery import shared_task
from django.utils import timezone

from upgrades.provisioning import ProvisioningUnavailable, get_backend
from upgrades.services import blanket, notices, provisioning


# Both are idempotent and resume where they stopped; beat's resume_blanket_upgrades
# re-runs them for anything a lost message or a crash left unfinished.
@shared_task(autoretry_for=(Exception,), retry_backoff=10, retry_backoff_max=300, max_retries=20)
def apply_blanket_upgrade(blanket_id: int) -> None:
    blanket.apply_blanket_upgrade(blanket_id=blanket_id, now=timezone.now())


@shared_task(autoretry_for=(Exception,), retry_backoff=10, retry_backoff_max=300, max_retries=20)
def end_blanket_grants(blanket_id: int) -> None:
    blanket.end_blanket_grants(blanket_id=blanket_id, now=timezone.now())


@shared_task
def resume_blanket_upgrades() -> None:
    for blanket_id in blanket.unfinished_blanket_upgrades(now=timezone.now()):
        apply_blanket_upgrade.delay(blanket_id)
    for blanket_id in blanket.ended_blankets_with_boosting_grants():
        end_blanket_grants.delay(blanket_id)


@shared_task
def revert_expired_grants() -> None:
    blanket.revert_expired_grants(now=timezone.now())


@shared_task
def remind_pending_grants() -> None:
    notices.queue_deadline_reminders(now=timezone.now())


@shared_task
def queue_stranded_notices() -> None:
    notices.queue_stranded_notices(now=timezone.now())


@shared_task(
    autoretry_for=(ProvisioningUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=None,
)
def reconcile_speeds() -> None:
    provisioning.reconcile_speeds(backend=get_backend(), now=timezone.now())
