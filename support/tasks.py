from celery import shared_task
from django.utils import timezone

from support import services


@shared_task(autoretry_for=(OSError,), retry_backoff=10, retry_backoff_max=300, max_retries=20)
def send_after_hours_alert(alert_id: int) -> None:
    services.send_after_hours_alert(alert_id=alert_id, now=timezone.now())
