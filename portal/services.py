"""State changes the portal itself owns."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from portal.models import Heartbeat

RECENT = timedelta(minutes=10)


@transaction.atomic
def record_heartbeat(*, name: str, now: datetime) -> Heartbeat:
    """Stamp ``name`` as alive at ``now`` and keep the beats of the last ten minutes:
    a second beat process shows as twice the scheduled number."""
    # Two first beats at once: the unique name lets one insert win, the other locks it.
    Heartbeat.objects.get_or_create(name=name, defaults={"beat_at": now, "count": 0})
    heartbeat = Heartbeat.objects.select_for_update().get(name=name)
    recent = [beat for beat in heartbeat.recent if datetime.fromisoformat(beat) > now - RECENT]
    Heartbeat.objects.filter(pk=heartbeat.pk).update(
        beat_at=now, count=F("count") + 1, recent=[*recent, now.isoformat()]
    )
    return Heartbeat.objects.get(name=name)
