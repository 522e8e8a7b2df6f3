"""Damage reports with photos: checked, private, and never a promised date (FAQ Q5)."""

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from incidents.models import DamagePhoto, DamageReport, FieldVisit
from support.models import AfterHoursAlert
from tests.factories import SiteFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db
NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def png(name="antenna.png", size=(40, 30)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def customer_user():
    user = UserFactory()
    SiteFactory(customer=user.customer, name="本庁舎")
    return user


def post_report(client, user, photos, description="アンテナが傾いています", **extra):
    site = user.customer.sites.get()
    return client.post(
        reverse("incidents:damage-reports"),
        {"site": site.pk, "description": description, "photos": photos},
        **extra,
    )


def test_a_customer_reports_damage_with_a_photo_and_reads_no_promised_date(client, customer_user):
    client.force_login(customer_user)

    response = post_report(client, customer_user, [png()])
    report = DamageReport.objects.get()
    page = client.get(response["Location"])
    photo = client.get(reverse("incidents:damage-photo", args=[report.photos.get().pk]))

    assert "日付はお約束できません" in page.text
    assert photo.status_code == 200 and photo["Content-Type"] == "image/png"
    FieldVisit.objects.create(report=report, tentative_date="2026-12-01", technician="佐藤")
    planned = client.get(response["Location"])
    assert "日付はお約束できません" in planned.text
    assert "2026-12-01" not in planned.text and "12月1日" not in planned.text


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("virus.png", b"MZ not an image", content_type="image/png"),
        SimpleUploadedFile("photo.gif", b"GIF89a" + b"\x00" * 20, content_type="image/gif"),
    ],
    ids=["not-an-image", "gif"],
)
def test_a_bad_upload_is_named_and_the_report_and_the_other_photo_are_kept(
    client, customer_user, upload
):
    client.force_login(customer_user)

    response = post_report(client, customer_user, [png("ok.png"), upload], follow=True)

    report = DamageReport.objects.get()
    assert response.redirect_chain[-1][0] == reverse("incidents:damage-report", args=[report.pk])
    assert "JPEG または PNG" in response.text and upload.name in response.text
    assert report.description == "アンテナが傾いています"
    assert report.photos.get().content_type == "image/png"


def test_a_photo_too_large_is_refused_and_the_report_kept(client, customer_user, settings):
    settings.DAMAGE_PHOTO_MAX_BYTES = 1000
    client.force_login(customer_user)

    response = post_report(client, customer_user, [png(size=(600, 600))], follow=True)

    assert "大きすぎます" in response.text
    assert DamageReport.objects.exists() and not DamagePhoto.objects.exists()


def test_photos_are_shown_only_to_their_customer_and_staff(client, customer_user):
    client.force_login(customer_user)
    post_report(client, customer_user, [png()])
    photo = DamagePhoto.objects.get()
    url = reverse("incidents:damage-photo", args=[photo.pk])

    client.force_login(UserFactory())
    stranger = client.get(url)
    other_report = client.get(reverse("incidents:damage-report", args=[photo.report_id]))
    client.force_login(SupportUserFactory())
    staff = client.get(url)
    client.logout()
    anonymous = client.get(url)

    assert (stranger.status_code, other_report.status_code) == (404, 404)
    assert staff.status_code == 200
    assert anonymous.status_code == 302


def test_a_report_at_night_alerts_the_staff_on_call(client, customer_user):
    client.force_login(customer_user)

    with time_machine.travel(NIGHT, tick=False):
        post_report(client, customer_user, [])

    report = DamageReport.objects.get()
    assert report.after_hours
    assert AfterHoursAlert.objects.get().contact_id == str(report.pk)


def test_the_damage_queue_assigns_and_keeps_its_query_count(client, django_assert_max_num_queries):
    staff = SupportUserFactory()
    client.force_login(staff)

    def add(n):
        for _ in range(n):
            DamageReport.objects.create(
                site=SiteFactory(), description="x", channel="phone", received_at=NIGHT
            )

    def count():
        with django_assert_max_num_queries(40) as captured:
            assert client.get(reverse("admin:incidents_damagereport_changelist")).status_code == 200
        return len(captured.captured_queries)

    add(2)
    few = count()
    add(20)
    many = count()
    client.post(
        reverse("admin:incidents_damagereport_changelist"),
        {
            "action": "assign_to_me",
            "_selected_action": list(DamageReport.objects.values_list("pk", flat=True)),
        },
    )

    assert many == few
    assert set(DamageReport.objects.values_list("assignee", flat=True)) == {staff.pk}


def test_a_superuser_opens_a_damage_report_and_its_photo_from_the_admin(client, django_user_model):
    # the superuser may add photos: the inline's empty form used to make every page a 500
    from incidents.services import report_damage
    from support.channels import Channel

    site = SiteFactory()
    report = report_damage(
        site=site, description="傾き", photos=[png()], channel=Channel.API,
        now=datetime(2026, 11, 24, 10, tzinfo=ZoneInfo("Asia/Tokyo")),
    )  # fmt: skip
    client.force_login(
        django_user_model.objects.create_superuser(email="root@example.com", password="x")
    )

    listed = client.get(reverse("admin:incidents_damagereport_changelist"))
    page = client.get(reverse("admin:incidents_damagereport_change", args=[report.pk]))

    assert listed.status_code == page.status_code == 200
    photo = report.photos.get()
    link = reverse("incidents:damage-photo", args=[photo.pk])
    assert f'href="{link}"' in page.text
    assert client.get(link).status_code == 200


def test_a_note_and_a_take_over_on_a_damage_report_are_for_staff_only(client, customer_user):
    from rest_framework.test import APIClient

    from support.models import ContactEvent
    from tests.factories import OperatorUserFactory
    from tests.support.admin_pages import action_form_data, change_form_data
    from tests.upgrades.conftest import form_data, post_forms

    client.force_login(customer_user)
    post_report(client, customer_user, [png()])
    report = DamageReport.objects.get()
    colleague = OperatorUserFactory(full_name="田中 花子")
    DamageReport.objects.filter(pk=report.pk).update(assignee=colleague)
    staff = SupportUserFactory()
    client.force_login(staff)
    changelist = reverse("admin:incidents_damagereport_changelist")

    # the agent takes it over from the list, confirming on the page that asks first
    asked = client.post(
        changelist,
        action_form_data(client.get(changelist).text, action="assign_to_me", selected=[report.pk]),
    )
    (confirm,) = [f for f in post_forms(asked.text) if ("take_over", "yes") in f["fields"]]
    client.post(changelist, form_data(confirm["fields"]))
    # and notes something on its page
    url = reverse("admin:incidents_damagereport_change", args=[report.pk])
    noted = client.post(url, change_form_data(client.get(url).text, internal_note="近隣も停電"))

    report.refresh_from_db()
    assert "田中 花子" in asked.text
    assert report.assignee == staff and noted.status_code == 302
    assert list(ContactEvent.objects.values_list("action", flat=True)) == ["note", "took_over"]
    assert "近隣も停電" in client.get(url).text
    client.force_login(customer_user)
    page = client.get(reverse("incidents:damage-reports"))
    link = re.search(r'href="(/damage/\d+/)"', page.text).group(1)
    api = APIClient()
    api.force_authenticate(customer_user)
    for response in (page, client.get(link), api.get("/api/v1/damage-reports/")):
        assert response.status_code == 200
        assert "近隣も停電" not in response.content.decode()
