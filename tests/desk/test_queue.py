"""The support desk's one queue across contact kinds (/desk/), used as an agent does:
open it, pick filters in the form it shows, follow its page links."""

import re
from datetime import datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from desk.models import Inquiry
from desk.queue import customer_url
from desk.services import open_inquiry
from incidents.models import DamageReport
from tests.factories import (
    CustomerFactory,
    OperatorUserFactory,
    SiteFactory,
    SupportUserFactory,
    UpgradeRequestFactory,
    UserFactory,
)
from tests.upgrades.conftest import make_lines
from upgrades.services.requests import request_upgrade

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=JST)
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)


class _Page(HTMLParser):
    """What an agent sees of the queue: the filter form's fields, the links, the rows."""

    def __init__(self):
        super().__init__()
        self.in_filters = False
        self.select: str | None = None
        self.fields: dict[str, dict] = {}
        self.links: list[dict] = []
        self.rows: list[dict] = []
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "queue-filters":
            self.in_filters = True
        elif self.in_filters and tag == "input" and a.get("type") == "checkbox":
            self.fields[a["name"]] = {"type": "checkbox", "checked": "checked" in a}
        elif self.in_filters and tag == "select":
            self.select = a["name"]
            self.fields[a["name"]] = {"type": "select", "options": [], "selected": None}
        elif self.select and tag == "option":
            self.fields[self.select]["options"].append(a["value"])
            if "selected" in a:
                self.fields[self.select]["selected"] = a["value"]
        elif tag == "a":
            self.links.append(a)
        elif tag == "tr" and "data-contact" in a:
            self.rows.append(a)
        elif tag == "script":
            self.scripts.append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_filters = False
        elif tag == "select":
            self.select = None


def read(response) -> _Page:
    assert response.status_code == 200
    page = _Page()
    page.feed(response.content.decode())
    return page


def submit_filters(client, response, **choices):
    """Submit the filter form as the page renders it, with the agent's changes."""
    page = read(response)
    params = {}
    for name, field in page.fields.items():
        if field["type"] == "checkbox":
            if choices.pop(name, field["checked"]):
                params[name] = "on"
        else:
            value = choices.pop(name, field["selected"] or field["options"][0])
            assert value in field["options"], (name, value)
            params[name] = value
    assert not choices, f"no such filter on the page: {choices}"
    return client.get("/desk/", params)


def contacts(response) -> list[str]:
    return [row["data-contact"] for row in read(response).rows]


def link(response, **attrs) -> str:
    for a in read(response).links:
        if all(a.get(k) == v for k, v in attrs.items()):
            # Resolved against the page's own address, as the browser does ("?page=2").
            return urljoin(response.wsgi_request.get_full_path(), unescape(a["href"]))
    raise AssertionError(f"no link {attrs}")


def inquiry(customer, subject="請求書について", **fields) -> Inquiry:
    fields.setdefault("received_at", timezone.now())
    return Inquiry.objects.create(customer=customer, subject=subject, channel="portal", **fields)


def damage_report(description="傾いた", **fields) -> DamageReport:
    fields.setdefault("received_at", timezone.now())
    return DamageReport.objects.create(
        site=SiteFactory(), description=description, channel="phone", **fields
    )


def test_open_contacts_of_every_kind_in_one_list_with_filters(client):
    user = UserFactory()
    line = make_lines(1, customer=user.customer)[0]
    request_upgrade(
        customer=user.customer, sites=[line.site], reason="disaster", channel="phone", now=NIGHT
    )
    damage_report(received_at=NOON)
    open_inquiry(
        customer=user.customer, subject="請求書について", body="宛名", channel="portal", by=user,
        now=NOON,
    )  # fmt: skip
    client.force_login(SupportUserFactory())

    everything = client.get("/desk/")
    night_only = submit_filters(client, everything, after_hours=True)
    inquiries = submit_filters(client, everything, kind="inquiry")

    assert "傾いた" in everything.text and "請求書について" in everything.text
    assert "高速化申込" in everything.text
    assert len(contacts(everything)) == 3
    assert "傾いた" not in night_only.text and "高速化申込" in night_only.text
    assert "請求書について" in inquiries.text and "傾いた" not in inquiries.text
    # The form shows the filters the agent chose, and they are in the URL.
    assert read(night_only).fields["after_hours"]["checked"]
    assert read(inquiries).fields["kind"]["selected"] == "inquiry"


def test_customers_cannot_open_the_desk(client):
    client.force_login(UserFactory())

    assert client.get("/desk/").status_code == 403


def test_operators_open_the_desk_from_their_dashboard(client):
    client.force_login(OperatorUserFactory())

    dashboard = client.get("/operator/")
    queue = client.get(link(dashboard, id="support-queue-link"))

    assert queue.status_code == 200 and 'id="queue-rows"' in queue.text


