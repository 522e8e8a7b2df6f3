"""Who may open what: every URL that takes an id, as every kind of visitor.

The URL patterns come from the resolver (pages, the admin, the API router), so a new
pattern that takes an id fails here until it has a row in ``EXPECTED`` (or a rule in
``admin_expectation``). Objects are real (factories and services), all of customer A's;
customer B is another organisation and must get 404. GET only, plus a POST where it is
refused (so it changes nothing).
"""

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from desk.calls import record_call_event
from desk.models import CannedReply, InboundEmail, InquiryAttachment
from desk.services import open_inquiry
from incidents.broadcasts import send_mass_message
from incidents.models import Outage
from incidents.services import report_damage
from portal.accounts.models import SecondFactorReset
from portal.accounts.tokens import issue_api_token
from subscriptions.models import UserPhone
from subscriptions.services import accept_quote, quote_extension
from support.channels import Channel
from support.models import OnCallShift
from tests.factories import (
    CustomerNoticeFactory,
    HeartbeatFactory,
    OperatorUserFactory,
    ProvisioningChangeFactory,
    SpeedGrantFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UpgradeRequestFactory,
    UserFactory,
)
from upgrades.services.notices import grant_response_token

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "customer_a", "customer_b", "support", "operator"]
MARCH_2019 = datetime(2019, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
LOGIN = "login"  # a 302 to the login page
ADMIN_LOGIN = "admin_login"  # a 302 to the admin's login page


def log_in(client, user) -> None:
    """Every role logs in here: if staff need a second factor one day, it goes here."""
    if user is not None:
        client.force_login(user)


def url_patterns_with_an_id(patterns=None, namespace=None):
    """(URL name, pattern) for every route with a keyword argument, admin and API too.
    The API's format-suffix twins (``….json``) share their route's name and are left out."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_patterns_with_an_id(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            arguments = set(pattern.pattern.regex.groupindex) - {"format"}
            if not arguments or "format" in pattern.pattern.regex.groupindex:
                continue
            if pattern.name is None:  # the admin's catch-all and the old-style redirects
                continue
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, format="PNG")
    return SimpleUploadedFile("antenna.png", buffer.getvalue(), content_type="image/png")


class World:
    """Customer A's things (one of each), customer B, and the staff."""

    def __init__(self):
        self.operator = OperatorUserFactory()
        self.support = SupportUserFactory()
        self.customer_a = UserFactory()
        self.customer_b = UserFactory()
        self.anonymous = None
        line = SubscriptionFactory(
            site__customer=self.customer_a.customer, service_start=date(2014, 4, 1)
        )
        site = line.site
        SubscriptionFactory(site__customer=self.customer_b.customer)
        with time_machine.travel(MARCH_2019, tick=False):  # in the extension window
            self.quote = quote_extension(subscription=line, by=None, now=timezone.now())
            self.invoice = accept_quote(
                quote=quote_extension(subscription=line, by=None, now=timezone.now()),
                by=None,
                now=timezone.now(),
            )
        # A night of the last week (Sunday, 3 a.m. in Japan): the contacts below then raise
        # an after-hours alert whatever the hour this test runs at.
        today = timezone.localdate()
        sunday = today - timedelta(days=today.weekday() + 1)
        now = datetime(sunday.year, sunday.month, sunday.day, 3, tzinfo=ZoneInfo("Asia/Tokyo"))
        self.subscription, self.site = line, site
        self.upgrade_request = UpgradeRequestFactory(customer=site.customer, sites=[site])
        self.grant = SpeedGrantFactory(subscription=line)
        self.blanket = self.grant.blanket_upgrade
        self.damage_report = report_damage(
            site=site, description="傾き", photos=[png()], channel=Channel.API, now=now
        )
        self.photo = self.damage_report.photos.get()
        self.inquiry = open_inquiry(
            customer=site.customer, subject="件名", body="本文", channel=Channel.API, now=now
        )
        inbound = InboundEmail.objects.create(
            message_id="<matrix@town.example.jp>", folder="INBOX", uid="1", raw=b"x", fetched_at=now
        )
        self.attachment = InquiryAttachment(
            inquiry=self.inquiry,
            message=self.inquiry.messages.get(),
            content_type="image/png",
            size=len(png().read()),
        )
        self.attachment.file.save("matrix.png", png(), save=False)
        self.attachment.save()
        InboundEmail.objects.filter(pk=inbound.pk).update(inquiry=self.inquiry)
        self.outage = Outage.objects.create(
            cause="heavy_rain", started_at=now, declared_by=self.operator
        )
        self.mass_message = send_mass_message(
            operator=self.operator,
            subject_ja="件名",
            body_ja="本文",
            audience="everyone",
            idempotency_key="matrix",
            now=now,
        )
        HeartbeatFactory()
        AccessAttempt.objects.create(
            username="x@example.com", ip_address="192.0.2.1", failures_since_start=1
        )
        AccessFailureLog.objects.create(username="x@example.com", ip_address="192.0.2.1")
        CannedReply.objects.create(title="お礼", body="ありがとうございます。")
        OnCallShift.objects.create(
            staff=self.support, starts_at=now, ends_at=now + timedelta(hours=8)
        )
        ProvisioningChangeFactory(subscription=line)
        CustomerNoticeFactory(customer=site.customer, blanket_upgrade=self.blanket)
        # second factors (staff) and their reset record; a customer's API token
        self.authenticator = TOTPDevice.objects.create(
            user=self.support, name="authenticator", confirmed=True
        )
        StaticDevice.objects.create(user=self.support, name="recovery codes", confirmed=True)
        SecondFactorReset.objects.create(user=self.support, reset_by=self.operator)
        self.api_token, _secret = issue_api_token(user=self.customer_a, client="matrix")
        # a missed call from customer A's site, and a number of one of A's users
        self.call, _new = record_call_event(
            event="newCall",
            call_id="matrix-1",
            from_number=site.contact_phone,
            payload={},
            now=now,
        )
        UserPhone.objects.create(user=self.customer_a, number="090-1234-5678")


# The id each route is asked with: customer A's object, or the staff's.
ARGUMENTS = {
    "password_reset_confirm": lambda w: {"uidb64": "MQ", "token": "set-password"},
    "subscriptions:detail": lambda w: {"pk": w.subscription.pk},
    "subscriptions:quote-create": lambda w: {"pk": w.subscription.pk},
    "subscriptions:quote": lambda w: {"pk": w.quote.pk},
    "subscriptions:quote-accept": lambda w: {"pk": w.quote.pk},
    "subscriptions:invoice": lambda w: {"pk": w.invoice.pk},
    "subscriptions:invoice-pdf": lambda w: {"pk": w.invoice.pk},
    "upgrades:request": lambda w: {"pk": w.upgrade_request.pk},
    "upgrades:cancel-request": lambda w: {"pk": w.upgrade_request.pk},
    "upgrades:respond-by-link": lambda w: {"token": grant_response_token(w.grant.pk, None)},
    "upgrades:disaster": lambda w: {"pk": w.blanket.pk},
    "upgrades:progress": lambda w: {"pk": w.blanket.pk},
    "upgrades:extend": lambda w: {"pk": w.blanket.pk},
    "upgrades:end": lambda w: {"pk": w.blanket.pk},
    "incidents:end-outage": lambda w: {"pk": w.outage.pk},
    "incidents:damage-report": lambda w: {"pk": w.damage_report.pk},
    "incidents:damage-photo": lambda w: {"pk": w.photo.pk},
    "incidents:damage-photo-add": lambda w: {"pk": w.damage_report.pk},
    "incidents:check-in": lambda w: {"pk": w.site.pk},
    "incidents:check-in-token": lambda w: {"pk": w.site.pk},
    "incidents:mass-message": lambda w: {"pk": w.mass_message.pk},
    "desk:inquiry": lambda w: {"pk": w.inquiry.pk},
    "desk:customer": lambda w: {"pk": w.customer_a.customer_id},
    "desk:attachment": lambda w: {"pk": w.attachment.pk},
    "desk:call": lambda w: {"pk": w.call.pk},
    "subscription-detail": lambda w: {"pk": w.subscription.pk},
    "quote-detail": lambda w: {"pk": w.quote.pk},
    "quote-accept": lambda w: {"pk": w.quote.pk},
    "damage-report-detail": lambda w: {"pk": w.damage_report.pk},
    "damage-report-add-photo": lambda w: {"pk": w.damage_report.pk},
    "invoice-detail": lambda w: {"pk": w.invoice.pk},
    "invoice-pdf": lambda w: {"pk": w.invoice.pk},
    "upgrade-request-detail": lambda w: {"pk": w.upgrade_request.pk},
    "upgrade-request-cancel": lambda w: {"pk": w.upgrade_request.pk},
    "grant-detail": lambda w: {"pk": w.grant.pk},
    "disaster-detail": lambda w: {"pk": w.blanket.pk},
    "disaster-end": lambda w: {"pk": w.blanket.pk},
    "disaster-extend": lambda w: {"pk": w.blanket.pk},
    "inquiry-detail": lambda w: {"pk": w.inquiry.pk},
    "inquiry-follow-up": lambda w: {"pk": w.inquiry.pk},
    "admin:app_list": lambda w: {"app_label": "subscriptions"},
    "admin:view_on_site": lambda w: {
        "content_type_id": ContentType.objects.get_for_model(w.subscription).pk,
        "object_id": w.subscription.pk,
    },
    "admin:auth_user_password_change": lambda w: {"id": w.customer_a.pk},
    "admin:subscriptions_invoice_record_payment": lambda w: {"pk": w.invoice.pk},
    "admin:otp_totp_totpdevice_config": lambda w: {"pk": w.authenticator.pk},
    "admin:otp_totp_totpdevice_qrcode": lambda w: {"pk": w.authenticator.pk},
    "api-token-detail": lambda w: {"pk": w.api_token.pk},
}


def row(anonymous, customer_a, customer_b, support, operator, *, post_b=None):
    """Expected GET status per role; ``post_b``: customer B POSTing to A's object."""
    expected = dict(zip(ROLES, [anonymous, customer_a, customer_b, support, operator], strict=True))
    return {**expected, "post_b": post_b}


CUSTOMER_PAGE = row(LOGIN, 200, 404, 403, 403)
CUSTOMER_FORM_ACTION = row(LOGIN, 405, 405, 403, 403, post_b=404)  # POST-only
OPERATOR_PAGE = row(LOGIN, 403, 403, 403, 200)
OPERATOR_FORM_ACTION = row(LOGIN, 403, 403, 403, 405)
SIGNED_LINK = row(200, 200, 200, 200, 200)  # the token is the key, not a login
# The API challenges an anonymous caller to send its token (401 with WWW-Authenticate).
CUSTOMER_API = row(401, 200, 404, 403, 403)
CUSTOMER_API_ACTION = row(401, 405, 405, 403, 403, post_b=404)
OPERATOR_API = row(401, 403, 403, 403, 200)
OPERATOR_API_ACTION = row(401, 403, 403, 403, 405)
STAFF_ONLY_ADMIN = row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 200)

