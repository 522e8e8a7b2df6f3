from datetime import date, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from subscriptions.models import Site, Subscription, term_end_for
from tests.factories import CustomerFactory, OperatorUserFactory, PlanFactory

TOKYO = ZoneInfo("Asia/Tokyo")
# "Now" in these tests: a Tuesday morning in Japan.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO)


def make_lines(n: int, *, prefecture: str = "11", customer=None, start=date(2024, 4, 1)):
    """``n`` in-service lines, each at its own site, in three queries (bulk)."""
    customer = customer or CustomerFactory()
    plan = PlanFactory()
    sites = Site.objects.bulk_create(
        Site(
            customer=customer,
            name=f"site {i}",
            prefecture=prefecture,
            address="x",
            contact_phone="0494-22-0000",
        )
        for i in range(n)
    )
    return Subscription.objects.bulk_create(
        Subscription(
            contract_number=f"{customer.code}-{prefecture}-{i}",
            site=site,
            plan=plan,
            service_start=start,
            term_end=term_end_for(start),
        )
        for i, site in enumerate(sites)
    )


@pytest.fixture
def operator():
    return OperatorUserFactory()


class _FormReader(HTMLParser):
    """The POST forms of a page, read the way a browser submits them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method", "get").lower() == "post":
            self.forms.append({"action": attrs.get("action", ""), "fields": [], "buttons": []})
            return
        if not self.forms or "name" not in attrs:
            return
        fields = self.forms[-1]["fields"]
        kind = attrs.get("type", "text").lower()
        if tag == "input" and kind in {"checkbox", "radio"}:
            if "checked" in attrs:
                fields.append((attrs["name"], attrs.get("value", "on")))
        elif (tag == "input" and kind == "submit") or tag == "button":
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "input":
            fields.append((attrs["name"], attrs.get("value", "")))
        elif tag == "textarea":
            self._textarea = attrs["name"]
            fields.append((attrs["name"], ""))

    def handle_data(self, data):
        if self._textarea is not None:
            name, value = self.forms[-1]["fields"].pop()
            self.forms[-1]["fields"].append((name, value + data))

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def post_forms(html: str) -> list[dict]:
    """Each POST form on the page: ``action``, ``fields`` (name, value) as a browser
    would send them untouched, and named ``buttons``."""
    reader = _FormReader()
    reader.feed(html)
    return reader.forms


def form_data(fields, **changes) -> dict[str, list[str]]:
    """The fields as the test client posts them; ``changes`` replace (a list for several
    values, None to leave a field out, as an unticked box)."""
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    return data


def follow_end_link(client, blanket):
    """What an operator does to end a disaster: its page's "End…" link to the question."""
    import re

    page = client.get(f"/operator/disasters/{blanket.pk}/").text
    link = re.search(r'<a class="button" href="([^"]+/end/)"', page).group(1)
    return client.get(link)