def test_the_admin_links_to_the_queue(client):
    inquiry(CustomerFactory(name="秩父商店"))
    client.force_login(SupportUserFactory())

    admin_index = client.get("/admin/")
    queue = client.get(link(admin_index, id="support-queue-link"))

    assert "秩父商店" in queue.text


def test_closed_and_merged_contacts_leave_the_open_queue_but_all_shows_them(client):
    customer = CustomerFactory()
    kept = inquiry(customer, "残る")
    inquiry(customer, "終わった", status="closed", closed_at=timezone.now())
    inquiry(customer, "重複", merged_into=kept)
    client.force_login(SupportUserFactory())

    opened = client.get("/desk/")
    everything = submit_filters(client, opened, status="all")

    assert contacts(opened) == [f"inquiry-{kept.pk}"]
    assert len(contacts(everything)) == 3


def test_mine_unassigned_overdue_and_priority_filters(client):
    me, colleague = SupportUserFactory(), SupportUserFactory()
    customer = CustomerFactory()
    with time_machine.travel(NOON, tick=False):
        mine = inquiry(customer, assignee=me, respond_by=NOON + timedelta(hours=1))
        theirs = damage_report(assignee=colleague, respond_by=NOON - timedelta(hours=1))
        late = UpgradeRequestFactory(customer=customer, respond_by=NOON - timedelta(minutes=5))
        answered_late = inquiry(
            customer, respond_by=NOON - timedelta(hours=2), first_response_at=NOON
        )
        urgent = inquiry(customer, priority="high", respond_by=NOON + timedelta(minutes=30))
        client.force_login(me)

        queue = client.get("/desk/")
        only_mine = submit_filters(client, queue, mine=True)
        unassigned = submit_filters(client, queue, unassigned=True)
        overdue = submit_filters(client, queue, overdue=True)
        high = submit_filters(client, queue, priority="high")

    assert contacts(only_mine) == [f"inquiry-{mine.pk}"]
    assert set(contacts(unassigned)) == {
        f"upgrade_request-{late.pk}",
        f"inquiry-{answered_late.pk}",
        f"inquiry-{urgent.pk}",
    }
    # Past the target and not answered yet, the colleague's one too; answered late is not.
    assert set(contacts(overdue)) == {f"upgrade_request-{late.pk}", f"damage_report-{theirs.pk}"}
    assert all("overdue" in row["class"] for row in read(overdue).rows)
    assert contacts(high) == [f"inquiry-{urgent.pk}"]
    assert "badge off" in high.text  # high priority is marked, not just listed


def test_sorts_by_priority_age_and_first_response_target(client):
    customer = CustomerFactory()
    old = inquiry(customer, received_at=NOON - timedelta(hours=3), respond_by=NOON)
    high = damage_report(
        received_at=NOON - timedelta(hours=1),
        priority="high",
        respond_by=NOON + timedelta(hours=2),
    )
    new = UpgradeRequestFactory(
        customer=customer, received_at=NOON, respond_by=NOON - timedelta(hours=1)
    )
    no_target = inquiry(customer, received_at=NOON - timedelta(hours=2))
    ids = {
        "old": f"inquiry-{old.pk}",
        "high": f"damage_report-{high.pk}",
        "new": f"upgrade_request-{new.pk}",
        "none": f"inquiry-{no_target.pk}",
    }
    client.force_login(SupportUserFactory())
    queue = client.get("/desk/")

    def order(sort):
        names = {v: k for k, v in ids.items()}
        return [names[c] for c in contacts(submit_filters(client, queue, sort=sort))]

    assert order("priority") == ["high", "old", "none", "new"]
    assert order("oldest") == ["old", "none", "high", "new"]
    assert order("newest") == ["new", "high", "none", "old"]
    assert order("sla") == ["new", "old", "high", "none"]
    # Triage is the default.
    assert read(queue).fields["sort"]["options"][0] == "priority"


def _make_contacts(n: int, *, staff) -> None:
    customer = CustomerFactory()
    start = NOON - timedelta(days=10)
    for i in range(n):
        at = start + timedelta(minutes=10 * i)
        assignee = staff if i % 2 else None
        if i % 3 == 0:
            inquiry(customer, f"問い合わせ {i}", received_at=at, assignee=assignee)
        elif i % 3 == 1:
            damage_report(f"破損 {i}", received_at=at, assignee=assignee)
        else:
            UpgradeRequestFactory(received_at=at, assignee=assignee)


