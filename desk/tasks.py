from celery import shared_task
from django.utils import timezone

from desk import escalation


@shared_task(soft_time_limit=60, time_limit=90)
def escalate_unpicked_contacts() -> None:
    escalation.escalate_unpicked_contacts(now=timezone.now())
