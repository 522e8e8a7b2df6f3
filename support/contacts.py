"""What the desk does the same way to a contact of any kind."""

from datetime import datetime

from support.models import Contact


def record_first_response(contact: Contact, *, now: datetime) -> bool:
    """Stamp the first time staff respond to a contact (a reply, a decision, a visit
    planned, a close): its SLA is met then. Only the first response counts: a conditional
    update, so a later one, or two at once, leave the first stamp. Returns whether this
    call stamped it."""
    stamped = (
        type(contact)
        ._default_manager.filter(pk=contact.pk, first_response_at__isnull=True)
        .update(first_response_at=now)
    )
    if stamped:
        contact.first_response_at = now
    return bool(stamped)
