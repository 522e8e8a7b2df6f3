"""The first response to a contact of any kind is stamped once, when staff first act on
it: a reply (not an internal note), a decision, a visit planned, a close."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from desk.services import open_inquiry, reply_to_inquiry
from incidents.services import close_damage_report, plan_field_visit, report_damage
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import (
    approve_upgrade_request,
    reject_upgrade_request,
    request_upgrade,
)

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
ARRIVED = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
FIRST = ARRIVED + timedelta(minutes=20)
LATER = ARRIVED + timedelta(minutes=50)


def ask_for_speed():
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    return request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="portal",
        requested_by=user, now=ARRIVED,
    )  # fmt: skip


def report():
    user = UserFactory()
    site = make_lines(1, customer=user.customer)[0].site
    return report_damage(
        site=site, description="アンテナが倒れた", photos=[], channel="portal", by=user,
        now=ARRIVED,
    )  # fmt: skip


def test_a_reply_stamps_the_first_response_and_a_note_or_a_later_reply_does_not():
    customer_user, staff = UserFactory(), SupportUserFactory()
    inquiry = open_inquiry(
        customer=customer_user.customer, subject="請求書", body="宛名を変えたい",
        channel="portal", by=customer_user, now=ARRIVED,
    )  # fmt: skip

    reply_to_inquiry(inquiry=inquiry, by=staff, body="確認中", internal=True, now=ARRIVED)
    inquiry.refresh_from_db()
    assert inquiry.first_response_at is None

    reply_to_inquiry(inquiry=inquiry, by=staff, body="変更しました", internal=False, now=FIRST)
    reply_to_inquiry(inquiry=inquiry, by=staff, body="追伸", internal=False, now=LATER)

    inquiry.refresh_from_db()
    assert inquiry.first_response_at == FIRST


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_on_an_upgrade_request_is_its_first_response(decision):
    upgrade_request, staff = ask_for_speed(), SupportUserFactory()

    if decision == "approve":
        approve_upgrade_request(upgrade_request=upgrade_request, by=staff, now=FIRST)
    else:
        reject_upgrade_request(upgrade_request=upgrade_request, by=staff, now=FIRST, reason="x")

    upgrade_request.refresh_from_db()
    assert upgrade_request.first_response_at == FIRST


def test_planning_a_visit_answers_a_damage_report_and_closing_later_keeps_that_time():
    damage = report()

    plan_field_visit(report=damage, now=FIRST)
    close_damage_report(report=damage, now=LATER)

    damage.refresh_from_db()
    assert (damage.status, damage.first_response_at) == ("closed", FIRST)


def test_closing_an_unanswered_damage_report_is_its_first_response():
    damage = report()

    close_damage_report(report=damage, now=FIRST)
    close_damage_report(report=damage, now=LATER)

    damage.refresh_from_db()
    assert damage.first_response_at == FIRST
