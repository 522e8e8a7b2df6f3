"""Every admin page support staff open, in Japanese: no English label, no raw value.

The walk opens each changelist of the project's apps, and the change page of its first
row, as a superuser with Japanese active, and reads what a person reads: column
headers, field labels, filter titles and choices, and the values in cells and read-only
fields. Customer-entered text (names, addresses, descriptions, e-mail addresses) is
whatever the customer typed, so values are checked only for what code leaves raw: a
``snake_case`` identifier, a ``1: new`` style repr, JSON, an English sentence.
"""

import io
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from incidents.broadcasts import send_mass_message
from incidents.models import DamageReport, MassMessage
from incidents.services import declare_outage, plan_field_visit, report_damage
from portal.accounts.mfa import reset_second_factor
from portal.accounts.models import User
from subscriptions.models import Site, UserPhone
from support.models import OnCallShift
from tests.factories import HeartbeatFactory
from upgrades.models import SpeedGrant
from upgrades.provisioning import RecordingBackend
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    extend_deadline,
    respond_to_grants,
)
from upgrades.services.provisioning import reconcile_speeds
from upgrades.services.requests import approve_upgrade_request, request_upgrade

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO)  # after hours: alerts are raised
PROJECT_APPS = {"accounts", "auth", "incidents", "portal", "subscriptions", "support", "upgrades"}
# Moving to their own app (issue 11's support desk work): left to that change.
MOVING = {"support.inquiry", "support.cannedreply"}
# Latin letters a Japanese label may keep: units, abbreviations, product names.
KEPT_LATIN = re.compile(
    r"(?<![A-Za-z])(ID|IP|URL|PDF|CSV|kbit/s|BCP|Webhook|SLA|API|OTP|TOTP)(?![A-Za-z])"
)


