"""The support desk's upgrade queues in the admin."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from support.models import ContactEvent
from tests.factories import OperatorUserFactory, SupportUserFactory, UserFactory
from tests.support.admin_pages import action_form_data, change_form_data, select_options
from tests.upgrades.conftest import form_data, make_lines, post_forms
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
    url = reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk])

    response = client.post(url, change_form_data(client.get(url).text, assignee=support.pk))

    upgrade_request.refresh_from_db()
    assert response.status_code == 302
    assert upgrade_request.assignee == support
    assert ContactEvent.objects.get().action == "assigned"


def test_only_staff_are_offered_as_assignees_and_a_customer_is_refused(client, support):
    line = make_lines(1)[0]
    customer_user = UserFactory(customer=line.site.customer)
    colleague = OperatorUserFactory()
    upgrade_request = new_request(line)
    url = reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk])
    page = client.get(url).text

    refused = client.post(url, change_form_data(page, assignee=customer_user.pk))

    offered = set(select_options(page, "assignee"))
    assert {str(support.pk), str(colleague.pk)} <= offered
    assert str(customer_user.pk) not in offered
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["assignee"]
    upgrade_request.refresh_from_db()
    assert upgrade_request.assignee is None
    assert not ContactEvent.objects.exists()


def test_assign_to_me_takes_unassigned_at_once_and_asks_before_a_colleagues(client, support):
    colleague = OperatorUserFactory(full_name="田中 花子")
    free, theirs = (new_request(line) for line in make_lines(2))
    UpgradeRequest.objects.filter(pk=theirs.pk).update(assignee=colleague)
    changelist = client.get(reverse(CHANGELIST)).text

    # when: the agent ticks both and runs "assign to me"
    asked = client.post(
        reverse(CHANGELIST),
        action_form_data(changelist, action="assign_to_me", selected=[free.pk, theirs.pk]),
    )

    # then: the free one is theirs at once; the colleague's is listed with its holder
    assert asked.status_code == 200
    assert "田中 花子" in asked.text
    assert dict(UpgradeRequest.objects.values_list("pk", "assignee")) == {
        free.pk: support.pk,
        theirs.pk: colleague.pk,
    }
    (confirm,) = [f for f in post_forms(asked.text) if ("take_over", "yes") in f["fields"]]
    assert [v for k, v in confirm["fields"] if k == "_selected_action"] == [str(theirs.pk)]

    # when: they confirm the page's form
    confirmed = client.post(reverse(CHANGELIST), form_data(confirm["fields"]), follow=True)

    assert confirmed.status_code == 200
    theirs.refresh_from_db()
    assert theirs.assignee == support
    took_over = ContactEvent.objects.get(object_id=theirs.pk)
    assert (took_over.action, took_over.from_value) == ("took_over", "田中 花子")
    page = client.get(reverse("admin:upgrades_upgraderequest_change", args=[theirs.pk]))
    assert "田中 花子 さんから引き継ぎ" in page.text


def test_changing_a_colleagues_assignee_on_the_page_needs_the_take_over_box(client, support):
    colleague = OperatorUserFactory(full_name="田中 花子")
    upgrade_request = new_request(make_lines(1)[0])
    UpgradeRequest.objects.filter(pk=upgrade_request.pk).update(assignee=colleague)
    url = reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk])
    page = client.get(url).text

    refused = client.post(url, change_form_data(page, assignee=support.pk))
    taken = client.post(url, change_form_data(page, assignee=support.pk, take_over="on"))

    assert "田中 花子 さんから引き継ぐ" in page
    assert refused.context["adminform"].form.errors["take_over"]
    assert taken.status_code == 302
    upgrade_request.refresh_from_db()
    assert upgrade_request.assignee == support
    assert ContactEvent.objects.get().action == "took_over"


def test_a_priority_change_needs_a_reason_and_is_shown_in_the_history(client, support):
    upgrade_request = new_request(make_lines(1)[0])
    url = reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk])
    page = client.get(url).text
    before = upgrade_request.priority
    to = "high" if before == "normal" else "normal"

    no_reason = client.post(url, change_form_data(page, priority=to))
    with_reason = client.post(
        url, change_form_data(page, priority=to, priority_reason="透析施設のため")
    )

    assert no_reason.context["adminform"].form.errors["priority_reason"]
    assert with_reason.status_code == 302
    upgrade_request.refresh_from_db()
    assert upgrade_request.priority == to
    event = ContactEvent.objects.get()
    assert (event.action, event.from_value, event.to_value, event.text) == (
        "priority",
        before,
        to,
        "透析施設のため",
    )
    assert "透析施設のため" in client.get(url).text


def test_a_note_on_a_request_is_shown_to_staff_and_never_to_the_customer(client, support):
    line = make_lines(1)[0]
    customer_user = UserFactory(customer=line.site.customer)
    upgrade_request = new_request(line)
    url = reverse("admin:upgrades_upgraderequest_change", args=[upgrade_request.pk])

    saved = client.post(
        url, change_form_data(client.get(url).text, internal_note="社内メモ: 回線業者に確認中")
    )
    staff_page = client.get(url).text

    assert saved.status_code == 302
    assert "社内メモ: 回線業者に確認中" in staff_page
    client.force_login(customer_user)
    index = client.get(reverse("upgrades:index")).text
    link = re.search(r'href="(/upgrades/requests/\d+/)"', index).group(1)
    customer_page = client.get(link)
    api = APIClient()
    api.force_authenticate(customer_user)
    listed = api.get("/api/v1/upgrade-requests/")
    assert customer_page.status_code == listed.status_code == 200
    for text in (customer_page.text, listed.content.decode()):
        assert "社内メモ" not in text and "回線業者" not in text


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
