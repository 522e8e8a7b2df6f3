"""State changes the portal itself owns."""

from datetime import datetime

from django.db import transaction
from django.db.models import F

from portal.models import Heartbeat


@transaction.atomic
def record_heartbeat(*, name: str, now: datetime) -> Heartbeat:
    """Stamp ``name`` as alive at ``now``; counting beats shows a second beat process."""
    updated = Heartbeat.objects.filter(name=name).update(beat_at=now, count=F("count") + 1)
    if not updated:
        # Two first beats at once: the unique name lets one insert win, the other updates.
        heartbeat, created = Heartbeat.objects.get_or_create(
            name=name, defaults={"beat_at": now, "count": 1}
        )
        if not created:
            Heartbeat.objects.filter(pk=heartbeat.pk).update(beat_at=now, count=F("count") + 1)
    return Heartbeat.objects.get(name=name)
