from celery import shared_task
from django.conf import settings
from django.utils import timezone

from support import followups, outbox, services


@shared_task(soft_time_limit=60, time_limit=90)
def post_after_hours_webhook(alert_id: int) -> None:
    services.post_after_hours_webhook(alert_id=alert_id)


# Bounded by a time budget below its limits: a long queue is sent by a chain of runs,
# each under the limits, instead of one run the limit would kill mid-batch.
@shared_task(
    soft_time_limit=settings.OUTBOX_TASK_SECONDS + 120,
    time_limit=settings.OUTBOX_TASK_SECONDS + 180,
)
def send_queued_emails() -> None:
    report = outbox.send_queued_emails(time_budget=settings.OUTBOX_TASK_SECONDS)
    if report.errors:
        return  # the rows wait for their backoff; beat's run finds them
    now = timezone.now()
    if outbox.has_due_emails(now=now):
        send_queued_emails.delay()
    elif (lease_end := outbox.next_lease_end(now=now)) is not None:
        # Rows another sender holds: if it died, they are this run's once its lease ends.
        send_queued_emails.apply_async(countdown=max((lease_end - now).total_seconds(), 1))


@shared_task(soft_time_limit=60, time_limit=90)
def relay_follow_ups() -> None:
    followups.relay_due()
