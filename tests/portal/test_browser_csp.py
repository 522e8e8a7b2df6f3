"""The Content-Security-Policy breaks nothing in a real browser (Debian's chromium): the
admin's scripts, Swagger UI and the operator pages run, and the browser reports no
violation."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from portal.management.commands.seed_demo import DEMO_PASSWORD
from tests.upgrades.test_browser import enrol_second_factor


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_swagger_ui_and_operator_pages_run_under_the_policy(live_server, page: Page):
    call_command("seed_demo", stdout=io.StringIO())
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    # given an operator logged in through the login form
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("メールアドレス").fill("admin@example.com")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    enrol_second_factor(page)  # staff at first login (its page runs under the policy too)
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    # when they tick "select all" in an admin list, the admin's script counts the rows
    page.goto(f"{live_server.url}/admin/subscriptions/customer/")
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("選択")

    # and Swagger UI builds the API's documentation from the schema
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_role("heading", name="BCP Portal API")).to_be_visible()

    # and the operator dashboard loads
    page.goto(f"{live_server.url}/operator/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    # then nothing was blocked
    assert violations == []