def test_query_count_does_not_grow_with_the_contacts(client, django_assert_max_num_queries):
    staff = SupportUserFactory()
    client.force_login(staff)
    _make_contacts(3, staff=staff)
    client.get("/desk/")  # warm the session and permissions caches alike for both runs
    with CaptureQueriesContext(connection) as few:
        assert len(contacts(client.get("/desk/"))) == 3

    _make_contacts(57, staff=staff)
    with django_assert_max_num_queries(len(few)):
        assert len(contacts(client.get("/desk/"))) == 25


def test_sixty_open_contacts_are_three_pages_and_the_oldest_is_reached_by_next_links(client):
    staff = SupportUserFactory()
    _make_contacts(60, staff=staff)
    oldest = Inquiry.objects.order_by("received_at").first()
    client.force_login(staff)

    page = submit_filters(client, client.get("/desk/"), sort="newest")
    seen, pages = contacts(page), 1
    while True:
        try:
            next_url = link(page, rel="next")
        except AssertionError:
            break
        assert "sort=newest" in next_url  # the page links keep the filters
        page = client.get(next_url)
        seen += contacts(page)
        pages += 1

    assert pages == 3
    assert len(seen) == len(set(seen)) == 60
    assert seen[-1] == f"inquiry-{oldest.pk}"


def test_bad_filter_values_are_ignored_with_a_message_never_a_500(client):
    inquiry(CustomerFactory())
    client.force_login(SupportUserFactory())

    response = client.get(
        "/desk/", {"kind": "nope", "sort": "'; drop", "priority": "9" * 30, "page": "x"}
    )
    beyond = client.get("/desk/", {"page": "99999999999999999999"})

    assert 'id="filter-errors"' in response.text
    assert len(contacts(response)) == 1
    assert len(contacts(beyond)) == 1


def test_each_row_links_to_the_contacts_admin_page(client):
    customer = CustomerFactory(name="秩父商店")
    contact = inquiry(customer, "宛名の変更")
    UpgradeRequestFactory(customer=customer)
    client.force_login(SupportUserFactory())
    queue = client.get("/desk/")

    change_page = client.get(link(queue, href=f"/admin/desk/inquiry/{contact.pk}/change/"))
    hrefs = [a["href"] for a in read(queue).links]

    assert change_page.status_code == 200 and "宛名の変更" in change_page.text
    assert any(re.fullmatch(r"/admin/upgrades/upgraderequest/\d+/change/", h) for h in hrefs)
    # The customer's name links to the desk's customer page once the desk has one.
    if customer_url(customer.pk):
        assert customer_url(customer.pk) in hrefs


def test_the_page_says_when_it_was_loaded_and_refreshes_by_its_own_script(client):
    inquiry(CustomerFactory())
    client.force_login(SupportUserFactory())

    with time_machine.travel(NIGHT, tick=False):
        response = client.get("/desk/")

    page = read(response)
    assert "2026-11-24 23:00:00" in response.text  # Japan time, not UTC (14:00)
    # Only the portal's own file: the Content-Security-Policy forbids inline script.
    assert [s.get("src") for s in page.scripts] == ["/static/desk/refresh.js"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = Path(finders.find("desk/refresh.js")).read_text(encoding="utf-8")
    assert "getSelection" in script and 'getElementById("queue")' in script
    assert re.search(r'id="queue" data-refresh="30"', response.text)


def test_the_sla_sort_puts_contacts_still_waiting_before_those_answered(client):
    # an approved request met its target long ago; an inquiry still waits for an answer
    customer = CustomerFactory()
    answered = UpgradeRequestFactory(
        customer=customer,
        status="approved",
        respond_by=NOON - timedelta(hours=5),
        first_response_at=NOON - timedelta(hours=6),
    )
    waiting = inquiry(customer, respond_by=NOON + timedelta(hours=1))
    client.force_login(SupportUserFactory())

    page = submit_filters(client, client.get("/desk/"), sort="sla")

    assert contacts(page) == [f"inquiry-{waiting.pk}", f"upgrade_request-{answered.pk}"]


def test_a_closed_contact_is_never_marked_late(client):
    customer = CustomerFactory()
    with time_machine.travel(NOON, tick=False):
        closed = inquiry(
            customer,
            status="closed",
            closed_at=NOON,
            respond_by=NOON - timedelta(hours=1),
        )
        late = inquiry(customer, respond_by=NOON - timedelta(hours=1))
        client.force_login(SupportUserFactory())
        everything = submit_filters(client, client.get("/desk/"), status="all")
        late_ones = submit_filters(client, client.get("/desk/"), status="all", overdue=True)

    marked = {row["data-contact"]: "overdue" in row["class"] for row in read(everything).rows}
    assert marked == {f"inquiry-{closed.pk}": False, f"inquiry-{late.pk}": True}
    # the filter and the mark are one rule
    assert contacts(late_ones) == [f"inquiry-{late.pk}"]
