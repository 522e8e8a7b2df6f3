"""The support desk's upgrade queues in the admin."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import SupportUserFactory
from tests.upgrades.conftest import make_lines
from upgrades.models import CustomerNotice, SpeedGrant, UpgradeRequest
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:upgrades_upgraderequest_changelist"


@pytest.fixture
def support(client):
    user = SupportUserFactory()
    client.force_login(user)
    return user


def new_request(line, channel="portal"):
    return request_upgrade(
        customer=line.site.customer,
        sites=[line.site],
        reason="disaster",
        channel=channel,
        now=timezone.now(),
    )


def test_support_records_a_phone_request(client, support):
    line = make_lines(1)[0]

    response = client.post(
        reverse("admin:upgrades_upgraderequest_add"),
        {
            "customer": line.site.customer_id,
            "sites": [line.site_id],
            "reason": "disaster",
            "note": "電話で受付",
            "channel": "phone",
            "contact_name": "佐藤",
            "contact_phone": "0494-22-0000",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    upgrade_request = UpgradeRequest.objects.get()
    assert (upgrade_request.channel, upgrade_request.recorded_by) == ("phone", support)


def test_a_recorded_request_for_another_customers_site_is_refused(client, support):
    line, other = make_lines(1)[0], make_lines(1)[0]

    response = client.post(
        reverse("admin:upgrades_upgraderequest_add"),
        {
            "customer": line.site.customer_id,
            "sites": [other.site_id],
            "reason": "disaster",
            "channel": "phone",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sites"]
    assert not UpgradeRequest.objects.exists()


def test_bulk_approve_and_assign_to_me(client, support):
    requests = [new_request(line) for line in make_lines(2)]
    ids = [r.pk for r in requests]

    client.post(reverse(CHANGELIST), {"action": "assign_to_me", "_selected_action": ids})
    client.post(reverse(CHANGELIST), {"action": "approve", "_selected_action": ids})

    assert set(UpgradeRequest.objects.values_list("status", "assignee")) == {
        ("approved", support.pk)
    }
    assert SpeedGrant.objects.filter(state="active").count() == 2


def test_bulk_reject_asks_for_a_reason_first(client, support):
    upgrade_request = new_request(make_lines(1)[0])
    selected = {"action": "reject", "_selected_action": [upgrade_request.pk]}

    asked = client.post(reverse(CHANGELIST), selected)
    done = client.post(reverse(CHANGELIST), {**selected, "reason": "既に高速化済みです"})

    upgrade_request.refresh_from_db()
    assert asked.status_code == 200 and "reason" in asked.context["form"].fields
    assert done.status_code == 302
    assert (upgrade_request.status, upgrade_request.decision_note) == (
        "rejected",
        "既に高速化済みです",
    )
    assert CustomerNotice.objects.filter(kind="request_rejected").count() == 1


def test_support_records_a_confirmation_received_by_phone(client, support):
    make_lines(1)
    blanket = declare_disaster(
        operator=support,
        title="t",
        nationwide=True,
        prefectures=[],
        idempotency_key="k",
        now=timezone.now(),
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=timezone.now())
    grant = SpeedGrant.objects.get()

    client.post(
        reverse("admin:upgrades_speedgrant_changelist"),
        {"action": "keep_by_phone", "_selected_action": [grant.pk]},
    )

    grant.refresh_from_db()
    assert (grant.state, grant.response_channel, grant.responded_by) == ("active", "phone", support)


@pytest.mark.parametrize(
    "url_name", [CHANGELIST, "admin:upgrades_speedgrant_changelist"], ids=["requests", "grants"]
)
def test_upgrade_queues_keep_their_query_count_as_rows_grow(
    client, support, url_name, django_assert_max_num_queries
):
    def count() -> int:
        with django_assert_max_num_queries(60) as captured:
            assert client.get(reverse(url_name)).status_code == 200
        return len(captured.captured_queries)

    def add(n):
        for line in make_lines(n):
            upgrade_request = new_request(line)
            SpeedGrant.objects.create(
                subscription=line,
                source="request",
                upgrade_request=upgrade_request,
                state="active",
                starts_at=timezone.now(),
            )

    add(2)
    few = count()
    add(20)
    many = count()

    assert many == few


def test_support_reassigns_a_request_from_its_change_page(client, support):
    upgrade_request = new_request(make_lines(1)[0])

    response = client.post(
        reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk]),
        {
            "assignee": support.pk,
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
        },
    )

    upgrade_request.refresh_from_db()
    assert response.status_code == 302
    assert upgrade_request.assignee == support


def test_an_answer_recorded_at_night_is_stamped_after_hours(client, support):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    make_lines(1)
    blanket = declare_disaster(
        operator=support, title="t", nationwide=True, prefectures=[], idempotency_key="k",
        now=timezone.now(),
    )  # fmt: skip
    apply_blanket_upgrade(blanket_id=blanket.pk, now=timezone.now())
    grant = SpeedGrant.objects.get()

    with time_machine.travel(
        datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("Asia/Tokyo")), tick=False
    ):
        client.post(
            reverse("admin:upgrades_speedgrant_changelist"),
            {"action": "keep_by_phone", "_selected_action": [grant.pk]},
        )

    grant.refresh_from_db()
    assert grant.response_after_hours is True
