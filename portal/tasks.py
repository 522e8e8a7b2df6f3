from celery import shared_task
from django.utils import timezone

from portal.services import record_heartbeat as record_heartbeat_service

HEARTBEAT_NAME = "beat"


@shared_task
def record_heartbeat(name: str = HEARTBEAT_NAME) -> None:
    record_heartbeat_service(name=name, now=timezone.now())
