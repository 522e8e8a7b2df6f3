"""The operator's message to customers, typed when declaring a disaster: on the banner of
customers in scope, the public status page and the status API, always escaped."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import OperatorUserFactory, SiteFactory, UserFactory
from tests.upgrades.conftest import form_data, post_forms
from upgrades.services.blanket import declare_disaster, end_disaster

pytestmark = pytest.mark.django_db

MESSAGE = "停電中の拠点は衛星回線をご利用ください。\n<script>alert(1)</script> & 詳細は後ほど"


def customer_at(prefecture: str):
    user = UserFactory()
    SiteFactory(customer=user.customer, prefecture=prefecture)
    return user


def declare(*, nationwide=False, prefectures=("11",), key="k", message=MESSAGE):
    return declare_disaster(
        operator=OperatorUserFactory(),
        title="秩父豪雨",
        nationwide=nationwide,
        prefectures=list(prefectures),
        message=message,
        idempotency_key=key,
        confirm_overlap=True,
        now=timezone.now(),
    )


def test_the_message_typed_in_the_declare_form_is_on_the_banner_of_customers_in_scope(client):
    saitama, kochi = customer_at("11"), customer_at("39")
    client.force_login(OperatorUserFactory())
    page = client.get("/operator/disasters/new/").text
    form = next(f for f in post_forms(page) if "idempotency_key" in dict(f["fields"]))
    client.post(
        form["action"],
        form_data(
            form["fields"], title="秩父豪雨", prefectures=["11"], window_days="3", message=MESSAGE
        ),
    )

    client.force_login(saitama)
    in_scope = client.get("/").text
    client.force_login(kochi)
    elsewhere = client.get("/").text

    assert "秩父豪雨" in in_scope
    assert "停電中の拠点は衛星回線をご利用ください。<br>" in in_scope
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 詳細は後ほど" in in_scope
    assert "<script>alert(1)" not in in_scope
    assert "秩父豪雨" not in elsewhere and "停電中の拠点" not in elsewhere


def test_a_nationwide_message_reaches_every_customer_until_the_disaster_ends(client):
    customer = customer_at("39")
    blanket = declare(nationwide=True, prefectures=())
    client.force_login(customer)

    during = client.get("/").text
    end_disaster(disaster=blanket.disaster, operator=OperatorUserFactory(), now=timezone.now())
    after = client.get("/").text

    assert "停電中の拠点は衛星回線をご利用ください。" in during
    assert "停電中の拠点" not in after


def test_the_public_status_page_shows_the_message_escaped(client):
    declare()

    page = client.get("/status/").text

    assert "秩父豪雨" in page and "埼玉県" in page
    assert "停電中の拠点は衛星回線をご利用ください。<br>" in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page


def test_the_status_api_gives_each_active_disaster_its_message():
    declare(key="a")
    declare(key="b", prefectures=("39",), message="")

    disasters = APIClient().get("/api/v1/status/").json()["disasters"]

    assert sorted(d["message"] for d in disasters) == ["", MESSAGE]


def test_an_english_message_is_shown_to_customers_reading_in_english(client, send_emails):
    customer = customer_at("11")
    client.force_login(OperatorUserFactory())
    page = client.get("/operator/disasters/new/").text
    form = next(f for f in post_forms(page) if "idempotency_key" in dict(f["fields"]))
    client.post(
        form["action"],
        form_data(
            form["fields"],
            title="秩父豪雨",
            prefectures=["11"],
            window_days="3",
            message="停電中の拠点は衛星回線をご利用ください。",
            message_en="Sites without power: please use the satellite line.",
        ),
    )

    client.force_login(customer)
    japanese = client.get("/").text
    client.cookies["django_language"] = "en"
    english = client.get("/").text
    status = APIClient().get("/api/v1/status/").json()["disasters"][0]

    assert "停電中の拠点" in japanese and "Sites without power" not in japanese
    assert "Sites without power: please use the satellite line." in english
    assert status["message_en"] == "Sites without power: please use the satellite line."
