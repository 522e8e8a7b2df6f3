"""In chromium: a customer reports damage with a photo; an outage banner appears."""

import io

import pytest
from django.utils import timezone
from PIL import Image, ImageChops
from playwright.sync_api import Browser, expect

from incidents.models import DamageReport, Outage
from tests.factories import PASSWORD, OperatorUserFactory, SiteFactory, UserFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_customer_reports_damage_with_a_photo_and_sees_the_outage_banner(
    live_server, browser: Browser, tmp_path
):
    customer = UserFactory(email="tosa@example.com")
    SiteFactory(customer=customer.customer, name="本庁舎")
    photo = tmp_path / "antenna.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    page = browser.new_page(locale="ja-JP")

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("メールアドレス").fill("tosa@example.com")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("link", name="機器の破損報告").click()
    page.get_by_label("設置場所").select_option(label="本庁舎")
    page.get_by_label("状況(アンテナの傾き、モデムの故障など)").fill("台風でアンテナが傾いた")
    page.get_by_label("写真(任意、JPEG または PNG)").set_input_files(str(photo))
    page.get_by_role("button", name="報告する").click()

    expect(page.get_by_text("日付はお約束できません")).to_be_visible()
    expect(page.get_by_role("link", name="写真 1")).to_be_visible()

    # an operator declares a ground-station outage: the next page shows the banner
    Outage.objects.create(
        cause="heavy_rain", started_at=timezone.now(), declared_by=OperatorUserFactory()
    )
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("地上局(埼玉県秩父)が")


def noisy_phone_photo(path):
    """A phone-sized photo (4000 by 3000 pixels, ~3 MB): noise keeps JPEG from compressing it."""
    base = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.effect_noise((4000, 3000), 12)
    photo = Image.merge("RGB", (base, noise, ImageChops.add(base, noise, 2)))
    photo.save(path, format="JPEG", quality=85)
    assert path.stat().st_size > 2_500_000


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_phone_photo_is_shrunk_in_the_browser_and_sent_after_the_report(
    live_server, browser: Browser, tmp_path
):
    customer = UserFactory(email="kochi@example.com")
    SiteFactory(customer=customer.customer, name="本庁舎")
    photo = tmp_path / "IMG_0001.jpg"
    noisy_phone_photo(photo)
    page = browser.new_page(locale="ja-JP")
    uploads = []
    page.on(
        "request",
        lambda request: (
            uploads.append(len(request.post_data_buffer or b""))
            if request.method == "POST" and request.url.endswith("/photos/add/")
            else None
        ),
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("メールアドレス").fill("kochi@example.com")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("link", name="機器の破損報告").click()
    expect(page.get_by_text("1 枚 5 MB まで")).to_be_visible()
    page.get_by_label("設置場所").select_option(label="本庁舎")
    page.get_by_label("状況(アンテナの傾き、モデムの故障など)").fill("台風でアンテナが傾いた")
    page.get_by_label("写真(任意、JPEG または PNG)").set_input_files(str(photo))
    page.get_by_role("button", name="報告する").click()

    # the report's page once the photo is sent
    expect(page.get_by_role("link", name="写真 1")).to_be_visible(timeout=30_000)
    report = DamageReport.objects.get()
    assert report.description == "台風でアンテナが傾いた"
    stored = report.photos.get()
    with stored.image.open("rb") as file, Image.open(file) as image:
        assert max(image.size) <= 1600 and image.format == "JPEG"
    assert stored.size < 400_000
    assert len(uploads) == 1 and uploads[0] < 400_000  # shrunk before it left the browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_report_refused_by_the_form_shows_its_errors_and_can_be_sent_again(
    live_server, browser: Browser, tmp_path
):
    customer = UserFactory(email="muroto@example.com")
    SiteFactory(customer=customer.customer, name="本庁舎")
    photo = tmp_path / "antenna.png"
    Image.new("RGB", (2400, 1800), (10, 120, 200)).save(photo, format="PNG")
    page = browser.new_page(locale="ja-JP")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("メールアドレス").fill("muroto@example.com")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("link", name="機器の破損報告").click()

    # no description: the page comes back with the error, nothing saved
    page.get_by_label("設置場所").select_option(label="本庁舎")
    page.get_by_label("写真(任意、JPEG または PNG)").set_input_files(str(photo))
    page.get_by_role("button", name="報告する").click()
    expect(page.get_by_text("この項目は必須です。")).to_be_visible()
    assert not DamageReport.objects.exists()

    # the page that came back still shrinks and sends
    page.get_by_label("設置場所").select_option(label="本庁舎")
    page.get_by_label("状況(アンテナの傾き、モデムの故障など)").fill("モデムが故障")
    page.get_by_label("写真(任意、JPEG または PNG)").set_input_files(str(photo))
    page.get_by_role("button", name="報告する").click()
    expect(page.get_by_role("link", name="写真 1")).to_be_visible(timeout=30_000)
    stored = DamageReport.objects.get().photos.get()
    assert stored.content_type == "image/jpeg"  # shrunk: 1,600 px, JPEG
