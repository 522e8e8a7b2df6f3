"""The extension API: quotes, invoices and their PDFs, scoped to the caller."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
MARCH_2019 = datetime(2019, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_customer_quotes_accepts_lists_and_downloads_over_the_api():
    user = UserFactory()
    line = SubscriptionFactory(site__customer=user.customer, service_start=date(2014, 4, 1))
    api = api_for(user)

    with time_machine.travel(MARCH_2019, tick=False):
        quote = api.post("/api/v1/quotes/", {"subscription": line.pk}, format="json")
        invoice = api.post(f"/api/v1/quotes/{quote.json()['id']}/accept/")
        listed = api.get("/api/v1/invoices/")
        pdf = api.get(f"/api/v1/invoices/{invoice.json()['id']}/pdf/")
        subscription = api.get(f"/api/v1/subscriptions/{line.pk}/")

    assert quote.status_code == 201 and quote.json()["total_yen"] == 302_500
    assert invoice.status_code == 201 and invoice.json()["status"] == "issued"
    assert [i["number"] for i in listed.json()["results"]] == [invoice.json()["number"]]
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert subscription.json()["state"] == "expiring_soon"


def test_today_a_quote_is_refused_with_400_and_a_message():
    user = UserFactory()
    line = SubscriptionFactory(site__customer=user.customer, service_start=date(2014, 4, 1))

    response = api_for(user).post("/api/v1/quotes/", {"subscription": line.pk}, format="json")

    assert response.status_code == 400
    assert "03-6279-0933" in str(response.json())


def test_another_organisations_line_and_invoices_are_not_found():
    theirs = SubscriptionFactory(service_start=date(2014, 4, 1))
    with time_machine.travel(MARCH_2019, tick=False):
        owner_api = api_for(UserFactory(customer=theirs.site.customer))
        quote = owner_api.post("/api/v1/quotes/", {"subscription": theirs.pk}, format="json")
        invoice = owner_api.post(f"/api/v1/quotes/{quote.json()['id']}/accept/").json()
        api = api_for(UserFactory())

        responses = [
            api.post("/api/v1/quotes/", {"subscription": theirs.pk}, format="json"),
            api.post(f"/api/v1/quotes/{quote.json()['id']}/accept/"),
            api.get(f"/api/v1/invoices/{invoice['id']}/"),
            api.get(f"/api/v1/invoices/{invoice['id']}/pdf/"),
        ]

    assert [r.status_code for r in responses] == [404] * 4
    assert api.get("/api/v1/invoices/").json()["results"] == []
