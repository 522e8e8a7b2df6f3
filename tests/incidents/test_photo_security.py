"""Damage photos and request bodies as an attacker would send them (issue 10): a body too
large is refused unread, a pixel bomb is refused, a polyglot is served as the image it is."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from incidents.models import DamagePhoto, DamageReport
from portal.request_limits import BodyLimitUploadHandler, RequestBodyTooLarge
from tests.factories import SiteFactory, UserFactory

pytestmark = pytest.mark.django_db
ONE_GB = str(1024**3)


def image(fmt: str, *, size=(40, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def customer_user():
    user = UserFactory()
    SiteFactory(customer=user.customer, name="本庁舎")
    return user


def post_report(client, user, photos, **extra):
    return client.post(
        reverse("incidents:damage-reports"),
        {"site": user.customer.sites.get().pk, "description": "アンテナ", "photos": photos},
        **extra,
    )


def test_a_page_upload_declaring_a_gigabyte_is_refused_unread_with_a_page(client, customer_user):
    client.force_login(customer_user)

    response = post_report(
        client,
        customer_user,
        [SimpleUploadedFile("a.png", image("PNG"), content_type="image/png")],
        CONTENT_LENGTH=ONE_GB,
    )

    assert response.status_code == 413
    assert "アップロードが大きすぎます" in response.text
    assert not DamageReport.objects.exists()


def test_an_api_upload_declaring_a_gigabyte_is_refused_with_json(customer_user):
    api = APIClient()
    api.force_authenticate(customer_user)

    response = api.post(
        "/api/v1/damage-reports/",
        {"site": customer_user.customer.sites.get().pk, "description": "アンテナ"},
        format="multipart",
        CONTENT_LENGTH=ONE_GB,
    )

    assert response.status_code == 413
    assert "detail" in response.json()


def test_the_upload_handler_stops_a_body_that_grows_past_the_limit(settings, rf):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    handler = BodyLimitUploadHandler(rf.post("/damage/"))

    handler.receive_data_chunk(b"x" * 600, 0)
    with pytest.raises(RequestBodyTooLarge):
        handler.receive_data_chunk(b"x" * 600, 600)


def test_a_photo_of_144_megapixels_is_refused_with_a_form_error(client, customer_user):
    client.force_login(customer_user)
    bomb = image("PNG", size=(12000, 12000), mode="1")  # a few KB on disk
    assert len(bomb) < 100_000

    response = post_report(
        client,
        customer_user,
        [SimpleUploadedFile("big.png", bomb, content_type="image/png")],
        follow=True,
    )

    # the report is kept (issue 13), the photo refused with a message naming it
    assert "big.png" in response.text and "メガピクセル" in response.text
    assert DamageReport.objects.exists() and not DamagePhoto.objects.exists()


@override_settings(DAMAGE_PHOTO_MAX_PIXELS=1000)
def test_the_pixel_limit_is_a_setting(client, customer_user):
    client.force_login(customer_user)

    response = post_report(
        client,
        customer_user,
        [SimpleUploadedFile("a.png", image("PNG", size=(40, 30)), content_type="image/png")],
        follow=True,
    )

    assert "メガピクセル" in response.text
    assert not DamagePhoto.objects.exists()


def test_a_jpeg_html_polyglot_is_stored_and_served_as_a_jpeg(client, customer_user):
    client.force_login(customer_user)
    polyglot = image("JPEG") + b"<html><script>alert(document.cookie)</script></html>"
    post_report(
        client,
        customer_user,
        [SimpleUploadedFile("x_evil.html", polyglot, content_type="text/html")],
    )
    photo = DamagePhoto.objects.get()

    response = client.get(reverse("incidents:damage-photo", args=[photo.pk]))

    assert photo.image.name.endswith(".jpg") and "evil" not in photo.image.name
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == (
        f'inline; filename="damage-{photo.report_id}-{photo.pk}.jpg"'
    )
    assert response["Cache-Control"] == "private, no-store"


def test_logged_in_pages_are_kept_in_no_cache(client, customer_user):
    client.force_login(customer_user)

    home = client.get(reverse("home"))
    reports = client.get(reverse("incidents:damage-reports"))

    assert home["Cache-Control"] == "private, no-store"
    assert reports["Cache-Control"] == "private, no-store"


def test_the_refusal_is_in_the_visitors_language(client, customer_user):
    client.force_login(customer_user)
    client.cookies["django_language"] = "en"

    response = post_report(client, customer_user, [], CONTENT_LENGTH=ONE_GB)

    assert response.status_code == 413
    assert "The upload is too large" in response.text
