"""The upgrade pages as customers and operators use them (no JavaScript needed)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscription
from tests.factories import (
    OperatorUserFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)
from tests.upgrades.conftest import make_lines
from upgrades.models import BlanketUpgrade, SpeedGrant, UpgradeRequest
from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster, end_blanket_grants

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_user():
    user = UserFactory()
    make_lines(2, customer=user.customer)
    return user


def declare_now(operator=None, **kwargs):
    blanket = declare_disaster(
        operator=operator or OperatorUserFactory(),
        title="令和8年 能登半島地震",
        nationwide=True,
        prefectures=[],
        idempotency_key=kwargs.pop("key", "k"),
        now=timezone.now(),
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=timezone.now())
    return blanket


def test_customer_requests_an_upgrade_for_a_site(client, customer_user):
    site = customer_user.customer.sites.first()
    client.force_login(customer_user)

    response = client.post(
        reverse("upgrades:index"), {"sites": [site.pk], "reason": "disaster", "note": "停電"}
    )

    upgrade_request = UpgradeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("upgrades:request", args=[upgrade_request.pk])
    assert (upgrade_request.channel, upgrade_request.requested_by) == ("portal", customer_user)
    detail = client.get(response["Location"])
    assert "新規" in detail.text  # the history shows the request as new


def test_a_request_without_a_site_is_refused_with_a_message_and_saves_nothing(
    client, customer_user
):
    client.force_login(customer_user)

    response = client.post(reverse("upgrades:index"), {"reason": "disaster"})

    assert response.status_code == 400
    assert "設置場所を1つ以上選んでください" in response.text
    assert not UpgradeRequest.objects.exists()


def test_a_customer_cannot_request_for_or_see_another_organisations_sites(client, customer_user):
    other = SubscriptionFactory().site
    client.force_login(customer_user)

    response = client.post(reverse("upgrades:index"), {"sites": [other.pk], "reason": "disaster"})
    page = client.get(reverse("upgrades:index"))

    assert response.status_code == 400
    assert not UpgradeRequest.objects.exists()
    assert other.name not in page.text


def test_another_organisations_request_is_not_found(client, customer_user):
    theirs = UpgradeRequest.objects.create(
        customer=SubscriptionFactory().site.customer,
        reason="disaster",
        channel="phone",
        received_at=timezone.now(),
    )
    client.force_login(customer_user)

    assert client.get(reverse("upgrades:request", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("upgrades:cancel-request", args=[theirs.pk])).status_code == 404


def test_the_banner_asks_every_page_and_answers_keep_or_decline(client, customer_user):
    blanket = declare_now()
    keep, decline = SpeedGrant.objects.order_by("pk")
    client.force_login(customer_user)

    home = client.get(reverse("home"))
    client.post(reverse("upgrades:respond"), {"grant": keep.pk, "keep": "1", "next": "/"})
    client.post(reverse("upgrades:respond"), {"grant": decline.pk, "keep": "0", "next": "/"})
    after = client.get(reverse("home"))

    deadline = timezone.localtime(blanket.deadline).strftime("%Y-%m-%d %H:%M")
    assert "回線を高速化しました" in home.text and deadline in home.text
    keep.refresh_from_db()
    decline.refresh_from_db()
    assert (keep.state, keep.response_channel) == ("active", "portal")
    assert decline.state == "declined"
    assert "回線を高速化しました" not in after.text


def test_keep_all_answers_every_pending_grant_of_the_organisation_only(client, customer_user):
    make_lines(1)  # another organisation's line
    declare_now()
    client.force_login(customer_user)

    client.post(reverse("upgrades:respond"), {"grant": "all", "keep": "1"})

    states = dict(SpeedGrant.objects.values_list("subscription__site__customer", "state"))
    assert set(
        SpeedGrant.objects.filter(state="active").values_list(
            "subscription__site__customer", flat=True
        )
    ) == {customer_user.customer_id}
    assert "pending" in states.values()


def test_a_customer_cannot_answer_another_organisations_grant(client, customer_user):
    others = make_lines(1)
    declare_now()
    theirs = SpeedGrant.objects.get(subscription=others[0])
    client.force_login(customer_user)

    client.post(reverse("upgrades:respond"), {"grant": theirs.pk, "keep": "0"})

    theirs.refresh_from_db()
    assert theirs.state == "pending"


ANSWER_LINK = r"http://127.0.0.1:8000(/upgrades/answer/\S+/)"


def test_a_lines_link_in_the_e_mail_asks_before_it_answers(client, customer_user, send_emails):
    declare_now()
    (message,) = send_emails()
    grant = SpeedGrant.objects.order_by("subscription__site__name").first()
    # Each line's own link sits under its contract number and status.
    body = message.body
    first_line = body[body.index(grant.subscription.contract_number) :]
    line_link = re.search("この回線への回答: " + ANSWER_LINK, first_line).group(1)

    shown = client.get(line_link)  # what a mail scanner does: nothing changes
    grant.refresh_from_db()
    assert shown.status_code == 200 and grant.state == "pending"
    assert 'name="answer" value="keep"' in shown.text
    assert 'name="answer" value="decline"' in shown.text
    answered = client.post(line_link, {"answer": "keep"})
    grant.refresh_from_db()
    assert answered.status_code == 200
    assert (grant.state, grant.response_channel) == ("active", "email_link")
    # the other line still waits
    assert SpeedGrant.objects.filter(state="pending").count() == 1


def test_the_keep_all_link_answers_every_line_of_the_customer_at_once(
    client, customer_user, send_emails
):
    other = make_lines(1)  # another customer's line in the same disaster
    declare_now()
    mine = next(m for m in send_emails() if customer_user.email in m.to)
    after = mine.body[mine.body.index("高速化が必要な場合は") :]
    keep_all = re.search(ANSWER_LINK, after).group(1)

    client.get(keep_all)
    response = client.post(keep_all)

    assert response.status_code == 200
    states = dict(SpeedGrant.objects.values_list("subscription_id", "state"))
    assert {
        states[line.pk]
        for line in Subscription.objects.filter(site__customer=customer_user.customer)
    } == {"active"}
    assert states[other[0].pk] == "pending"  # never another organisation's line


def test_a_forged_link_is_refused(client):
    assert client.get("/upgrades/answer/not-a-token/").status_code == 404
    assert client.post("/upgrades/answer/not-a-token/").status_code == 404


def test_the_blanket_e_mail_is_japanese_with_english_below_and_sent_once(
    customer_user, send_emails
):
    declare_now()

    send_emails()
    sent = send_emails()

    assert len(sent) == 1  # one per customer, never twice
    body = sent[0].body
    assert body.index("高速化") < body.index("English") < body.index("upgraded")
    assert customer_user.email in sent[0].to
    for line in Subscription.objects.filter(site__customer=customer_user.customer):
        assert body.count(line.contract_number) == 2  # in each language


def test_operator_declares_from_the_dashboard_and_a_double_submit_declares_once(client):
    make_lines(3)
    client.force_login(OperatorUserFactory())
    form = {
        "title": "首都直下地震",
        "nationwide": "on",
        "window_days": "3",
        "idempotency_key": "form-123",
    }

    first = client.post(reverse("upgrades:declare"), form)
    second = client.post(reverse("upgrades:declare"), form)

    blanket = BlanketUpgrade.objects.get()
    assert (
        first["Location"] == second["Location"] == reverse("upgrades:disaster", args=[blanket.pk])
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=timezone.now())  # the task's work
    page = client.get(first["Location"])
    progress = client.get(reverse("upgrades:progress", args=[blanket.pk])).json()
    assert "首都直下地震" in page.text
    assert progress["total"] == progress["pending"] == 3


def test_declaring_without_a_scope_shows_the_form_again(client):
    client.force_login(OperatorUserFactory())

    response = client.post(
        reverse("upgrades:declare"), {"title": "x", "window_days": "3", "idempotency_key": "a"}
    )

    assert response.status_code == 400
    assert "全国か、1つ以上の都道府県を選んでください" in response.text
    assert not BlanketUpgrade.objects.exists()


def test_operator_extends_the_deadline_and_ends_the_disaster(client):
    make_lines(2)
    blanket = declare_now()
    client.force_login(OperatorUserFactory())
    later = timezone.localtime(blanket.deadline + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    client.post(reverse("upgrades:extend", args=[blanket.pk]), {"deadline": later})
    client.post(reverse("upgrades:end", args=[blanket.pk]), {"confirm": "yes"})

    blanket.refresh_from_db()
    assert timezone.localtime(blanket.deadline).strftime("%Y-%m-%dT%H:%M") == later
    assert blanket.status == "ended"
    end_blanket_grants(blanket_id=blanket.pk, now=timezone.now())  # the task's work
    assert not Subscription.objects.filter(speed__desired_upgraded=True).exists()


@pytest.mark.parametrize("factory", [UserFactory, SupportUserFactory])
def test_only_operators_declare_or_end(client, factory):
    blanket = declare_now()
    client.force_login(factory())

    assert client.post(reverse("upgrades:declare"), {"title": "x"}).status_code == 403
    assert client.post(reverse("upgrades:end", args=[blanket.pk])).status_code == 403
    assert client.get(reverse("upgrades:progress", args=[blanket.pk])).status_code == 403


@pytest.mark.parametrize(
    "url", ["upgrades:index", "/api/v1/upgrade-requests/", "/api/v1/grants/"], ids=str
)
def test_upgrade_lists_keep_their_query_count_as_rows_grow(
    client, customer_user, url, django_assert_max_num_queries
):
    from upgrades.services.requests import request_upgrade

    client.force_login(customer_user)
    target = reverse(url) if ":" in url else url

    def add_rows(n):
        for _ in range(n):
            request_upgrade(
                customer=customer_user.customer,
                sites=list(customer_user.customer.sites.all()),
                reason="disaster",
                channel="portal",
                requested_by=customer_user,
                now=timezone.now(),
            )

    def count():
        with django_assert_max_num_queries(40) as captured:
            assert client.get(target).status_code == 200
        return len(captured.captured_queries)

    declare_now(key="a")
    add_rows(1)
    few = count()
    add_rows(10)
    many = count()

    assert many == few


def test_answering_twice_by_the_same_link_says_it_was_already_answered(
    client, customer_user, send_emails
):
    declare_now()
    (message,) = send_emails()
    after = message.body[message.body.index("高速化が必要な場合は") :]
    keep_all = re.search(ANSWER_LINK, after).group(1)

    first = client.post(keep_all)
    again = client.post(keep_all)  # a double click, or a colleague with the same e-mail

    assert first.status_code == again.status_code == 200
    assert "すでに" in again.text and "カスタマーサポートにお電話" not in again.text
    assert set(SpeedGrant.objects.values_list("state", flat=True)) == {"active"}
