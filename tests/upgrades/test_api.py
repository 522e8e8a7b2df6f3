"""The upgrade API: scoped to the caller's organisation, guarded by role, 400 on bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import OperatorUserFactory, SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.models import BlanketUpgrade, SpeedGrant, UpgradeRequest
from upgrades.services.blanket import apply_blanket_upgrade

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def customer_user():
    user = UserFactory()
    make_lines(2, customer=user.customer)
    return user


def test_customer_creates_and_lists_upgrade_requests(customer_user):
    api = api_for(customer_user)
    site = customer_user.customer.sites.first()

    created = api.post(
        "/api/v1/upgrade-requests/", {"sites": [site.pk], "reason": "disaster"}, format="json"
    )
    listed = api.get("/api/v1/upgrade-requests/")

    assert created.status_code == 201
    assert created.json()["channel"] == "api"
    assert [r["id"] for r in listed.json()["results"]] == [created.json()["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sites": [], "reason": "disaster"},
        {"sites": ["x"], "reason": "disaster"},
        {"sites": [1], "reason": "why"},
    ],
)
def test_bad_request_bodies_get_400_with_field_errors(customer_user, body):
    response = api_for(customer_user).post("/api/v1/upgrade-requests/", body, format="json")

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert {e["attr"].split(".")[0] for e in response.json()["errors"]} <= {"sites", "reason"}
    assert not UpgradeRequest.objects.exists()


def test_another_organisations_site_is_refused_and_their_requests_unseen(customer_user):
    other = make_lines(1)[0].site
    theirs = UpgradeRequest.objects.create(
        customer=other.customer, reason="disaster", channel="phone", received_at=timezone.now()
    )
    api = api_for(customer_user)

    refused = api.post(
        "/api/v1/upgrade-requests/", {"sites": [other.pk], "reason": "disaster"}, format="json"
    )

    assert refused.status_code == 400
    assert [e["attr"] for e in refused.json()["errors"]] == ["sites"]
    assert api.get(f"/api/v1/upgrade-requests/{theirs.pk}/").status_code == 404
    assert api.get("/api/v1/upgrade-requests/").json()["results"] == []


def test_operator_declares_over_the_api_once_per_key_and_reads_progress():
    make_lines(3)
    api = api_for(OperatorUserFactory())
    body = {"title": "豪雨", "prefectures": ["11"], "window_days": 2, "idempotency_key": "abc"}

    first = api.post("/api/v1/operator/disasters/", body, format="json")
    again = api.post("/api/v1/operator/disasters/", body, format="json")
    apply_blanket_upgrade(blanket_id=first.json()["id"], now=timezone.now())
    progress = api.get(f"/api/v1/operator/disasters/{first.json()['id']}/").json()["progress"]

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert BlanketUpgrade.objects.count() == 1
    assert progress["pending"] == 3


def test_declaring_over_an_active_disaster_needs_confirm_overlap():
    api = api_for(OperatorUserFactory())
    api.post("/api/v1/operator/disasters/", {"title": "地震", "prefectures": ["11"]}, format="json")
    body = {"title": "豪雨", "prefectures": ["11", "13"], "idempotency_key": "b"}

    refused = api.post("/api/v1/operator/disasters/", body, format="json")
    declared = api.post(
        "/api/v1/operator/disasters/", {**body, "confirm_overlap": True}, format="json"
    )

    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["attr"] == "confirm_overlap" and "地震" in error["detail"]
    assert declared.status_code == 201
    assert BlanketUpgrade.objects.count() == 2


def test_customer_answers_pending_grants_over_the_api(customer_user):
    make_lines(1)  # another organisation's line stays pending
    operator_api = api_for(OperatorUserFactory())
    declared = operator_api.post(
        "/api/v1/operator/disasters/", {"title": "地震", "nationwide": True}, format="json"
    ).json()
    apply_blanket_upgrade(blanket_id=declared["id"], now=timezone.now())
    api = api_for(customer_user)

    pending = api.get("/api/v1/grants/").json()["results"]
    answered = api.post("/api/v1/grants/answer/", {"keep": True}, format="json")
    again = api.post("/api/v1/grants/answer/", {"keep": False}, format="json")

    assert {g["state"] for g in pending} == {"pending"} and len(pending) == 2
    assert answered.status_code == 200 and {g["state"] for g in answered.json()} == {"active"}
    assert again.status_code == 400  # nothing left to answer: a message, not a 500
    assert SpeedGrant.objects.filter(state="pending").count() == 1


def test_operator_extends_and_ends_over_the_api():
    make_lines(1)
    api = api_for(OperatorUserFactory())
    declared = api.post(
        "/api/v1/operator/disasters/", {"title": "t", "nationwide": True}, format="json"
    ).json()
    later = (timezone.now() + timedelta(days=10)).isoformat()

    extended = api.post(
        f"/api/v1/operator/disasters/{declared['id']}/extend/", {"deadline": later}, format="json"
    )
    too_early = api.post(
        f"/api/v1/operator/disasters/{declared['id']}/extend/",
        {"deadline": timezone.now().isoformat()},
        format="json",
    )
    ended = api.post(f"/api/v1/operator/disasters/{declared['id']}/end/")
    ended_again = api.post(f"/api/v1/operator/disasters/{declared['id']}/end/")

    assert extended.status_code == 200
    assert too_early.status_code == 400
    assert [e["attr"] for e in too_early.json()["errors"]] == ["deadline"]
    assert ended.json()["status"] == "ended"
    assert ended_again.status_code == 400


@pytest.mark.parametrize("factory", [UserFactory, SupportUserFactory])
def test_only_operators_use_the_disaster_api(factory):
    api = api_for(factory())

    assert api.get("/api/v1/operator/disasters/").status_code == 403
    assert api.post("/api/v1/operator/disasters/", {"title": "x"}, format="json").status_code == 403


def test_the_schema_documents_the_upgrade_endpoints(client):
    client.force_login(UserFactory())

    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]

    for path in [
        "/api/v1/upgrade-requests/",
        "/api/v1/grants/",
        "/api/v1/grants/answer/",
        "/api/v1/operator/disasters/",
        "/api/v1/operator/disasters/{id}/extend/",
        "/api/v1/operator/disasters/{id}/end/",
    ]:
        assert path in paths
