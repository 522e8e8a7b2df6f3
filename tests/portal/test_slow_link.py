"""Every customer page over the satellite line stays small: at most 3 requests and 30 KB
with an empty cache, for a customer with one line and for one with 2,000.

Chromium emulates the line (128 kbit/s down, 64 up, 600 ms round trips); the pages are
found by following the links a customer sees, from the login page on. The two customers
are measured at once, each in its own browser. The load times are printed by
``bench/slowlink.py``, not asserted here.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser

from tests.factories import PASSWORD
from tests.slowlink import customers_with_everything, every_page, every_page_in_own_browser

MAX_REQUESTS = 3
MAX_BYTES = 30 * 1024

# Pages a customer with one of everything must have reached by links: if a link goes
# missing, the crawl would pass without measuring its page.
EXPECTED = {
    "login",
    "home",
    "subscriptions:detail",
    "subscriptions:quote",
    "subscriptions:invoices",
    "subscriptions:invoice",
    "upgrades:index",
    "upgrades:request",
    "incidents:status",
    "incidents:damage-reports",
    "incidents:damage-report",
    "incidents:check-in",
    "desk:inquiries",
    "desk:inquiry",
    "contact",
}
# A big customer's pages of a site's lines, and of more sites.
EXPECTED_AT_2000 = EXPECTED | {"home?site", "home?page"}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_customer_page_is_small_over_the_satellite_line(live_server, browser: Browser):
    customers_with_everything({"one-line@example.com": 1, "many-lines@example.com": 2000})

    with ThreadPoolExecutor(1) as other_browser:
        one_line = other_browser.submit(
            every_page_in_own_browser, live_server.url, "one-line@example.com", PASSWORD
        )
        many_lines = every_page(browser, live_server.url, "many-lines@example.com", PASSWORD)
        one_line = one_line.result()

    for lines, loads, expected in [(1, one_line, EXPECTED), (2000, many_lines, EXPECTED_AT_2000)]:
        for load in loads:
            print(
                f"{lines:>5} lines  {load.kind:28} {load.requests} requests"
                f" {load.bytes / 1024:5.1f} KB {load.path}"
            )
        assert expected <= {load.kind for load in loads}, lines
        too_big = [
            load
            for load in loads
            if load.status != 200
            or load.unfinished
            or load.requests > MAX_REQUESTS
            or load.bytes > MAX_BYTES
        ]
        assert not too_big, lines
