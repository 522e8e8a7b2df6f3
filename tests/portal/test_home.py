"""The customer home over the slow satellite line: a summary first, then a page of sites,
small and with the same queries whatever the size of the customer."""

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from incidents.models import CheckIn
from subscriptions.models import LineSpeed, Subscription
from tests.factories import (
    SiteFactory,
    SpeedGrantFactory,
    SubscriptionFactory,
    UserFactory,
    give_lines,
)
from tests.upgrades.conftest import form_data, post_forms

pytestmark = pytest.mark.django_db


def fetch_counting_queries(client, url="/", **headers):
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, **headers)
    assert response.status_code == 200
    return response, len(queries)


def link(html: str, text: str) -> str:
    match = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(text), html)
    assert match, f"no link {text!r}"
    return match.group(1).replace("&amp;", "&")


def test_the_home_of_a_customer_with_2000_lines_is_small_and_as_cheap_as_with_one(client):
    user = UserFactory()
    client.force_login(user)
    give_lines(user.customer, sites=1, per_site=1)
    _, few = fetch_counting_queries(client)

    give_lines(user.customer, sites=400, per_site=5)
    plain, many = fetch_counting_queries(client)
    gzipped, _ = fetch_counting_queries(client, HTTP_ACCEPT_ENCODING="gzip")

    assert many == few
    assert gzipped["Content-Encoding"] == "gzip"
    assert len(gzipped.content) <= 30_000
    assert len(plain.content) <= 60_000
    # Two CSRF tokens (log out, language); no check-in form per site.
    assert plain.text.count("csrfmiddlewaretoken") == 2
    assert re.search(r"<td>2,?001</td>", plain.text)  # total lines in the summary


def test_the_summary_counts_lines_by_state_before_the_sites(client):
    user = UserFactory()
    client.force_login(user)
    today = timezone.localdate()
    site = SiteFactory(customer=user.customer)
    in_service = SubscriptionFactory(site=site, service_start=date(2024, 4, 1))
    SubscriptionFactory(site=site, service_start=today - timedelta(days=5 * 365 - 30))
    LineSpeed.objects.filter(subscription=in_service).update(applied_upgraded=True)
    SubscriptionFactory(site=site, service_start=date(2015, 4, 1))  # expired
    SpeedGrantFactory(subscription=in_service)

    html = client.get(reverse("home")).text

    lines = list(Subscription.objects.all())
    states = [line.state_on(today) for line in lines]
    expected = [
        len(lines),
        sum(state in Subscription.IN_SERVICE_STATES for state in states),
        1,
        1,
        states.count(Subscription.State.EXPIRING_SOON),
    ]
    assert expected == [3, 2, 1, 1, 1]
    summary = html[html.index('id="summary-h"') : html.index("</table>")]
    assert re.findall(r"<td>(?:<a [^>]+>)?(\d+)", summary) == [str(n) for n in expected]
    assert html.index('id="summary-h"') < html.index(f'id="site-{site.pk}"')
    # The banner asking for an answer stays at the top, with its forms.
    assert html.index('id="pending-h"') < html.index('id="summary-h"')
    assert any(form["action"] == reverse("upgrades:respond") for form in post_forms(html))


def test_a_customer_pages_through_sites_keeping_the_query_string(client):
    user = UserFactory()
    client.force_login(user)
    give_lines(user.customer, sites=45, per_site=1)

    first = client.get("/?lang=ja").text
    second_url = link(first, "次へ")
    second = client.get(second_url).text
    third = client.get(link(second, "3")).text

    assert "拠点0000" in first and "拠点0020" not in first
    assert "lang=ja" in second_url and "page=2" in second_url
    assert "拠点0020" in second and "拠点0039" in second and "拠点0019" not in second
    assert "拠点0044" in third


def test_a_site_with_many_lines_shows_a_few_and_links_to_all(client):
    user = UserFactory()
    client.force_login(user)
    give_lines(user.customer, sites=1, per_site=60)

    home = client.get("/").text
    all_lines = client.get(link(home, "この拠点の全60回線")).text
    next_page = client.get(link(all_lines, "次へ")).text

    assert len(re.findall(r'href="/subscriptions/\d+/"', home)) == 10
    assert len(re.findall(r'href="/subscriptions/\d+/"', all_lines)) == 50
    assert len(re.findall(r'href="/subscriptions/\d+/"', next_page)) == 10


def test_a_customer_records_a_check_from_the_sites_own_check_in_page(client):
    user = UserFactory()
    site = SiteFactory(customer=user.customer)
    client.force_login(user)

    home = client.get("/").text
    page = client.get(link(home, "疎通確認を記録する"))
    form = next(f for f in post_forms(page.text) if f["action"].endswith("/check-in/"))
    client.post(form["action"], form_data(form["fields"], equipment="damaged", note="傾き"))

    check = CheckIn.objects.get()
    assert (check.site, check.equipment, check.note, check.web_ok) == (
        site, "damaged", "傾き", True,
    )  # fmt: skip
    assert page.text.count("csrfmiddlewaretoken") == 4  # log out, language, the check, the link
