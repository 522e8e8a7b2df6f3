"""Assignment, priority and internal notes on any contact kind (support/contacts.py)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from desk.models import Inquiry
from incidents.models import DamageReport
from support.contacts import add_note, assign_contacts, change_priority, contact_events
from support.models import ContactEvent
from tests.factories import OperatorUserFactory, SiteFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)  # a Tuesday, in working hours


def report(**fields) -> DamageReport:
    return DamageReport.objects.create(
        site=SiteFactory(), description="傾き", channel="phone", received_at=NOW, **fields
    )


def test_a_customer_user_cannot_be_assigned_and_nothing_is_recorded():
    agent, customer = SupportUserFactory(), UserFactory()
    contact = report()

    with pytest.raises(ValidationError):
        assign_contacts(contacts=[contact], to=customer, by=agent, now=NOW)
    with pytest.raises(ValidationError):
        assign_contacts(contacts=[contact], to=agent, by=customer, now=NOW)

    contact.refresh_from_db()
    assert contact.assignee is None
    assert not ContactEvent.objects.exists()


def test_an_inactive_staff_member_cannot_be_assigned():
    gone = SupportUserFactory(is_active=False)

    with pytest.raises(ValidationError):
        assign_contacts(contacts=[report()], to=gone, by=SupportUserFactory(), now=NOW)


def test_unassigned_contacts_are_assigned_and_a_colleagues_are_left_alone_unless_taken_over():
    me, colleague = SupportUserFactory(full_name="佐藤"), OperatorUserFactory(full_name="田中")
    free, mine, theirs = report(), report(assignee=me), report(assignee=colleague)

    first = assign_contacts(contacts=[free, mine, theirs], to=me, by=me, now=NOW)

    assert first.assigned == [free] and first.unchanged == [mine] and first.held == [theirs]
    theirs.refresh_from_db()
    assert theirs.assignee == colleague
    assert [(e.object_id, e.action) for e in ContactEvent.objects.all()] == [(free.pk, "assigned")]

    later = NOW + timedelta(minutes=5)
    second = assign_contacts(contacts=[theirs], to=me, by=me, take_over=True, now=later)

    theirs.refresh_from_db()
    assert second.assigned == [theirs] and theirs.assignee == me
    (event,) = contact_events(theirs)
    assert (event.action, event.from_value, event.to_value, event.by, event.at) == (
        "took_over",
        "田中",
        "佐藤",
        me,
        later,
    )
    with translation.override("ja"):
        assert str(event.describe()) == "田中 さんから引き継ぎ"


def test_unassigning_and_assigning_to_another_colleague_are_recorded_with_who_held_it():
    me, other = SupportUserFactory(full_name="佐藤"), SupportUserFactory(full_name="鈴木")
    contact = report(assignee=me)

    assign_contacts(contacts=[contact], to=other, by=me, now=NOW)
    assign_contacts(contacts=[contact], to=None, by=other, now=NOW + timedelta(minutes=1))

    contact.refresh_from_db()
    assert contact.assignee is None
    assert [(e.action, e.from_value, e.to_value) for e in contact_events(contact)] == [
        ("unassigned", "鈴木", ""),
        ("assigned", "佐藤", "鈴木"),
    ]


def test_the_same_service_assigns_every_kind_at_once():
    me = SupportUserFactory()
    site = SiteFactory()
    inquiry = Inquiry.objects.create(
        customer=site.customer, subject="請求", channel="phone", received_at=NOW, status="new"
    )
    damage = report()

    done = assign_contacts(contacts=[inquiry, damage], to=me, by=me, now=NOW)

    assert len(done.assigned) == 2
    assert Inquiry.objects.get().assignee == DamageReport.objects.get().assignee == me
    assert {e.content_type.model for e in ContactEvent.objects.all()} == {
        "inquiry",
        "damagereport",
    }


def test_a_priority_change_needs_a_reason_and_is_recorded_with_a_new_target():
    agent = SupportUserFactory()
    contact = report(priority="normal", respond_by=NOW + timedelta(hours=4))

    with pytest.raises(ValidationError):
        change_priority(contact=contact, priority="high", reason="  ", by=agent, now=NOW)
    changed = change_priority(
        contact=contact, priority="high", reason="病院の回線", by=agent, now=NOW
    )
    again = change_priority(contact=contact, priority="high", reason="同じ", by=agent, now=NOW)

    contact.refresh_from_db()
    assert changed and not again
    assert contact.priority == "high"
    # The high-priority target (business time from 10:00) replaces the normal one.
    assert contact.respond_by < NOW + timedelta(hours=4)
    (event,) = contact_events(contact)
    assert (event.action, event.from_value, event.to_value, event.text) == (
        "priority",
        "normal",
        "high",
        "病院の回線",
    )


def test_notes_are_for_staff_only():
    contact = report()

    with pytest.raises(ValidationError):
        add_note(contact=contact, text="顧客に見せない", by=UserFactory(), now=NOW)
    with pytest.raises(ValidationError):
        add_note(contact=contact, text="  ", by=SupportUserFactory(), now=NOW)
    note = add_note(contact=contact, text="現地は停電中", by=SupportUserFactory(), now=NOW)

    assert list(contact_events(contact)) == [note]
    assert note.contact == contact
