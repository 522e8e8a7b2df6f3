"""Readiness checks: by the customer in the portal, or by the site itself with a token."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from incidents.models import CheckIn
from tests.factories import SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_customer_records_a_check_and_sees_it_on_the_home_page(client):
    user = UserFactory()
    site = SiteFactory(customer=user.customer)
    client.force_login(user)

    before = client.get(reverse("home"))
    client.post(
        reverse("incidents:check-in", args=[site.pk]),
        {"web_ok": "on", "mail_ok": "on", "equipment": "damaged"},
    )
    after = client.get(reverse("home"))

    check = CheckIn.objects.get()
    assert (check.web_ok, check.mail_ok, check.equipment, check.source) == (
        True, True, "damaged", "portal",
    )  # fmt: skip
    assert "未実施" in before.text
    assert check.checked_at.astimezone().strftime("%Y-") in after.text


def test_a_customer_cannot_check_in_another_organisations_site(client):
    client.force_login(UserFactory())

    response = client.post(
        reverse("incidents:check-in", args=[SiteFactory().pk]), {"equipment": "ok"}
    )

    assert response.status_code == 404
    assert not CheckIn.objects.exists()


def test_a_site_checks_in_with_its_token_and_a_revoked_or_wrong_token_is_refused(client):
    user = UserFactory()
    site = SiteFactory(customer=user.customer)
    client.force_login(user)
    page = client.post(reverse("incidents:check-in-token", args=[site.pk]))
    token = page.context["token"]
    api = APIClient()

    ok = api.post("/api/v1/check-in/", {}, HTTP_AUTHORIZATION=f"SiteToken {token}")
    wrong = api.post("/api/v1/check-in/", {}, HTTP_AUTHORIZATION="SiteToken nope")
    client.post(reverse("incidents:check-in-token", args=[site.pk]), {"revoke": "1"})
    revoked = api.post("/api/v1/check-in/", {}, HTTP_AUTHORIZATION=f"SiteToken {token}")

    assert ok.status_code == 201
    assert (wrong.status_code, revoked.status_code) == (403, 403)
    assert CheckIn.objects.get().source == "site_link"
    assert token not in str(site.check_in_tokens.values_list("token_hash", flat=True))
