"""The one rule that stamps every contact when it arrives, whatever its kind.

Upgrade requests, damage reports and inquiries (and calls and e-mails) get the same
stamps from the same facts: after hours by the business calendar; the declared disaster
covering any of the contact's prefectures; the ground-station outage in progress;
priority high after hours or in a disaster; and the first-response target of that
priority (support/sla.py).
"""

from collections.abc import Iterable
from datetime import datetime

from incidents.models import Disaster, Outage
from support.calendar import is_after_hours
from support.models import ContactPriority
from support.sla import first_response_due


def covering_disaster(prefectures: Iterable[str]) -> Disaster | None:
    """The newest active disaster covering any of the prefectures (nationwide covers all)."""
    prefectures = set(prefectures)
    # Few disasters are active at once: filtering their prefecture lists here is cheaper
    # and simpler than a JSON query that differs between PostgreSQL and SQLite.
    for disaster in Disaster.objects.active().order_by("-declared_at"):
        if disaster.nationwide or prefectures & set(disaster.prefectures):
            return disaster
    return None


def arrival(*, prefectures: Iterable[str], now: datetime) -> dict:
    """The fields a new contact of any kind is created with."""
    after_hours = is_after_hours(now)
    disaster = covering_disaster(prefectures)
    priority = (
        ContactPriority.HIGH if after_hours or disaster is not None else ContactPriority.NORMAL
    )
    return {
        "received_at": now,
        "after_hours": after_hours,
        "disaster": disaster,
        "outage": Outage.objects.current().first(),
        "priority": priority,
        "respond_by": first_response_due(
            priority=priority, after_hours=after_hours, received_at=now
        ),
    }
