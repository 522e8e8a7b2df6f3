"""Customers see only their own organisation's things; roles guard staff pages."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.tokens import issue_api_token
from tests.factories import (
    PASSWORD,
    OperatorUserFactory,
    SiteFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    """A user of customer A, which has one subscription."""
    user = UserFactory(email="alice@a.example.com")
    # a year into its five years: in service, not yet "expiring soon", whatever today is
    SubscriptionFactory(
        site__customer=user.customer,
        contract_number="A-001",
        service_start=timezone.localdate() - timedelta(days=365),
    )
    return user


@pytest.fixture
def bobs_subscription():
    """Customer B's subscription, which Alice must never see."""
    return SubscriptionFactory(contract_number="B-001")


def test_home_lists_only_the_users_own_subscriptions(client, alice, bobs_subscription):
    client.force_login(alice)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert "A-001" in response.text
    assert "B-001" not in response.text
    assert bobs_subscription.site.name not in response.text


def test_another_organisations_subscription_page_is_not_found(client, alice, bobs_subscription):
    client.force_login(alice)

    response = client.get(bobs_subscription.get_absolute_url())

    assert response.status_code == 404


def test_own_subscription_page_shows_term_and_plan(client, alice):
    client.force_login(alice)
    own = alice.customer.sites.get().subscriptions.get()

    response = client.get(own.get_absolute_url())

    assert response.status_code == 200
    assert "A-001" in response.text
    assert "BCP-256" in response.text


def test_api_lists_only_the_callers_subscriptions(alice, bobs_subscription):
    api = APIClient()
    api.force_authenticate(alice)

    response = api.get("/api/v1/subscriptions/")

    assert response.status_code == 200
    assert [row["contract_number"] for row in response.json()["results"]] == ["A-001"]


def test_api_answers_404_for_another_organisations_subscription(alice, bobs_subscription):
    api = APIClient()
    api.force_authenticate(alice)

    response = api.get(f"/api/v1/subscriptions/{bobs_subscription.pk}/")

    assert response.status_code == 404


def test_api_accepts_a_token_and_describes_the_subscription(alice):
    _token, secret = issue_api_token(user=alice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")

    response = api.get("/api/v1/subscriptions/")

    row = response.json()["results"][0]
    assert row["contract_number"] == "A-001"
    assert row["site"]["prefecture"] == "11"
    assert row["plan"] == {"name": "BCP-256", "normal_kbps": 256, "upgraded_kbps": 8192}
    assert row["state"] == "active"
    assert 4 * 365 <= row["days_left"] <= 4 * 365 + 1


def test_api_refuses_anonymous_callers():
    response = APIClient().get("/api/v1/subscriptions/")

    assert response.status_code in {401, 403}


def test_api_refuses_staff_without_an_organisation():
    api = APIClient()
    api.force_authenticate(SupportUserFactory())

    assert api.get("/api/v1/subscriptions/").status_code == 403


@pytest.mark.parametrize("url_name", ["home", "operator-dashboard", "password_change"])
def test_anonymous_visitors_are_sent_to_log_in(client, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_subscription_page_sends_to_log_in(client):
    subscription = SubscriptionFactory()

    response = client.get(subscription.get_absolute_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("factory", [UserFactory, SupportUserFactory])
def test_only_operators_open_the_operator_dashboard(client, factory):
    client.force_login(factory())

    assert client.get(reverse("operator-dashboard")).status_code == 403


def test_operator_opens_the_operator_dashboard(client):
    client.force_login(OperatorUserFactory())

    response = client.get(reverse("operator-dashboard"))

    assert response.status_code == 200


def test_customers_cannot_enter_the_support_admin(client, alice):
    client.force_login(alice)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_support_staff_see_subscriptions_in_the_admin_but_cannot_edit_them(client):
    subscription = SubscriptionFactory()
    client.force_login(SupportUserFactory())

    changelist = client.get(reverse("admin:subscriptions_subscription_changelist"))
    change = client.post(
        reverse("admin:subscriptions_subscription_change", args=[subscription.pk]), {}
    )

    assert changelist.status_code == 200
    assert subscription.contract_number in changelist.text
    assert change.status_code == 403


def test_support_staff_cannot_edit_users_or_grant_themselves_roles(client):
    support = SupportUserFactory()
    client.force_login(support)

    response = client.post(reverse("admin:accounts_user_change", args=[support.pk]), {})

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("factory", "target"),
    [(OperatorUserFactory, "operator-dashboard"), (SupportUserFactory, "admin:index")],
)
def test_staff_land_on_their_own_start_page(client, factory, target):
    client.force_login(factory())

    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"] == reverse(target)


def test_a_customer_user_sees_every_site_of_the_organisation(client, alice):
    SiteFactory(customer=alice.customer, name="第二拠点")
    client.force_login(alice)

    response = client.get(reverse("home"))

    assert "第二拠点" in response.text


def test_customer_obtains_an_api_token_with_email_and_password(alice):
    api = APIClient()

    wrong = api.post("/api/v1/auth/token/", {"username": alice.email, "password": "nope"})
    right = api.post("/api/v1/auth/token/", {"username": alice.email, "password": PASSWORD})

    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["attr"] == "non_field_errors"
    assert right.status_code == 200
    assert alice.auth_token_set.get().pk == right.json()["id"]


@pytest.mark.parametrize("factory", [SupportUserFactory, OperatorUserFactory])
def test_staff_cannot_browse_customers_api_tokens(client, factory, alice):
    issue_api_token(user=alice)
    client.force_login(factory())

    for url in ["/admin/knox/authtoken/", "/admin/accounts/apitoken/"]:
        assert client.get(url).status_code == 404
    assert b"apitoken" not in client.get(reverse("admin:index")).content.lower()
    assert not factory._meta.model.objects.filter(
        groups__permissions__content_type__model="apitoken"
    ).exists()


def test_a_customer_user_added_in_the_admin_can_use_the_portal(client):
    customer = SiteFactory().customer
    client.force_login(OperatorUserFactory(is_superuser=True))

    client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@town.example.jp",
            "full_name": "新井",
            "customer": customer.pk,
            "password1": "a-long-new-password",
            "password2": "a-long-new-password",
            "usable_password": "true",
        },
    )
    client.logout()
    client.force_login(customer.users.get())

    assert client.get(reverse("home")).status_code == 200


def test_support_cannot_move_a_site_to_another_organisation(client):
    site = SiteFactory()
    other = SiteFactory().customer
    client.force_login(SupportUserFactory())

    client.post(
        reverse("admin:subscriptions_site_change", args=[site.pk]),
        {
            "customer": other.pk,
            "name": site.name,
            "prefecture": site.prefecture,
            "address": site.address,
            "contact_phone": site.contact_phone,
            "postal_code": site.postal_code,
            "subscriptions-TOTAL_FORMS": "0",
            "subscriptions-INITIAL_FORMS": "0",
        },
    )

    site.refresh_from_db()
    assert site.customer_id != other.pk
