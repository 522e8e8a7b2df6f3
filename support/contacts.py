"""What staff do to a contact of any kind: assign it, change its priority, note something.

Every kind (upgrade requests, damage reports, inquiries, …) is a ``support.models.Contact``;
these services work on any of them through the instance's own model, so this bottom layer
never names the kinds above it. Each change leaves a ``ContactEvent`` row.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from support.models import Contact, ContactEvent, ContactPriority
from support.sla import first_response_due


@dataclass
class Assignment:
    """What ``assign_contacts`` did: changed, left with a colleague, already so."""

    assigned: list[Contact] = field(default_factory=list)
    # Held by a colleague and left alone: taking them needs ``take_over=True``.
    held: list[Contact] = field(default_factory=list)
    unchanged: list[Contact] = field(default_factory=list)


def staff_name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def _check_staff(user, *, role: str) -> None:
    if user is None or not (user.is_staff and user.is_active):
        raise ValidationError(
            _("Only active staff can %(role)s.") % {"role": role}, code="not_staff"
        )


def _event(contact: Contact, *, by, now: datetime, action: str, **values) -> ContactEvent:
    return ContactEvent(
        content_type=ContentType.objects.get_for_model(contact),
        object_id=contact.pk,
        at=now,
        by=by,
        action=action,
        **values,
    )


def assign_contacts(
    *, contacts: Iterable[Contact], to, by, take_over: bool = False, now: datetime
) -> Assignment:
    """Give the contacts to ``to`` (a staff member; None leaves them unassigned).

    Only active staff can hold a contact. A contact a colleague holds (neither ``by``
    nor ``to``) is left alone and reported in ``held`` unless ``take_over`` says the
    person asked first; taking it is recorded as taken over from that colleague. Every
    change is an event row. The rows are locked (in id order) while they are read and
    changed, so two agents taking the same contact at once cannot both take it silently.
    """
    _check_staff(by, role=_("assign contacts"))
    if to is not None:
        _check_staff(to, role=_("be assigned a contact"))
    by_model: dict[type[Contact], list[int]] = defaultdict(list)
    for contact in contacts:
        by_model[type(contact)].append(contact.pk)
    result, events = Assignment(), []
    with transaction.atomic():
        for model, pks in by_model.items():
            changed = []
            rows = (
                model.objects.select_for_update(of=("self",))
                .filter(pk__in=pks)
                .select_related("assignee")
                .order_by("pk")
            )
            for contact in rows:
                holder = contact.assignee
                if contact.assignee_id == (to.pk if to else None):
                    result.unchanged.append(contact)
                    continue
                colleague = holder is not None and holder.pk != by.pk
                if colleague and not take_over:
                    result.held.append(contact)
                    continue
                if to is None:
                    action = ContactEvent.Action.UNASSIGNED
                elif colleague and to.pk == by.pk:
                    action = ContactEvent.Action.TOOK_OVER
                else:
                    action = ContactEvent.Action.ASSIGNED
                events.append(
                    _event(
                        contact,
                        by=by,
                        now=now,
                        action=action,
                        from_value=staff_name(holder),
                        to_value=staff_name(to),
                    )
                )
                contact.assignee = to
                changed.append(contact.pk)
                result.assigned.append(contact)
            if changed:
                model.objects.filter(pk__in=changed).update(assignee=to)
        ContactEvent.objects.bulk_create(events)
    return result


def change_priority(*, contact: Contact, priority: str, reason: str, by, now: datetime) -> bool:
    """Set the contact's priority, saying why (required). A contact not yet answered
    gets the first-response target of its new priority (support/sla.py). Returns False
    when it had that priority already (nothing recorded)."""
    _check_staff(by, role=_("change a priority"))
    if priority not in ContactPriority.values:
        raise ValidationError(_("Choose a valid priority."), code="invalid")
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Say why the priority changes."), code="reason_required")
    model = type(contact)
    with transaction.atomic():
        row = model.objects.select_for_update(of=("self",)).get(pk=contact.pk)
        if row.priority == priority:
            return False
        changes = {"priority": priority}
        if row.first_response_at is None:
            changes["respond_by"] = first_response_due(
                priority=priority, after_hours=row.after_hours, received_at=row.received_at
            )
        model.objects.filter(pk=row.pk).update(**changes)
        _event(
            row,
            by=by,
            now=now,
            action=ContactEvent.Action.PRIORITY,
            from_value=row.priority,
            to_value=priority,
            text=reason,
        ).save()
    for name, value in changes.items():
        setattr(contact, name, value)
    return True


def add_note(*, contact: Contact, text: str, by, now: datetime) -> ContactEvent:
    """An internal note on the contact: for staff only, never shown or sent to the
    customer (no customer page or API reads contact events)."""
    _check_staff(by, role=_("write internal notes"))
    text = text.strip()
    if not text:
        raise ValidationError(_("Write the note first."), code="empty")
    event = _event(contact, by=by, now=now, action=ContactEvent.Action.NOTE, text=text)
    event.save()
    return event


def contact_events(contact: Contact):
    """The contact's events and notes, newest first (one query)."""
    return (
        ContactEvent.objects.filter(
            content_type=ContentType.objects.get_for_model(contact), object_id=contact.pk
        )
        .select_related("by")
        .order_by("-at", "-pk")
    )


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
