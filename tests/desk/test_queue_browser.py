"""The support queue in a real browser: reached from the admin, it refreshes itself, and
waits while the agent is choosing a filter."""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from desk.models import Inquiry
from tests.factories import CustomerFactory, SupportUserFactory
from tests.upgrades.test_browser import enrol_second_factor, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_queue_refreshes_itself_but_not_while_the_agent_picks_a_filter(live_server, page: Page):
    customer = CustomerFactory(name="秩父商店")
    SupportUserFactory(email="desk@example.com")

    def arrives(subject):
        Inquiry.objects.create(
            customer=customer, subject=subject, channel="phone", received_at=timezone.now()
        )

    arrives("最初の問い合わせ")
    # The page's own clock: 30 seconds pass when the test says so, not by sleeping.
    page.clock.install()
    log_in(page, live_server.url, "desk@example.com")
    enrol_second_factor(page)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="サポート対応一覧").click()
    expect(page.get_by_role("heading", name="サポート対応一覧")).to_be_visible()
    expect(page.get_by_text("30 秒ごとに自動更新")).to_be_visible()
    rows = page.locator("#queue-rows tr")
    expect(rows).to_have_count(1)

    # a contact arrives: half a minute later it is in the list, without a reload
    arrives("電話が来た")
    page.clock.run_for(31_000)
    expect(page.get_by_role("link", name="電話が来た")).to_be_visible()
    expect(rows).to_have_count(2)

    # while the agent is in the filter form, the list does not move under the hand
    fetches = []
    page.on("request", lambda request: fetches.append(request.url))
    page.get_by_label("並び順").focus()
    arrives("夜の問い合わせ")
    page.clock.run_for(31_000)
    page.evaluate("1")  # the page's timers have run
    assert not [url for url in fetches if "/desk/" in url]
    expect(rows).to_have_count(2)

    # and once they leave it, the next refresh brings the new contact
    page.evaluate("document.activeElement.blur()")
    page.clock.run_for(31_000)
    expect(page.get_by_role("link", name="夜の問い合わせ")).to_be_visible()
