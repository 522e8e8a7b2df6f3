"""Reads for the portal's own pages."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from portal.models import Heartbeat
from portal.tasks import HEARTBEAT_NAME


@dataclass(frozen=True)
class SchedulerStatus:
    last_beat: datetime | None
    fresh: bool


def scheduler_status(*, now: datetime) -> SchedulerStatus:
    beat = Heartbeat.objects.filter(name=HEARTBEAT_NAME).values_list("beat_at", flat=True).first()
    fresh = beat is not None and now - beat <= settings.HEARTBEAT_STALE_AFTER
    return SchedulerStatus(last_beat=beat, fresh=fresh)
