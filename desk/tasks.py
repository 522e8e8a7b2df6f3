from celery import shared_task
from django.utils import timezone

from desk import escalation, mailbox


@shared_task(soft_time_limit=60, time_limit=90)
def escalate_unpicked_contacts() -> None:
    escalation.escalate_unpicked_contacts(now=timezone.now())


@shared_task(soft_time_limit=240, time_limit=300)
def fetch_support_mailbox() -> None:
    # Beat's runs may overlap (a slow mail server): each message is still taken once.
    mailbox.fetch_support_mailbox(now=timezone.now())
