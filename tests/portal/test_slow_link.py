"""Every customer page over the satellite line stays small: at most 3 requests and 30 KB
with an empty cache, for a customer with one line and for one with 2,000.

Chromium emulates the line (128 kbit/s down, 64 up, 600 ms round trips); the pages are
found by following the links a customer sees, from the login page on. The load times are
printed by ``bench/slowlink.py``, not asserted here.
"""

import pytest
from playwright.sync_api import Browser

from tests.factories import PASSWORD
from tests.slowlink import SlowLine, crawl, customers_with_everything, get_a_quote, log_in

MAX_REQUESTS = 3
MAX_BYTES = 30 * 1024

# Pages a customer with one of everything must have reached by links: if a link goes
# missing, the crawl would pass without measuring its page.
EXPECTED = {
    "home",
    "subscriptions:detail",
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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lines", [1, 2000])
def test_every_customer_page_is_small_over_the_satellite_line(live_server, browser: Browser, lines):
    customers_with_everything({"chichibu@example.com": lines})
    line = SlowLine(browser.new_page(locale="ja-JP"))

    loads = [log_in(line, live_server.url, "chichibu@example.com", PASSWORD)]
    loads += crawl(line, live_server.url)
    loads.append(get_a_quote(line, live_server.url))

    for load in loads:
        print(f"{load.kind:32} {load.requests} requests {load.bytes / 1024:5.1f} KB {load.path}")
    expected = EXPECTED | {"subscriptions:quote"} | ({"home?site"} if lines > 5 else set())
    assert expected <= {load.kind for load in loads}
    too_big = [
        load
        for load in loads
        if load.status != 200 or load.requests > MAX_REQUESTS or load.bytes > MAX_BYTES
    ]
    assert not too_big
