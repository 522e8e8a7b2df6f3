"""Field visits as staff plan and record them in the admin, and what the customer is
e-mailed: "a visit is being arranged", then "the visit was done" — never a date (FAQ Q5)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from incidents.models import FieldVisit
from incidents.services import complete_field_visit, plan_field_visit, report_damage
from support.channels import Channel
from support.models import OutboundEmail
from tests.factories import SiteFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
PLANNED_DAY = "2026-12-01"
DATE_SHAPES = [PLANNED_DAY, "2026/12/01", "12月1日", "12/1", "Dec", "December", "2026年12月"]


@pytest.fixture
def report():
    user = UserFactory(email="kanri@town.example.jp")
    site = SiteFactory(customer=user.customer, name="本庁舎")
    return report_damage(
        site=site, description="アンテナが傾いています", photos=[], channel=Channel.PHONE, now=NOON
    )


def visit_form(report, *, visit=None, status="planned", outcome="") -> dict:
    """The damage report's admin page as staff submit it, with one visit row."""
    return {
        "assignee": "",
        "priority": report.priority,
        "photos-TOTAL_FORMS": "0",
        "photos-INITIAL_FORMS": "0",
        "visits-TOTAL_FORMS": "1",
        "visits-INITIAL_FORMS": "1" if visit else "0",
        "visits-0-id": visit.pk if visit else "",
        "visits-0-report": report.pk,
        "visits-0-tentative_date": PLANNED_DAY,
        "visits-0-technician": "佐藤",
        "visits-0-status": status,
        "visits-0-outcome": outcome,
    }


def test_staff_plan_then_complete_a_visit_and_the_customer_never_reads_its_date(
    client, report, send_emails
):
    client.force_login(SupportUserFactory())
    url = reverse("admin:incidents_damagereport_change", args=[report.pk])

    with time_machine.travel(NOON, tick=False):
        planned = client.post(url, visit_form(report))
        visit = FieldVisit.objects.get()
        [arranging] = send_emails()
        done = client.post(
            url,
            visit_form(report, visit=visit, status="done", outcome="アンテナの向きを調整しました"),
        )
        arranging, finished = send_emails()

    assert planned.status_code == 302 and done.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.tentative_date) == ("done", date(2026, 12, 1))
    customer = report.site.customer
    for message in (arranging, finished):
        assert message.to == sorted(["kanri@town.example.jp", customer.email.lower()])
        assert f"#{report.pk}" in message.subject
        for shape in DATE_SHAPES:  # no SLA date shown to the customer, in any form
            assert shape not in message.subject and shape not in message.body
        assert "佐藤" not in message.body  # the technician's name is staff-side too
    japanese, english = arranging.body.split("---------- English ----------")
    assert "手配" in japanese and "お約束することはできません" in japanese and "本庁舎" in japanese
    assert "being arranged" in arranging.subject
    assert "cannot promise" in english and "contact you" in english
    japanese, english = finished.body.split("---------- English ----------")
    assert "訪問" in japanese and "アンテナの向きを調整しました" in japanese
    assert "has visited" in english and "アンテナの向きを調整しました" in english


def test_a_replayed_done_form_emails_the_customer_once(client, report, send_emails):
    client.force_login(SupportUserFactory())
    url = reverse("admin:incidents_damagereport_change", args=[report.pk])
    visit = plan_field_visit(report=report, tentative_date=date(2026, 12, 1), now=NOON)

    client.post(url, visit_form(report, visit=visit, status="done", outcome="交換しました"))
    client.post(url, visit_form(report, visit=visit, status="done", outcome="交換しました"))

    keys = sorted(OutboundEmail.objects.values_list("key", flat=True))
    assert keys == [f"field-visit-done:{visit.pk}", f"field-visit-planned:{visit.pk}"]
    assert len(send_emails()) == 2


def test_completing_twice_through_the_service_is_told_once(report, send_emails):
    visit = plan_field_visit(report=report, now=NOON)

    first = complete_field_visit(visit=visit, outcome="交換しました", now=NOON)
    again = complete_field_visit(visit=visit, outcome="交換しました", now=NOON)

    assert (first, again) == (True, False)
    assert len(send_emails()) == 2  # planned, done
    assert OutboundEmail.objects.filter(key__startswith="field-visit-done:").count() == 1


def test_a_visit_called_off_cannot_be_marked_done(report):
    visit = plan_field_visit(report=report, now=NOON)
    FieldVisit.objects.filter(pk=visit.pk).update(status=FieldVisit.Status.CANCELLED)

    with pytest.raises(ValidationError):
        complete_field_visit(visit=visit, now=NOON)


def test_staff_cannot_add_a_visit_already_done_nor_reopen_one(client, report, send_emails):
    client.force_login(SupportUserFactory())
    url = reverse("admin:incidents_damagereport_change", args=[report.pk])

    added_done = client.post(url, visit_form(report, status="done"))
    visit = plan_field_visit(report=report, now=NOON)
    complete_field_visit(visit=visit, now=NOON)
    reopened = client.post(url, visit_form(report, visit=visit, status="planned"))

    assert added_done.status_code == 200 and reopened.status_code == 200  # shown with errors
    assert FieldVisit.objects.get().status == "done"
    assert len(send_emails()) == 2
