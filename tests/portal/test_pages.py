"""Pages and API: documented, light, and with query counts that do not grow with rows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import User
from tests.factories import (
    HeartbeatFactory,
    OperatorUserFactory,
    SiteFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def give_subscriptions(customer, sites: int, per_site: int) -> None:
    for _ in range(sites):
        site = SiteFactory(customer=customer)
        SubscriptionFactory.create_batch(per_site, site=site)


def count_queries(django_assert_max_num_queries, fetch) -> int:
    with django_assert_max_num_queries(50) as captured:
        response = fetch()
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("view", ["home", "api"])
def test_customer_lists_keep_their_query_count_as_rows_grow(
    client, django_assert_max_num_queries, view
):
    user = UserFactory()
    client.force_login(user)

    def fetch():
        if view == "home":
            return client.get(reverse("home"))
        api = APIClient()  # a fresh user object, as each request has: no cached permissions
        api.force_authenticate(User.objects.get(pk=user.pk))
        return api.get("/api/v1/subscriptions/")

    give_subscriptions(user.customer, sites=1, per_site=1)
    few = count_queries(django_assert_max_num_queries, fetch)
    give_subscriptions(user.customer, sites=8, per_site=4)
    many = count_queries(django_assert_max_num_queries, fetch)

    assert many == few


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:subscriptions_subscription_changelist",
        "admin:subscriptions_site_changelist",
        "admin:subscriptions_customer_changelist",
        "admin:accounts_user_changelist",
    ],
)
def test_admin_changelists_keep_their_query_count_as_rows_grow(
    client, django_assert_max_num_queries, url_name
):
    client.force_login(OperatorUserFactory())
    fetch = lambda: client.get(reverse(url_name))  # noqa: E731

    SubscriptionFactory.create_batch(2)
    UserFactory.create_batch(2)
    few = count_queries(django_assert_max_num_queries, fetch)
    SubscriptionFactory.create_batch(30)
    UserFactory.create_batch(30)
    many = count_queries(django_assert_max_num_queries, fetch)

    assert many == few


def test_operator_dashboard_shows_whether_scheduled_jobs_run(client):
    client.force_login(OperatorUserFactory())
    HeartbeatFactory(beat_at=timezone.now() - timedelta(hours=2))

    stale = client.get(reverse("operator-dashboard"))
    HeartbeatFactory._meta.model.objects.update(beat_at=timezone.now())
    fresh = client.get(reverse("operator-dashboard"))

    assert "停止している可能性があります" in stale.text
    assert "稼働中" in fresh.text


def test_openapi_schema_documents_the_subscriptions_api(client):
    client.force_login(UserFactory())

    schema = client.get(reverse("api-schema"), {"format": "json"}).json()

    assert "/api/v1/subscriptions/" in schema["paths"]
    assert "/api/v1/subscriptions/{id}/" in schema["paths"]


def test_api_docs_load_without_any_cdn(client):
    client.force_login(SupportUserFactory())

    response = client.get(reverse("api-docs"))

    assert response.status_code == 200
    assert "swagger-ui" in response.text
    assert "cdn" not in response.text.lower()


def test_api_schema_requires_login(client):
    assert client.get(reverse("api-schema")).status_code in {401, 403}


def test_customer_home_is_light_enough_for_the_satellite_line(client):
    user = UserFactory()
    give_subscriptions(user.customer, sites=5, per_site=2)
    client.force_login(user)

    response = client.get(reverse("home"))
    stylesheet = client.get("/static/portal/portal.css")

    # Uncompressed sizes; the budget of the design brief is 30 KB compressed, 3 requests.
    assert len(response.content) < 30_000
    assert len(b"".join(stylesheet.streaming_content)) < 10_000
    assert response.text.count("<script") == 0
    assert response.text.count('rel="stylesheet"') == 1


def test_pages_travel_compressed_over_the_slow_line(client):
    # given: a customer with 30 sites, whose home page repeats a form per site
    import gzip

    user = UserFactory()
    give_subscriptions(user.customer, sites=30, per_site=1)
    client.force_login(user)

    # when: the browser says it takes gzip, as every browser does
    plain = client.get(reverse("home"))
    compressed = client.get(reverse("home"), HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    # then: the page travels gzipped, a fraction of its size, the same page inside
    assert "Content-Encoding" not in plain
    assert compressed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed["Vary"]
    html = gzip.decompress(compressed.content).decode()
    assert user.customer.name in html
    assert len(compressed.content) < len(plain.content) / 4
