"""The disaster flow in a real browser: operator declares, customer keeps, dashboard moves."""

import base64

import pytest
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Browser, expect

from tests.factories import PASSWORD, OperatorUserFactory, UserFactory
from tests.upgrades.conftest import make_lines
from upgrades.models import BlanketUpgrade
from upgrades.services.blanket import apply_blanket_upgrade


def log_in(page, url, email):
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("メールアドレス").fill(email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()


def enrol_second_factor(page):
    """Staff at first login: type the key into an authenticator, enter its code."""
    key = page.locator("#manual-key").inner_text().replace(" ", "")
    page.get_by_label("コード").fill(f"{totp(base64.b32decode(key)):06d}")
    page.get_by_role("button", name="確認").click()
    expect(page.get_by_role("heading", name="リカバリーコード")).to_be_visible()
    page.get_by_role("link", name="保管しました。続ける").click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operator_declares_customer_keeps_and_the_dashboard_follows(
    live_server, browser: Browser, settings
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    customer = UserFactory(email="chichibu@example.com")
    make_lines(2, customer=customer.customer)
    OperatorUserFactory(email="ops@example.com")
    operator_page = browser.new_page(locale="ja-JP")
    customer_page = browser.new_page(locale="ja-JP")

    # the operator declares from the dashboard
    log_in(operator_page, live_server.url, "ops@example.com")
    enrol_second_factor(operator_page)
    operator_page.get_by_role("link", name="大規模災害を宣言").click()
    operator_page.get_by_label("タイトル").fill("令和8年 秩父豪雨")
    operator_page.get_by_label("埼玉県").check()
    operator_page.get_by_role("button", name="宣言して高速化").click()
    expect(operator_page.get_by_role("heading", name="令和8年 秩父豪雨")).to_be_visible()
    # (the Celery task's work, done here: the live server has no worker)
    apply_blanket_upgrade(blanket_id=BlanketUpgrade.objects.get().pk, now=timezone.now())
    operator_page.reload()
    expect(operator_page.locator('[data-count="pending"]')).to_have_text("2")

    # the customer sees the banner and keeps both lines
    log_in(customer_page, live_server.url, "chichibu@example.com")
    banner = customer_page.get_by_role(
        "region", name="災害に伴い回線を高速化しました。ご回答ください"
    )
    expect(banner).to_be_visible()
    banner.get_by_role("button", name="すべて継続").click()
    expect(customer_page.get_by_text("2 回線の高速化を継続します")).to_be_visible()
    expect(banner).to_have_count(0)

    # the operator's page follows without a reload
    expect(operator_page.locator('[data-count="confirmed"]')).to_have_text("2", timeout=5000)
    expect(operator_page.locator('[data-count="pending"]')).to_have_text("0")