EXPECTED = {
    "password_reset_confirm": SIGNED_LINK,
    "subscriptions:detail": CUSTOMER_PAGE,
    "subscriptions:quote-create": CUSTOMER_FORM_ACTION,
    "subscriptions:quote": CUSTOMER_PAGE,
    "subscriptions:quote-accept": CUSTOMER_FORM_ACTION,
    "subscriptions:invoice": CUSTOMER_PAGE,
    "subscriptions:invoice-pdf": CUSTOMER_PAGE,
    "upgrades:request": CUSTOMER_PAGE,
    "upgrades:cancel-request": CUSTOMER_FORM_ACTION,
    "upgrades:respond-by-link": SIGNED_LINK,
    "upgrades:disaster": OPERATOR_PAGE,
    "upgrades:progress": OPERATOR_PAGE,
    "upgrades:extend": OPERATOR_FORM_ACTION,
    "upgrades:end": OPERATOR_PAGE,  # GET asks to confirm, with the closing message
    "incidents:end-outage": OPERATOR_FORM_ACTION,
    "incidents:damage-report": CUSTOMER_PAGE,
    # staff open the photos from the admin's damage report
    "incidents:damage-photo": row(LOGIN, 200, 404, 200, 200),
    "incidents:damage-photo-add": CUSTOMER_FORM_ACTION,
    "incidents:check-in": row(LOGIN, 200, 404, 403, 403, post_b=404),  # the form, then its POST
    "incidents:check-in-token": CUSTOMER_FORM_ACTION,
    "incidents:mass-message": OPERATOR_PAGE,
    "desk:inquiry": CUSTOMER_PAGE,
    # a customer's whole story: the desk's page, for staff only
    "desk:customer": row(LOGIN, 403, 403, 200, 200),
    # a file e-mailed with an inquiry: its customer's and staff's (from the admin)
    "desk:attachment": row(LOGIN, 200, 404, 200, 200),
    # a call and its callback form: staff only (a customer B's POST is refused too)
    "desk:call": row(LOGIN, 403, 403, 200, 200, post_b=403),
    "subscription-detail": CUSTOMER_API,
    "quote-detail": CUSTOMER_API,
    "quote-accept": CUSTOMER_API_ACTION,
    "damage-report-detail": CUSTOMER_API,
    "damage-report-add-photo": CUSTOMER_API_ACTION,
    "invoice-detail": CUSTOMER_API,
    "invoice-pdf": CUSTOMER_API,
    "upgrade-request-detail": CUSTOMER_API,
    "upgrade-request-cancel": CUSTOMER_API_ACTION,
    "grant-detail": CUSTOMER_API,
    "disaster-detail": OPERATOR_API,
    "disaster-end": OPERATOR_API_ACTION,
    "disaster-extend": OPERATOR_API_ACTION,
    "inquiry-detail": CUSTOMER_API,
    "inquiry-follow-up": CUSTOMER_API_ACTION,
    "admin:app_list": STAFF_ONLY_ADMIN,
    "admin:view_on_site": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 302, 302),
    # only a superuser sets another user's password
    "admin:auth_user_password_change": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 403),
    "admin:subscriptions_invoice_record_payment": STAFF_ONLY_ADMIN,
    # a second factor's secret: nobody's to see but the superuser's
    "admin:otp_totp_totpdevice_config": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 403),
    "admin:otp_totp_totpdevice_qrcode": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 403),
    # revoke (DELETE) only, by its owner: another's token is not found
    "api-token-detail": row(401, 405, 405, 405, 405, post_b=405),
}
ADMIN_OBJECT_VIEWS = {"change": "view", "history": "view", "delete": "delete"}


