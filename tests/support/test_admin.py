"""A contact past its first-response target shows it in its kind's admin list, and the
list filters to those contacts."""

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from desk.services import open_inquiry, reply_to_inquiry
from incidents.services import report_damage
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO)  # high priority, 30 minutes of clock


def inquiry(user, subject, at):
    return open_inquiry(
        customer=user.customer, subject=subject, body="b", channel="portal", by=user, now=at
    )


def upgrade_request(user, site, at):
    return request_upgrade(
        customer=user.customer, sites=[site], reason="disaster", channel="portal",
        requested_by=user, now=at,
    )  # fmt: skip


def damage_report(user, site, at):
    return report_damage(
        site=site, description="倒れた", photos=[], channel="portal", by=user, now=at
    )


def rows(page) -> dict[str, str]:
    """Each changelist row's text by the contact's id (its first link)."""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        link = re.search(r'href="[^"]*/(\d+)/change/', row)
        if link:
            found[link[1]] = row
    return found


def past_target_link(page) -> str:
    (href,) = set(re.findall(r'href="(\?[^"]*past_target=yes[^"]*)"', page))
    return html.unescape(href)


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("inquiry", "/admin/desk/inquiry/"),
        ("upgrade_request", "/admin/upgrades/upgraderequest/"),
        ("damage_report", "/admin/incidents/damagereport/"),
    ],
)
def test_a_contact_past_its_target_is_marked_and_filtered(client, kind, url):
    customer = UserFactory()
    site = make_lines(1, customer=customer.customer)[0].site
    make = {
        "inquiry": lambda at: inquiry(customer, "s", at),
        "upgrade_request": lambda at: upgrade_request(customer, site, at),
        "damage_report": lambda at: damage_report(customer, site, at),
    }[kind]
    late = make(NIGHT)  # due 22:30
    waiting = make(NIGHT + timedelta(minutes=50))  # due 23:20
    staff = SupportUserFactory()
    client.force_login(staff)

    with time_machine.travel(NIGHT + timedelta(minutes=60), tick=False):
        page = client.get(url).text
        filtered = client.get(url + past_target_link(page)).text

    by_id = rows(page)
    assert "sla-overdue" in by_id[str(late.pk)] and "2026-11-24 22:30" in by_id[str(late.pk)]
    assert "sla-overdue" not in by_id[str(waiting.pk)]
    assert "2026-11-24 23:20" in by_id[str(waiting.pk)]
    assert set(rows(filtered)) == {str(late.pk)}


def test_an_answered_inquiry_is_not_past_its_target(client):
    customer = UserFactory()
    answered = inquiry(customer, "s", NIGHT)
    reply_to_inquiry(
        inquiry=answered, by=SupportUserFactory(), body="はい", internal=False,
        now=NIGHT + timedelta(minutes=45),
    )  # fmt: skip
    client.force_login(SupportUserFactory())

    with time_machine.travel(NIGHT + timedelta(minutes=60), tick=False):
        page = client.get("/admin/desk/inquiry/").text
        filtered = client.get("/admin/desk/inquiry/" + past_target_link(page)).text

    row = rows(page)[str(answered.pk)]
    assert "sla-overdue" not in row and "2026-11-24 22:45" in row
    assert rows(filtered) == {}
