"""Merging two contacts that are the same matter: history kept, the customer told once."""

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from desk.models import Inquiry
from desk.services import (
    close_inquiry,
    customer_follow_up,
    merge_contacts,
    open_inquiry,
    reply_to_inquiry,
)
from incidents.models import DamagePhoto, DamageReport, FieldVisit
from incidents.services import report_damage
from support.models import OutboundEmail
from tests.factories import (
    SiteFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UpgradeRequestFactory,
    UserFactory,
)
from upgrades.models import UpgradeRequest

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
WORKING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)


class _Form(HTMLParser):
    """The fields of the page's forms as a browser posts them: inputs with their value,
    each select's options (value, label)."""

    def __init__(self):
        super().__init__()
        self.inputs: list[tuple[str, str]] = []
        self.selects: dict[str, list[tuple[str, str]]] = {}
        self._select = self._option = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") != "submit":
            if attrs.get("type") != "checkbox" or "checked" in attrs:
                self.inputs.append((attrs["name"], attrs.get("value", "")))
        elif tag == "select":
            self._select = attrs["name"]
            self.selects[self._select] = []
        elif tag == "option" and self._select:
            self._option = attrs.get("value", "")
            self.selects[self._select].append((self._option, ""))

    def handle_data(self, data):
        if self._option is not None:
            value, label = self.selects[self._select][-1]
            self.selects[self._select][-1] = (value, label + data)

    def handle_endtag(self, tag):
        if tag == "option":
            self._option = None
        elif tag == "select":
            self._select = None


