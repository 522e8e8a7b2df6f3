"""Bad input gets a clear message, never a 500, and changes nothing (review findings)."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import (
    OperatorUserFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)
from tests.upgrades.conftest import make_lines
from upgrades.models import BlanketUpgrade, SpeedGrant, UpgradeRequest
from upgrades.provisioning import RecordingBackend
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    end_disaster,
    ended_blankets_with_boosting_grants,
    unfinished_blanket_upgrades,
)
from upgrades.services.provisioning import reconcile_speeds
from upgrades.services.requests import (
    approve_upgrade_request,
    reject_upgrade_request,
    request_upgrade,
)

pytestmark = pytest.mark.django_db
HUGE = 99999999999999999999999


def declare(key="k", prefectures=(), now=None):
    blanket = declare_disaster(
        operator=OperatorUserFactory(),
        title=f"災害 {key}",
        nationwide=not prefectures,
        prefectures=list(prefectures),
        idempotency_key=key,
        confirm_overlap=True,  # some tests here overlap on purpose
        now=now or timezone.now(),
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now or timezone.now())
    return blanket


def test_support_recording_a_site_without_service_sees_a_form_error(client):
    expired = SubscriptionFactory(service_start=date(2015, 1, 1))
    client.force_login(SupportUserFactory())

    response = client.post(
        reverse("admin:upgrades_upgraderequest_add"),
        {
            "customer": expired.site.customer_id,
            "sites": [expired.site_id],
            "reason": "disaster",
            "channel": "phone",
        },
    )

    assert response.status_code == 200
    assert "サービス提供中のご契約がない設置場所" in response.text
    assert not UpgradeRequest.objects.exists()


def test_absurd_ids_and_keys_are_refused_with_400(client):
    user = UserFactory()
    make_lines(1, customer=user.customer)
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    operator = APIClient()
    operator.force_authenticate(OperatorUserFactory())
    staff = OperatorUserFactory()

    form = client.post(reverse("upgrades:index"), {"sites": [HUGE], "reason": "disaster"})
    request_api = api.post(
        "/api/v1/upgrade-requests/", {"sites": [HUGE], "reason": "disaster"}, format="json"
    )
    answer_api = api.post("/api/v1/grants/answer/", {"keep": True, "grants": [HUGE]}, format="json")
    end_api = operator.post("/api/v1/operator/disasters/abc/end/")
    client.force_login(staff)
    declare_form = client.post(
        reverse("upgrades:declare"),
        {"title": "x", "nationwide": "on", "window_days": "3", "idempotency_key": "k" * 100},
    )

    assert [form.status_code, request_api.status_code, answer_api.status_code] == [400] * 3
    assert end_api.status_code == 404
    assert declare_form.status_code == 400
    assert not UpgradeRequest.objects.exists() and not BlanketUpgrade.objects.exists()


def test_a_deadline_is_extended_only_within_thirty_days_of_the_declaration():
    make_lines(1)
    blanket = declare()
    operator = APIClient()
    operator.force_authenticate(OperatorUserFactory())
    url = f"/api/v1/operator/disasters/{blanket.pk}/extend/"

    ancient = operator.post(url, {"deadline": "0001-01-01T00:00:00"}, format="json")
    forever = operator.post(url, {"deadline": "9999-12-31T00:00:00"}, format="json")
    fine = operator.post(
        url, {"deadline": (blanket.created_at + timedelta(days=20)).isoformat()}, format="json"
    )

    assert (ancient.status_code, forever.status_code, fine.status_code) == (400, 400, 200)


def test_an_answer_without_a_choice_changes_nothing(client):
    user = UserFactory()
    make_lines(1, customer=user.customer)
    declare()
    client.force_login(user)

    client.post(reverse("upgrades:respond"), {"grant": "all"})

    assert SpeedGrant.objects.get().state == "pending"


def test_overlapping_declarations_grant_a_line_once():
    make_lines(2, prefecture="11")
    declare("saitama", prefectures=["11"])
    declare("nationwide")

    assert SpeedGrant.objects.count() == 2
    assert SpeedGrant.objects.filter(blanket_upgrade__disaster__title="災害 saitama").count() == 2


def test_a_request_for_lines_already_fast_becomes_applied():
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    declare()
    reconcile_speeds(backend=RecordingBackend(), now=timezone.now())
    upgrade_request = request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="portal",
        now=timezone.now(),
    )  # fmt: skip
    approve_upgrade_request(
        upgrade_request=upgrade_request, by=SupportUserFactory(), now=timezone.now()
    )

    reconcile_speeds(backend=RecordingBackend(), now=timezone.now())

    upgrade_request.refresh_from_db()
    assert upgrade_request.status == "applied"


def test_plain_text_e_mails_are_not_html_escaped(send_emails):
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    upgrade_request = request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="portal",
        now=timezone.now(),
    )  # fmt: skip
    reject_upgrade_request(
        upgrade_request=upgrade_request,
        by=SupportUserFactory(),
        now=timezone.now(),
        reason='Line isn\'t in scope & "test" <ok>',
    )

    assert 'Line isn\'t in scope & "test" <ok>' in send_emails()[0].body


def test_the_safety_net_finds_blankets_a_lost_message_left_unfinished():
    make_lines(2)
    long_ago = timezone.now() - timedelta(hours=1)
    stuck = declare_disaster(
        operator=OperatorUserFactory(),
        title="stuck",
        nationwide=True,
        prefectures=[],
        idempotency_key="stuck",
        now=long_ago,
    )  # its apply task was lost
    done = declare("done")
    end_disaster(disaster=done.disaster, operator=OperatorUserFactory(), now=timezone.now())
    # (its end task was lost too: its grants still boost)

    assert unfinished_blanket_upgrades(now=timezone.now()) == [stuck.pk]
    assert ended_blankets_with_boosting_grants() == [done.pk]


def test_the_operator_dashboard_title_is_only_text(client):
    client.force_login(OperatorUserFactory())

    page = client.get(reverse("operator-dashboard")).text

    title = page[page.index("<title>") + 7 : page.index("</title>")]
    assert "<" not in title