def png() -> SimpleUploadedFile:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, "PNG")
    return SimpleUploadedFile("antenna.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def world(settings, tmp_path, django_capture_on_commit_callbacks):
    """The demo data and one of everything the services write, as after a night's storm."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    operator = User.objects.get(email="operator@example.com")
    support = User.objects.get(email="support@example.com")
    admin_user = User.objects.get(email="admin@example.com")
    customer_user = User.objects.get(email="chichibu@example.com")
    site = Site.objects.filter(customer=customer_user.customer).first()
    with (
        time_machine.travel(NIGHT, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        OnCallShift.objects.create(
            staff=support, starts_at=NIGHT - timedelta(hours=4), ends_at=NIGHT + timedelta(hours=8)
        )
        HeartbeatFactory(beat_at=NIGHT)
        UserPhone.objects.create(user=customer_user, number="090-1234-5678", label="携帯")
        declare_outage(operator=operator, cause="heavy_rain", message="豪雨", now=NIGHT)
        blanket = declare_disaster(
            operator=operator,
            title="令和8年 豪雨災害",
            nationwide=False,
            prefectures=[site.prefecture, "13"],
            idempotency_key="storm",
            now=NIGHT,
        )
        apply_blanket_upgrade(blanket_id=blanket.pk, now=NIGHT)
        extend_deadline(
            blanket=blanket,
            new_deadline=blanket.deadline + timedelta(days=2),
            operator=operator,
            now=NIGHT,
        )
        respond_to_grants(
            grants=SpeedGrant.objects.filter(
                pk=SpeedGrant.objects.filter(blanket_upgrade=blanket).first().pk
            ),
            keep=False,
            by=support,
            channel="phone",
            now=NIGHT,
        )
        other_site = Site.objects.exclude(prefecture__in=[site.prefecture, "13"]).first()
        upgrade_request = request_upgrade(
            customer=other_site.customer,
            sites=[other_site],
            reason="disaster",
            note="停電中",
            channel="phone",
            recorded_by=support,
            contact_name="山田",
            contact_phone="0494-22-0000",
            now=NIGHT,
        )
        approve_upgrade_request(upgrade_request=upgrade_request, by=support, now=NIGHT)
        reconcile_speeds(backend=RecordingBackend(), now=NIGHT)
        report = report_damage(
            site=site,
            description="アンテナが傾いています",
            photos=[png()],
            channel="portal",
            by=customer_user,
            now=NIGHT,
        )
        plan_field_visit(
            report=report, tentative_date=NIGHT.date() + timedelta(days=3), technician="佐藤",
            now=NIGHT,
        )  # fmt: skip
        send_mass_message(
            operator=operator,
            subject_ja="豪雨のお知らせ",
            body_ja="本文",
            audience=MassMessage.Audience.PREFECTURES,
            prefectures=[site.prefecture],
            idempotency_key="notice",
            now=NIGHT,
        )
        reset_second_factor(user=support, by=admin_user)
    assert DamageReport.objects.exists()
    return admin_user


class Element:
    def __init__(self, tag: str, attrs: dict, parent: "Element | None"):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def iter(self):
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def inside(self, test) -> bool:
        node = self.parent
        while node is not None:
            if test(node):
                return True
            node = node.parent
        return False


def field_of(element: Element) -> str:
    """The model field a cell or read-only value shows (Django's ``field-<name>`` class)."""
    node = element
    while node is not None:
        for name in node.classes:
            if name.startswith("field-"):
                return name.removeprefix("field-")
        node = node.parent
    return ""


class AdminPage(HTMLParser):
    """What a person reads on an admin page: labels (column headers, field, fieldset and
    filter names) and values (cells, read-only fields, filter choices, the title)."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "col", "source", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Element("root", {}, None)
        self.feed(html)
        elements = [e for e in self.root.iter() if e.tag not in {"script", "style"}]
        self.links = [e.attrs["href"] for e in elements if e.tag == "a" and e.attrs.get("href")]
        in_filter = lambda e: e.attrs.get("id") == "changelist-filter"  # noqa: E731
        self.labels = [
            e.text()
            for e in elements
            if e.tag in {"label", "summary", "legend", "h3"}
            or (e.tag == "th" and e.inside(lambda n: n.tag == "thead"))
            or (
                e.tag == "h2" and ("fieldset-heading" in e.classes or "inline-heading" in e.classes)
            )
        ]
        self.values = [
            (field_of(e), e.text())
            for e in elements
            if (e.tag == "td" and not e.inside(lambda n: n.tag in {"select", "textarea"}))
            or (e.tag == "th" and any(c.startswith("field-") for c in e.classes))
            or (e.tag == "div" and "readonly" in e.classes)
            or (e.tag == "a" and e.inside(in_filter) and e.inside(lambda n: n.tag == "li"))
            or (
                e.tag == "option"
                and e.inside(lambda n: n.tag == "select" and n.attrs.get("name") != "action")
            )
        ]
        self.values = [(field, text) for field, text in self.values if text]
        self.labels = [label for label in self.labels if label]
        # The object's title (its __str__), on a change page.
        self.title = next(
            (e.text() for e in elements if e.tag == "h2" and e.parent.attrs.get("id") == "content"),
            "",
        )

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.node)
        self.node.children.append(element)
        if tag not in self.VOID:
            self.node = element

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Element(tag, dict(attrs), self.node))

    def handle_endtag(self, tag):
        node = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        if self.node.tag not in {"script", "style", "textarea"}:
            self.node.children.append(data)


EMAIL = re.compile(r"[\w.+-]+@[\w.-]+")
URL = re.compile(r"(https?://|/)[\w./?=&%:-]+")
RAW = [
    re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b"),  # a code's identifier: upgrade_request
    re.compile(r"^\d+: [a-z]"),  # a repr: "1: new"
    re.compile(r"[{\[]\s*\"|\"\s*:"),  # JSON
    re.compile(r"^[a-z]+$"),  # a choice's value or a code's name: "new", "support"
]
ENGLISH = re.compile(r"\b[a-z]{2,} [a-z]{2,}\b")  # words of an English sentence
# Text people typed or a message as it was sent, in whatever language it was written.
FREE_TEXT = {
    "subject",
    "body",
    "last_error",
    "description",
    "message",
    "note",
    "outcome",
    "summary",
    "title",
    "address",
    "name",
    "decision_note",
    "contact_name",
    "key",
    "url",
    "password",
}


def english_in_label(label: str) -> bool:
    text = KEPT_LATIN.sub("", EMAIL.sub("", label))
    return re.search(r"[A-Za-z]{2,}", text) is not None


def raw_value(value: str, *, sentences: bool = True) -> bool:
    text = URL.sub("", EMAIL.sub("", value)).strip()
    patterns = [*RAW, ENGLISH] if sentences else RAW
    return any(pattern.search(text) for pattern in patterns)


def admin_models():
    return sorted(
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
        if model._meta.app_label in PROJECT_APPS
        and f"{model._meta.app_label}.{model._meta.model_name}" not in MOVING
    )


def libraries() -> tuple[str, ...]:
    """How the libraries' apps (axes, OTP devices) name themselves, as in a permission's
    label: their models are named by the library, in English when it ships no Japanese."""
    with translation.override("ja"):
        return tuple(
            f"{config.verbose_name} |"
            for config in django_apps.get_app_configs()
            if config.label not in PROJECT_APPS
        )


def problems(html: str) -> list[str]:
    page = AdminPage(html)
    found = [f"label: {label!r}" for label in page.labels if english_in_label(label)]
    found += [
        f"value of {field or '?'}: {value!r}"
        for field, value in page.values
        if field.removesuffix("_ja").removesuffix("_en") not in FREE_TEXT
        and not value.startswith(libraries())
        and raw_value(value)
    ]
    if raw_value(page.title, sentences=False):
        found.append(f"title: {page.title!r}")
    return found


@pytest.mark.parametrize("staff", ["admin@example.com", "support@example.com"])
@pytest.mark.parametrize(("app_label", "model_name"), admin_models())
def test_every_admin_page_reads_in_japanese(client, world, staff, app_label, model_name):
    # A superuser sees every page editable; support staff see many read-only.
    user = User.objects.get(email=staff)
    client.force_login(user)
    client.cookies["django_language"] = "ja"

    listed = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    if listed.status_code == 403:
        # (CI counts a skip as a failure.) Refused only where the role has no view right.
        assert not user.is_superuser
        assert not user.has_perm(f"{app_label}.view_{model_name}")
        return
    rows = [
        href
        for href in AdminPage(listed.text).links
        if re.fullmatch(rf"/admin/{app_label}/{model_name}/[^/]+/change/", href.split("?")[0])
    ]
    assert rows, "every page is walked with a row to open"
    # The first row and the last: the demo's rows differ (a superuser, a customer user).
    changes = [client.get(href) for href in dict.fromkeys([rows[0], rows[-1]])]

    assert listed.status_code == 200
    assert problems(listed.text) == []
    for change in changes:
        assert change.status_code == 200
        assert problems(change.text) == []


def test_a_read_only_admin_page_offers_to_close_it_not_to_close_the_item(client, world):
    client.force_login(User.objects.get(email="support@example.com"))
    client.cookies["django_language"] = "ja"
    listed = client.get(reverse("admin:incidents_disaster_changelist")).text
    change = re.search(r'href="(/admin/incidents/disaster/\d+/change/[^"]*)"', listed).group(1)

    page = client.get(change.replace("&amp;", "&")).text

    close = re.search(r'<a href="[^"]*" class="closelink">(.*?)</a>', page)
    assert close.group(1) == "閉じる"
    assert "完了にする" not in page