def parse(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


@pytest.fixture
def agent(client):
    user = SupportUserFactory(is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def customer_user():
    user = UserFactory(customer__name="秩父観光株式会社", email="soumu@chichibu.example")
    SiteFactory(customer=user.customer, name="本社")
    return user


def ask(user, subject: str, body: str, *, now=WORKING) -> Inquiry:
    return open_inquiry(
        customer=user.customer, subject=subject, body=body, channel="portal", by=user, now=now
    )


def merge_in_admin(client, changelist: str, duplicates, into) -> str:
    """As the agent does: tick the duplicates on the changelist, choose "Merge into…",
    pick the target's number on the next page and confirm. Returns the final page."""
    page = client.get(changelist).text
    form = parse(page)
    assert "merge_into" in [value for value, _ in form.selects["action"]]
    ticks = set(re.findall(r'name="_selected_action" value="(\d+)"', page))
    assert {str(d.pk) for d in duplicates} <= ticks
    csrf = dict(form.inputs)["csrfmiddlewaretoken"]
    asked = client.post(
        changelist,
        {
            "csrfmiddlewaretoken": csrf,
            "action": "merge_into",
            "_selected_action": [d.pk for d in duplicates],
        },
    )
    assert asked.status_code == 200
    step = parse(asked.text)
    (target,) = [v for v, label in step.selects["into"] if label.startswith(f"#{into.pk} ")]
    data: dict[str, list[str]] = {}
    for name, value in step.inputs:
        data.setdefault(name, []).append(value)
    data["into"] = [target]
    done = client.post(changelist, data, follow=True)
    assert done.status_code == 200
    return done.text


def test_an_agent_merges_a_duplicate_inquiry_and_the_customer_sees_one_conversation(
    client, agent, customer_user, django_capture_on_commit_callbacks, send_emails
):
    # given the same question asked twice, the first already answered
    first = ask(customer_user, "回線が遅い", "本社の回線が遅いです")
    reply_to_inquiry(inquiry=first, by=agent, body="確認します", internal=False, now=WORKING)
    later = WORKING + timedelta(minutes=30)
    duplicate = ask(customer_user, "まだ遅い", "30分経っても遅いです", now=later)
    send_emails()  # the reply to the first

    # when the agent merges the second into the first in the admin
    with django_capture_on_commit_callbacks(execute=True):
        page = merge_in_admin(client, reverse("admin:desk_inquiry_changelist"), [duplicate], first)

    # then the duplicate is closed into the first, which waits for an answer again
    duplicate.refresh_from_db()
    first.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into) == ("closed", first)
    assert duplicate.closed_at is not None
    assert first.status == "new"
    assert f"#{first.pk}" in page
    # the history is kept: the duplicate's message, with its time, in the first's conversation
    moved = first.messages.get(body="30分経っても遅いです")
    assert moved.created_at == later
    assert first.messages.filter(internal=True, body__contains=f"#{duplicate.pk}").exists()
    assert duplicate.messages.filter(internal=True, body__contains=f"#{first.pk}").exists()
    # the customer is told once
    sent = send_emails()
    merged = [email for email in sent if f"#{duplicate.pk}" in email.subject]
    assert len(merged) == 1 and len(sent) == 2
    assert f"#{first.pk}" in merged[0].body
    assert "soumu@chichibu.example" in merged[0].to

    # the customer's portal: the duplicate points to the first, which shows everything
    client.force_login(customer_user)
    old = client.get(reverse("desk:inquiry", args=[duplicate.pk])).text
    link = re.search(rf'<a href="([^"]+)">#{first.pk}</a>', old).group(1)
    assert "<textarea" not in old  # nothing more is written under the duplicate
    conversation = client.get(link).text
    for body in ["本社の回線が遅いです", "確認します", "30分経っても遅いです"]:
        assert body in conversation
    # the staff's notes about the merge stay internal
    assert not [m for m in first.messages.filter(internal=True) if m.body in conversation]


def test_nothing_more_is_sent_about_a_merged_inquiry(
    client, agent, customer_user, django_capture_on_commit_callbacks, send_emails
):
    first = ask(customer_user, "回線が遅い", "遅いです")
    duplicate = ask(customer_user, "回線が遅い(再送)", "遅いです")
    merge_contacts(duplicate=duplicate, into=first, by=agent, now=WORKING)

    # merging again, replying or following up under the duplicate: refused, nothing queued
    with pytest.raises(ValidationError):
        merge_contacts(duplicate=duplicate, into=first, by=agent, now=WORKING)
    with pytest.raises(ValidationError):
        reply_to_inquiry(inquiry=duplicate, by=agent, body="回答", internal=False, now=WORKING)
    with pytest.raises(ValidationError):
        customer_follow_up(inquiry=duplicate, by=customer_user, body="まだ?", now=WORKING)

    assert OutboundEmail.objects.filter(key__startswith="merged:").count() == 1
    assert OutboundEmail.objects.count() == 1


@pytest.mark.parametrize("case", ["other customer", "other kind", "itself", "closed", "chain"])
def test_merges_that_would_tangle_two_matters_are_refused(agent, customer_user, case):
    first = ask(customer_user, "件名A", "本文A")
    duplicate = ask(customer_user, "件名B", "本文B")
    if case == "other customer":
        duplicate = ask(UserFactory(), "件名B", "本文B")
    elif case == "other kind":
        duplicate = report_damage(
            site=customer_user.customer.sites.get(),
            description="傾いた",
            photos=[],
            channel="portal",
            now=WORKING,
        )
    elif case == "itself":
        duplicate = first
    elif case == "closed":
        close_inquiry(inquiry=first, by=agent, now=WORKING)
    elif case == "chain":
        third = ask(customer_user, "件名C", "本文C")
        merge_contacts(duplicate=first, into=third, by=agent, now=WORKING)
        first.refresh_from_db()

    with pytest.raises(ValidationError):
        merge_contacts(duplicate=duplicate, into=first, by=agent, now=WORKING)

    assert not OutboundEmail.objects.filter(key=f"merged:inquiry:{duplicate.pk}").exists()
    if case != "itself" and isinstance(duplicate, Inquiry):
        duplicate.refresh_from_db()
        assert duplicate.merged_into is None and duplicate.status == "new"


def test_the_merge_page_offers_only_the_same_customers_open_contacts(client, agent, customer_user):
    duplicate = ask(customer_user, "重複", "本文")
    mine = ask(customer_user, "元の件", "本文")
    closed = ask(customer_user, "終わった件", "本文")
    close_inquiry(inquiry=closed, by=agent, now=WORKING)
    theirs = ask(UserFactory(), "他社の件", "本文")
    changelist = reverse("admin:desk_inquiry_changelist")
    csrf = dict(parse(client.get(changelist).text).inputs)["csrfmiddlewaretoken"]

    asked = client.post(
        changelist,
        {"csrfmiddlewaretoken": csrf, "action": "merge_into", "_selected_action": [duplicate.pk]},
    )
    mixed = client.post(
        changelist,
        {
            "csrfmiddlewaretoken": csrf,
            "action": "merge_into",
            "_selected_action": [duplicate.pk, theirs.pk],
        },
        follow=True,
    )

    offered = [value for value, _ in parse(asked.text).selects["into"]]
    assert offered == [str(mine.pk)]
    assert closed.pk not in offered and theirs.pk not in offered
    assert not Inquiry.objects.filter(merged_into__isnull=False).exists()
    assert mixed.status_code == 200 and "into" not in parse(mixed.text).selects


def test_an_agent_merges_a_duplicate_upgrade_request_and_its_sites_join(
    client, agent, customer_user, django_capture_on_commit_callbacks, send_emails
):
    head_office = customer_user.customer.sites.get()
    branch = SiteFactory(customer=customer_user.customer, name="支店")
    for site in (head_office, branch):
        SubscriptionFactory(site=site)
    first = UpgradeRequestFactory(customer=customer_user.customer, sites=[head_office])
    duplicate = UpgradeRequestFactory(customer=customer_user.customer, sites=[branch])

    with django_capture_on_commit_callbacks(execute=True):
        merge_in_admin(
            client, reverse("admin:upgrades_upgraderequest_changelist"), [duplicate], first
        )

    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into) == (UpgradeRequest.Status.CANCELLED, first)
    event = duplicate.events.get()
    assert (event.status, f"#{first.pk}" in event.note) == ("cancelled", True)
    assert set(first.sites.all()) == {head_office, branch}
    (email,) = send_emails()
    assert f"#{duplicate.pk}" in email.subject and f"#{first.pk}" in email.body
    # the customer's page of the duplicate says where it went
    client.force_login(customer_user)
    page = client.get(reverse("upgrades:request", args=[duplicate.pk])).text
    link = re.search(rf'<a href="([^"]+)">#{first.pk}</a>', page).group(1)
    assert "支店" in client.get(link).text