def admin_object_view(name):
    """(model, permission) for the admin's own per-object views of a registered model."""
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        view = name.removeprefix(prefix)
        if name.startswith(prefix) and view in ADMIN_OBJECT_VIEWS:
            return model, ADMIN_OBJECT_VIEWS[view]
    return None, None


def expectation(name, world):
    """The row for a URL name, and the arguments to reverse it with."""
    if name in EXPECTED:
        return EXPECTED[name], ARGUMENTS[name](world)
    model, permission = admin_object_view(name)
    assert model is not None, f"{name}: a new URL with an id; add who may open it to EXPECTED"
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"{name}: World has no {model.__name__} to ask for"
    # The admin follows the role's model permissions (portal/accounts/roles.py).
    codename = f"{model._meta.app_label}.{permission}_{model._meta.model_name}"
    staff = [
        200 if getattr(world, role).has_perm(codename) else 403 for role in ("support", "operator")
    ]
    return row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, *staff), {"object_id": obj.pk}


def status_of(response):
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login") + "?"):
            return ADMIN_LOGIN
        if location.startswith(reverse("login") + "?"):
            return LOGIN
    return response.status_code


ROUTES = sorted({name for name, _ in url_patterns_with_an_id()})


def test_every_url_with_an_id_has_a_rule():
    unknown = [
        name for name in ROUTES if name not in EXPECTED and admin_object_view(name)[0] is None
    ]

    assert not unknown, "add who may open these to EXPECTED"


def test_who_may_open_each_url_with_an_id():
    world = World()  # one world for all routes: GETs and refused POSTs change nothing
    wrong = {}

    for name in ROUTES:
        expected, kwargs = expectation(name, world)
        url = reverse(name, kwargs=kwargs)
        seen = {"post_b": None}
        for role in ROLES:
            client = Client()
            log_in(client, getattr(world, role))
            seen[role] = status_of(client.get(url))
        if expected["post_b"] is not None:
            client = Client()
            log_in(client, world.customer_b)
            seen["post_b"] = client.post(url).status_code
        if seen != expected:
            wrong[url] = {role: (seen[role], expected[role]) for role in seen}

    assert not wrong, "(seen, expected) per role"
