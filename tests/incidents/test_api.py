"""Incidents over the API: public status, damage reports with photos."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from incidents.models import DamageReport, Outage
from tests.factories import OperatorUserFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_status_api_is_public_and_shows_the_outage():
    Outage.objects.create(
        cause="heavy_rain", started_at=timezone.now(), declared_by=OperatorUserFactory()
    )

    status = APIClient().get("/api/v1/status/").json()

    assert status["outage"]["cause"] == "heavy_rain"
    assert status["disasters"] == []


def test_a_customer_reports_damage_with_a_photo_over_the_api():
    user = UserFactory()
    site = SiteFactory(customer=user.customer)
    api = APIClient()
    api.force_authenticate(user)
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, format="JPEG")
    photo = SimpleUploadedFile("a.jpg", buffer.getvalue(), content_type="image/jpeg")

    created = api.post(
        "/api/v1/damage-reports/",
        {"site": site.pk, "description": "傾き", "photos": [photo]},
        format="multipart",
    )
    listed = api.get("/api/v1/damage-reports/")

    assert created.status_code == 201 and len(created.json()["photos"]) == 1
    assert (
        "お約束できません" in created.json()["progress"]
        or "cannot promise" in created.json()["progress"]
    )
    assert [r["id"] for r in listed.json()["results"]] == [created.json()["id"]]


def test_bad_or_foreign_damage_reports_get_400_and_are_not_saved():
    user = UserFactory()
    api = APIClient()
    api.force_authenticate(user)
    own = SiteFactory(customer=user.customer)
    bad = SimpleUploadedFile("x.png", b"not an image", content_type="image/png")

    foreign = api.post(
        "/api/v1/damage-reports/",
        {"site": SiteFactory().pk, "description": "x"},
        format="multipart",
    )
    not_image = api.post(
        "/api/v1/damage-reports/",
        {"site": own.pk, "description": "x", "photos": [bad]},
        format="multipart",
    )

    assert (foreign.status_code, not_image.status_code) == (400, 400)
    # the service's own rule (a Django ValidationError) in the one error envelope
    assert not_image.json()["type"] == "validation_error"
    assert [e["attr"] for e in not_image.json()["errors"]] == ["photos"]
    assert not DamageReport.objects.exists()


def test_a_photo_is_added_to_a_report_on_its_own_over_the_api(settings):
    settings.DAMAGE_PHOTO_MAX_COUNT = 1
    user = UserFactory()
    site = SiteFactory(customer=user.customer)
    api = APIClient()
    api.force_authenticate(user)
    created = api.post(
        "/api/v1/damage-reports/", {"site": site.pk, "description": "傾き"}, format="multipart"
    ).json()
    url = f"/api/v1/damage-reports/{created['id']}/photos/"

    def jpeg():
        buffer = io.BytesIO()
        Image.new("RGB", (20, 20)).save(buffer, format="JPEG")
        return SimpleUploadedFile("a.jpg", buffer.getvalue(), content_type="image/jpeg")

    added = api.post(url, {"photo": jpeg()}, format="multipart")
    too_many = api.post(url, {"photo": jpeg()}, format="multipart")
    other = APIClient()
    other.force_authenticate(UserFactory())
    foreign = other.post(url, {"photo": jpeg()}, format="multipart")

    assert added.status_code == 201 and len(added.json()["photos"]) == 1
    assert too_many.status_code == 400
    assert [e["attr"] for e in too_many.json()["errors"]] == ["photo"]
    assert foreign.status_code == 404
    assert DamageReport.objects.get().photos.count() == 1