def test_only_a_new_upgrade_request_can_be_merged(agent, customer_user):
    first = UpgradeRequestFactory(customer=customer_user.customer)
    decided = UpgradeRequestFactory(
        customer=customer_user.customer, status=UpgradeRequest.Status.APPROVED
    )

    with pytest.raises(ValidationError):
        merge_contacts(duplicate=decided, into=first, by=agent, now=WORKING)

    decided.refresh_from_db()
    assert (decided.status, decided.merged_into) == ("approved", None)


def test_an_agent_merges_a_duplicate_damage_report_with_its_photos_and_visits(
    client, agent, customer_user, django_capture_on_commit_callbacks, send_emails
):
    site = customer_user.customer.sites.get()
    first, duplicate = (
        report_damage(site=site, description=text, photos=[], channel="portal", now=WORKING)
        for text in ["アンテナが傾いた", "アンテナが傾いています(電話)"]
    )
    photo = DamagePhoto.objects.create(
        report=duplicate, image="damage/x.jpg", content_type="image/jpeg", size=1
    )
    visit = FieldVisit.objects.create(report=duplicate)

    with django_capture_on_commit_callbacks(execute=True):
        merge_in_admin(
            client, reverse("admin:incidents_damagereport_changelist"), [duplicate], first
        )

    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into) == (DamageReport.Status.CLOSED, first)
    assert duplicate.closed_at is not None
    assert list(first.photos.all()) == [photo] and list(first.visits.all()) == [visit]
    (email,) = send_emails()
    assert f"#{duplicate.pk}" in email.subject and f"#{first.pk}" in email.body
    client.force_login(customer_user)
    page = client.get(reverse("incidents:damage-report", args=[duplicate.pk])).text
    link = re.search(rf'<a href="([^"]+)">#{first.pk}</a>', page).group(1)
    assert client.get(link).status_code == 200
