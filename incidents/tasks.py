from celery import shared_task
from django.utils import timezone

from incidents import broadcasts, readiness
from support.followups import enqueue_on_commit


@shared_task(autoretry_for=(OSError,), retry_backoff=60, max_retries=10)
def remind_unchecked_sites() -> None:
    readiness.remind_unchecked_sites(now=timezone.now())


# A follow-up of the hourly sweeper: retried with backoff by the outbox.
@shared_task
def ask_to_recheck_after_disaster(disaster_id: int) -> None:
    readiness.ask_to_recheck_after_disaster(disaster_id=disaster_id, now=timezone.now())


@shared_task
def ask_to_recheck_after_disasters() -> None:
    for disaster_id in readiness.disasters_due_for_recheck(now=timezone.now()):
        enqueue_on_commit(ask_to_recheck_after_disaster, disaster_id)


# A follow-up of sending the message: retried with backoff by the outbox.
@shared_task
def queue_mass_message(message_id: int) -> None:
    broadcasts.queue_mass_message_deliveries(message_id=message_id, now=timezone.now())


@shared_task
def resume_mass_messages() -> None:
    for message_id in broadcasts.messages_to_resume(now=timezone.now()):
        enqueue_on_commit(queue_mass_message, message_id)


@shared_task
def post_mass_message_webhook(message_id: int) -> None:
    broadcasts.post_mass_message_webhook(message_id=message_id)
