"""Input a customer or staff member can send that once answered 500 (issue 10): each
now gets a 400, a form error or an admin message."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from incidents.services import issue_check_in_token
from tests.factories import OperatorUserFactory, SiteFactory, SupportUserFactory, UserFactory
from tests.upgrades.conftest import make_lines

pytestmark = pytest.mark.django_db
LONE_SURROGATE = '"\\ud800"'  # valid JSON, but no UTF-8 can encode it


def error_fields(body: dict) -> list[str]:
    """The fields an API error names (the one error envelope)."""
    return [error["attr"] for error in body["errors"]]


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def post_json(api, url, body: str, **extra):
    return api.generic("POST", url, body, content_type="application/json", **extra)


def test_a_superscript_digit_as_site_is_a_form_error(client):
    user = UserFactory()
    make_lines(1, customer=user.customer)
    client.force_login(user)

    response = client.post(reverse("upgrades:index"), {"sites": ["²"], "reason": "disaster"})

    assert response.status_code == 400
    assert response.context["form"].errors["sites"]


def test_a_superscript_digit_on_the_mass_message_link_shows_the_empty_form(client):
    client.force_login(OperatorUserFactory())

    response = client.get(reverse("incidents:mass-message-form"), {"disaster": "²"})

    assert response.status_code == 200


def test_a_lone_surrogate_as_upgrade_reason_is_a_field_error():
    user = UserFactory()
    (subscription,) = make_lines(1, customer=user.customer)
    body = f'{{"sites": [{subscription.site_id}], "reason": {LONE_SURROGATE}}}'

    response = post_json(api_for(user), "/api/v1/upgrade-requests/", body)

    assert response.status_code == 400
    assert "reason" in error_fields(json.loads(response.content))


def test_a_lone_surrogate_as_check_in_equipment_is_a_field_error():
    site = SiteFactory()
    token = issue_check_in_token(site=site, now=timezone.now())

    response = post_json(
        APIClient(),
        "/api/v1/check-in/",
        f'{{"equipment": {LONE_SURROGATE}}}',
        HTTP_AUTHORIZATION=f"SiteToken {token}",
    )

    assert response.status_code == 400
    assert "equipment" in error_fields(json.loads(response.content))


def test_a_lone_surrogate_as_a_prefecture_is_a_field_error():
    body = f'{{"title": "地震", "prefectures": [{LONE_SURROGATE}]}}'

    response = post_json(api_for(OperatorUserFactory()), "/api/v1/operator/disasters/", body)

    assert response.status_code == 400
    assert "prefectures.0" in error_fields(json.loads(response.content))


@pytest.mark.parametrize(
    ("method", "url", "who"),
    [
        ("GET", "/api/v1/invoices/999999/pdf.json", "customer"),
        ("POST", "/api/v1/quotes/999999/accept.json", "customer"),
        ("POST", "/api/v1/upgrade-requests/999999/cancel.json", "customer"),
        ("POST", "/api/v1/inquiries/999999/follow-up.json", "customer"),
        ("POST", "/api/v1/grants/answer.json", "customer"),
        ("POST", "/api/v1/operator/disasters/999999/end.json", "operator"),
        ("POST", "/api/v1/operator/disasters/999999/extend.json", "operator"),
    ],
)
def test_a_json_suffix_on_an_action_is_answered_like_the_action(method, url, who):
    user = UserFactory() if who == "customer" else OperatorUserFactory()

    response = api_for(user).generic(method, url, "{}", content_type="application/json")

    assert response.status_code in {400, 404}


@pytest.mark.parametrize("forged", ["²", "abc", "99999999999999999999999"])
def test_forged_ids_in_an_admin_action_are_dropped(client, forged):
    client.force_login(SupportUserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:subscriptions_customer_changelist"),
        {"action": "delete_selected", "_selected_action": [forged]},
        follow=True,
    )

    assert response.status_code == 200


def test_a_nul_byte_in_an_admin_list_filter_shows_a_message(client):
    client.force_login(SupportUserFactory(is_superuser=True))

    response = client.get(
        reverse("admin:subscriptions_site_changelist"), {"prefecture": "1\x00"}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:subscriptions_site_changelist")
    assert "フィルター" in response.text or "filter" in response.text


def test_no_admin_list_answers_500_to_forged_ids_or_a_nul_byte(client, django_user_model):
    # every registered admin, Django's (groups) and the libraries' (axes, OTP) included
    from django.contrib import admin

    root = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(root)
    client.raise_request_exception = False
    failed = []
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for forged in ["²", "abc", "99999999999999999999"]:
            answer = client.post(url, {"action": "delete_selected", "_selected_action": [forged]})
            if answer.status_code >= 500:
                failed.append((url, forged))
        if client.get(url, {"q": "\x00"}).status_code >= 500:
            failed.append((url, "NUL"))

    assert not failed


def test_no_admin_add_page_answers_500_to_a_forged_related_id(client, django_user_model):
    # every add page of every registered admin, its related fields posted with ids no
    # database holds: a form error, never a 500
    from django.contrib import admin

    root = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(root)
    client.raise_request_exception = False
    failed = []
    for model, model_admin in list(admin.site._registry.items()):
        related = [
            field.name
            for field in model._meta.get_fields()
            if (field.many_to_one or field.many_to_many) and not field.auto_created
        ]
        if not related or not model_admin.has_add_permission(_request_of(root)):
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"
        for forged in ["²", "abc", "99999999999999999999"]:
            answer = client.post(url, dict.fromkeys(related, forged))
            if answer.status_code >= 500:
                failed.append((url, forged))

    assert not failed


def _request_of(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request
