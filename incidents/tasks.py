from celery import shared_task
from django.utils import timezone

from incidents import readiness


@shared_task(autoretry_for=(OSError,), retry_backoff=60, max_retries=10)
def remind_unchecked_sites() -> None:
    readiness.remind_unchecked_sites(now=timezone.now())


@shared_task(autoretry_for=(OSError,), retry_backoff=60, max_retries=10)
def ask_to_recheck_after_disaster(disaster_id: int) -> None:
    readiness.ask_to_recheck_after_disaster(disaster_id=disaster_id, now=timezone.now())
