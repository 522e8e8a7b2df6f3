from celery import shared_task
from django.utils import timezone

from subscriptions import services


@shared_task(autoretry_for=(OSError,), retry_backoff=60, max_retries=10)
def send_renewal_reminders() -> None:
    services.send_renewal_reminders(now=timezone.now())
