"""In a real browser (Debian's chromium through Playwright), as a customer would."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from portal.management.commands.seed_demo import DEMO_PASSWORD


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_demo_customer_sees_japanese_home_then_switches_to_english(live_server, page: Page):
    call_command("seed_demo", stdout=io.StringIO())

    # given the login page, where an anonymous visitor is sent
    page.goto(f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="ログイン")).to_be_visible()

    # when a demo customer logs in
    page.get_by_label("メールアドレス").fill("chichibu@example.com")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    # then the home page lists the organisation's sites and subscriptions in Japanese
    expect(page.get_by_role("heading", level=1)).to_have_text("秩父市役所")
    expect(page.get_by_role("heading", name="本庁舎")).to_be_visible()
    expect(page.get_by_role("link", name="CHI-2014-001")).to_be_visible()
    expect(page.get_by_role("link", name="CHI-2022-002")).to_be_visible()
    # each line's state (the summary above has a column of each state too)
    expect(page.get_by_role("cell", name="期限切れ", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="サービス提供中", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="MYG-2015-001")).to_have_count(0)

    # when they switch the language to English
    page.get_by_label("言語").select_option("en")
    page.get_by_role("button", name="変更").click()

    # then the same page is in English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="My sites")).to_be_visible()
    expect(page.get_by_role("cell", name="Expired", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="CHI-2014-001")).to_be_visible()
