"""Damage photos that arrive over the satellite line (issue 13): the report's text is saved
first and each photo on its own, a refused photo is named and loses nothing else, photos
can be added later from the report's page, and the forms state the limits."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from incidents.models import DamagePhoto, DamageReport
from tests.factories import SiteFactory, UserFactory
from tests.upgrades.conftest import form_data, post_forms

pytestmark = pytest.mark.django_db


def jpeg(name="antenna.jpg", size=(64, 48)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


@pytest.fixture
def customer_user():
    user = UserFactory()
    SiteFactory(customer=user.customer, name="本庁舎")
    return user


def report_form(client):
    """The damage-report form as the customer sees it (the menu's link)."""
    page = client.get("/").text
    url = re.search(r'<a href="([^"]+)">機器の破損報告</a>', page).group(1)
    (form,) = [f for f in post_forms(client.get(url).text) if has_field(f, "description")]
    return url, form


def send_report(client, user, photos, description="アンテナが傾いています"):
    url, form = report_form(client)
    data = form_data(
        form["fields"],
        site=str(user.customer.sites.get().pk),
        description=description,
        photos=photos,
    )
    return client.post(form["action"] or url, data, follow=True)


def has_field(form: dict, name: str) -> bool:
    return any(field == name for field, _ in form["fields"])


def add_photo_form(page_html: str) -> dict:
    (form,) = [f for f in post_forms(page_html) if has_field(f, "photo")]
    return form


def test_a_refused_photo_is_named_and_the_report_and_the_other_photos_are_kept(
    client, customer_user
):
    client.force_login(customer_user)
    fake = SimpleUploadedFile("virus.jpg", b"MZ not a photo", content_type="image/jpeg")

    page = send_report(client, customer_user, [jpeg("front.jpg"), fake, jpeg("back.jpg")])

    report = DamageReport.objects.get()
    assert page.redirect_chain[-1][0] == reverse("incidents:damage-report", args=[report.pk])
    assert "virus.jpg は JPEG または PNG" in page.text
    assert report.description == "アンテナが傾いています"
    assert report.photos.count() == 2


def test_too_many_photos_keep_the_first_ones_and_name_the_rest(client, customer_user, settings):
    settings.DAMAGE_PHOTO_MAX_COUNT = 2
    client.force_login(customer_user)

    page = send_report(client, customer_user, [jpeg("1.jpg"), jpeg("2.jpg"), jpeg("3.jpg")])

    assert DamageReport.objects.get().photos.count() == 2
    assert "3.jpg は追加されませんでした" in page.text


def test_the_customer_adds_photos_later_from_the_reports_page(client, customer_user, settings):
    settings.DAMAGE_PHOTO_MAX_COUNT = 2
    client.force_login(customer_user)
    report_page = send_report(client, customer_user, [jpeg("first.jpg")])
    report = DamageReport.objects.get()

    form = add_photo_form(report_page.text)
    added = client.post(
        form["action"], form_data(form["fields"], photo=jpeg("later.jpg")), follow=True
    )
    assert "写真を追加しました" in added.text
    assert "写真 2 枚 / 最大 2 枚" in added.text
    assert report.photos.count() == 2

    # the same rules as at the report: the count, then the content
    form = add_photo_form(added.text)
    refused = client.post(
        form["action"], form_data(form["fields"], photo=jpeg("third.jpg")), follow=True
    )
    assert "third.jpg は追加されませんでした" in refused.text
    assert report.photos.count() == 2


def test_a_photo_added_later_is_checked_by_its_content(client, customer_user):
    client.force_login(customer_user)
    report_page = send_report(client, customer_user, [])
    form = add_photo_form(report_page.text)
    polyglot = SimpleUploadedFile("photo.png", b"GIF89a" + b"\x00" * 20, content_type="image/png")

    page = client.post(form["action"], form_data(form["fields"], photo=polyglot), follow=True)

    assert "photo.png は JPEG または PNG" in page.text
    assert not DamagePhoto.objects.exists()


def test_the_script_gets_json_from_the_add_photo_form(client, customer_user):
    client.force_login(customer_user)
    form = add_photo_form(send_report(client, customer_user, []).text)
    fake = SimpleUploadedFile("x.jpg", b"not a photo", content_type="image/jpeg")

    sent = client.post(
        form["action"], form_data(form["fields"], photo=jpeg()), HTTP_ACCEPT="application/json"
    )
    refused = client.post(
        form["action"], form_data(form["fields"], photo=fake), HTTP_ACCEPT="application/json"
    )

    assert (sent.status_code, sent.json()) == (201, {"ok": True})
    assert refused.status_code == 400 and "x.jpg" in refused.json()["error"]
    assert DamagePhoto.objects.count() == 1


def test_another_customer_cannot_add_a_photo_to_the_report(client, customer_user):
    client.force_login(customer_user)
    form = add_photo_form(send_report(client, customer_user, []).text)

    client.force_login(UserFactory())
    response = client.post(form["action"], form_data(form["fields"], photo=jpeg()))

    assert response.status_code == 404
    assert not DamagePhoto.objects.exists()


def test_the_forms_state_the_limits_in_japanese_and_english(client, customer_user, settings):
    settings.DAMAGE_PHOTO_MAX_BYTES = 5 * 1024 * 1024
    settings.DAMAGE_PHOTO_MAX_COUNT = 5
    client.force_login(customer_user)
    report_page = send_report(client, customer_user, [])

    japanese = client.get(reverse("incidents:damage-reports")).text
    english = client.get(reverse("incidents:damage-reports"), HTTP_ACCEPT_LANGUAGE="en").text

    for page in (japanese, report_page.text):
        assert "JPEG または PNG、1 枚 5 MB まで、1 件の報告につき 5 枚まで" in page
        assert "300 KB の写真の送信に約 40 秒" in page
    assert "JPEG or PNG, at most 5 MB per photo and 5 photos per report." in english
    assert "a 300 KB photo takes about 40 seconds" in english
    assert 'src="/static/incidents/photo-shrink.js" defer' in japanese
