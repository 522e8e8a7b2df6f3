"""Every customer page in Chromium over the emulated satellite line, measured.

Shared by ``tests/portal/test_slow_link.py`` (asserts requests and bytes per page) and
``bench/slowlink.py`` (prints them with the load times, in production mode).

The line: Chromium's DevTools network conditions at 128 kbit/s down, 64 kbit/s up and
600 ms round trips, the browser cache emptied before every page (a customer's first
visit on the day of a disaster). The pages are found the way a customer finds them: from
the home page, by following every link of the portal's customer pages, one page per kind
of page (its URL's name and the names of its query parameters).
"""

import io
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlsplit

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, resolve
from django.utils import timezone
from PIL import Image

# Chromium's figures are bytes per second; latency is the added round-trip time in ms.
SATELLITE = {
    "offline": False,
    "latency": 600,
    "downloadThroughput": 128_000 // 8,
    "uploadThroughput": 64_000 // 8,
}

# What a customer follows but that is not a page of the portal's customer side.
NOT_PAGES = ("/accounts/logout/", "/i18n/", "/admin/", "/api/", "/static/", "/media/")
# Files the customer downloads (a PDF, a photo): measured by their own tests, not here.
DOWNLOADS = {"subscriptions:invoice-pdf", "incidents:damage-photo", "desk:attachment"}


@dataclass
class PageLoad:
    kind: str
    path: str
    status: int
    requests: int
    bytes: int
    load_ms: float
    # Requests that never finished (failed, or still loading at the load event): their
    # bytes are unknown, so a page with any is not measured and fails the checks.
    unfinished: int = 0


def page_kind(path_and_query: str) -> str | None:
    """``home?site`` for ``/?site=12``: a kind of page, or None for what is not one."""
    parts = urlsplit(path_and_query)
    if parts.path.startswith(NOT_PAGES):
        return None
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    if match.view_name in DOWNLOADS:
        return None
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return match.view_name + ("?" + "&".join(keys) if keys else "")


@dataclass
class Task:
    requests: int
    bytes: int
    seconds: float


class SlowLine:
    """A Playwright page on the emulated line, with a per-page count of what went over it."""

    def __init__(self, page, conditions=SATELLITE):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.send("Network.emulateNetworkConditions", conditions)
        self._loaders: dict[str, str] = {}
        self._document_loader = ""
        self._bytes: dict[str, int] = {}
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.loadingFinished", self._finished)

    def _sent(self, event):
        if event["request"]["url"].startswith("http"):
            self._loaders[event["requestId"]] = event["loaderId"]
            if event.get("type") == "Document":
                self._document_loader = event["loaderId"]

    def _finished(self, event):
        # encodedDataLength: what crossed the line, headers and compressed body.
        self._bytes[event["requestId"]] = event["encodedDataLength"]

    def load(self, url: str) -> PageLoad:
        self.cdp.send("Network.clearBrowserCache")
        self.start_counting()
        response = self.page.goto(url, wait_until="load")
        # The page's own requests: a late event of the page before does not count.
        loader = self._document_loader
        load_ms = self.page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return n.loadEventEnd - n.startTime; }"
        )
        mine = [request for request, by in self._loaders.items() if by == loader]
        parts = urlsplit(self.page.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return PageLoad(
            kind=page_kind(path) or path,
            path=path,
            status=response.status if response else 0,
            requests=len(mine),
            bytes=sum(self._bytes.get(request, 0) for request in mine),
            load_ms=load_ms,
            unfinished=sum(1 for request in mine if request not in self._bytes),
        )

    def start_counting(self) -> None:
        self._loaders.clear()
        self._bytes.clear()

    def counted(self) -> tuple[int, int]:
        """Requests and bytes since ``start_counting``, whatever page made them."""
        return len(self._loaders), sum(self._bytes.get(request, 0) for request in self._loaders)

    def links(self) -> list[str]:
        return self.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")


def log_in(line: SlowLine, base_url: str, email: str, password: str) -> PageLoad:
    """The login page, measured, then the form posted as the customer does."""
    loaded = line.load(f"{base_url}/accounts/login/")
    line.page.fill("input[name=username]", email)
    line.page.fill("input[name=password]", password)
    with line.page.expect_navigation():
        line.page.click("form:has(input[name=password]) [type=submit]")
    return loaded


def get_a_quote(line: SlowLine, base_url: str) -> PageLoad:
    """The quote page, where "Get a quote" on a line's page leads, loaded cold."""
    line.page.goto(f"{base_url}/")
    line.page.locator("main a[href^='/subscriptions/']").first.click()
    line.page.get_by_role("button", name="見積を取る").click()
    line.page.wait_for_url("**/subscriptions/quotes/*/")
    return line.load(line.page.url)


def keep_the_upgrade(line: SlowLine, base_url: str, email: str, password: str) -> Task:
    """The disaster morning's task, logged out with an empty cache: log in, keep the
    upgrade from the banner, read the confirmation."""
    line.cdp.send("Network.clearBrowserCache")
    line.page.context.clear_cookies()
    line.start_counting()
    started = time.perf_counter()
    line.page.goto(f"{base_url}/accounts/login/")
    line.page.fill("input[name=username]", email)
    line.page.fill("input[name=password]", password)
    line.page.click("form:has(input[name=password]) [type=submit]")
    line.page.get_by_role("button", name="高速化を継続する").first.click()
    line.page.locator(".messages").wait_for()
    seconds = time.perf_counter() - started
    requests, sent = line.counted()
    return Task(requests=requests, bytes=sent, seconds=seconds)


def crawl(line: SlowLine, base_url: str, *, start: str = "/", limit: int = 60) -> list[PageLoad]:
    """Load one page of every kind a customer can reach by links from ``start``."""
    seen: set[str] = set()
    queue = deque([start])
    loads: list[PageLoad] = []
    while queue and len(loads) < limit:
        path = queue.popleft()
        kind = page_kind(path)
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        loads.append(line.load(base_url + path))
        for href in line.links():
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != base_url:
                continue
            found = parts.path + (f"?{parts.query}" if parts.query else "")
            if page_kind(found) not in seen:
                queue.append(found)
    return loads


def every_page(browser, base_url: str, email: str, password: str) -> list[PageLoad]:
    """Every kind of customer page, as ``email`` reaches it, in a context of its own."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        line = SlowLine(context.new_page())
        loads = [log_in(line, base_url, email, password)]
        loads += crawl(line, base_url)
        loads.append(get_a_quote(line, base_url))
        return loads
    finally:
        context.close()


def every_page_in_own_browser(base_url: str, email: str, password: str) -> list[PageLoad]:
    """``every_page`` in a chromium of its own: Playwright's sync API is one per thread,
    so two customers can be measured at once from two threads."""
    from playwright.sync_api import sync_playwright

    from tests.chromium import LAUNCH_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**LAUNCH_ARGS)
        try:
            return every_page(browser, base_url, email, password)
        finally:
            browser.close()


def _photo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 120, 200)).save(buffer, format="JPEG")
    return SimpleUploadedFile("antenna.jpg", buffer.getvalue(), content_type="image/jpeg")


def customers_with_everything(lines_by_email: dict[str, int]) -> list:
    """A customer user for each e-mail, whose organisation has that many lines and one of
    everything a customer page lists: a declared disaster's grants waiting for an answer
    and the operator's message about it, an upgrade request, a damage report with a
    photo, a question to support, and an extension quote with its invoice. Made through
    the services, as the pages would make them."""
    from desk.services import open_inquiry
    from incidents.broadcasts import queue_mass_message_deliveries, send_mass_message
    from incidents.services import report_damage
    from subscriptions.models import ExtensionOffer, Site
    from subscriptions.services import accept_quote, quote_extension
    from tests.factories import OperatorUserFactory, UserFactory, give_lines
    from upgrades.models import UpgradeRequest
    from upgrades.services.blanket import apply_blanket_upgrade, declare_disaster
    from upgrades.services.requests import request_upgrade

    now = timezone.now()
    today = timezone.localdate(now)
    offer = ExtensionOffer.objects.create(
        name="延長(2031年3月まで)/ Extension until March 2031",
        extends_until=date(2031, 3, 31),
        annual_price_yen=100_000,
        static_ip_annual_price_yen=24_000,
        tax_rate_percent=10,
        opens_on=today - timedelta(days=30),
        closes_on=today + timedelta(days=60),
    )
    users = []
    for email, lines in lines_by_email.items():
        user = UserFactory(email=email)
        customer = user.customer
        # A head office with a tenth of the lines, the rest five to a site (the last one
        # fewer).
        if lines < 1:
            raise ValueError("a customer has at least one line")
        if head_office := lines // 10:
            give_lines(customer, sites=1, per_site=head_office)
        full, rest = divmod(lines - head_office, 5)
        give_lines(customer, sites=full, per_site=5, first=1)
        if rest:
            give_lines(customer, sites=1, per_site=rest, first=full + 1)
        site = Site.objects.filter(customer=customer).order_by("pk").first()
        line = site.subscriptions.order_by("pk").first()
        paid = quote_extension(subscription=line, offer=offer, by=user, now=now)
        accept_quote(quote=paid, by=user, now=now)
        quote_extension(subscription=line, offer=offer, by=user, now=now)
        request_upgrade(
            customer=customer,
            sites=[site],
            reason=UpgradeRequest.Reason.TEST,
            channel="portal",
            requested_by=user,
            now=now,
        )
        report_damage(
            site=site,
            description="台風でアンテナが傾いた",
            photos=[_photo()],
            channel="portal",
            by=user,
            now=now,
        )
        open_inquiry(
            customer=customer,
            subject="回線の速度について",
            body="災害時の速度を教えてください。",
            channel="portal",
            by=user,
            site=site,
            now=now,
        )
        users.append(user)

    operator = OperatorUserFactory()
    blanket = declare_disaster(
        operator=operator,
        title="令和8年 秩父豪雨",
        nationwide=False,
        prefectures=sorted({site.prefecture for site in Site.objects.all()}),
        message="地上回線の復旧まで、衛星回線を増速します。",
        idempotency_key=str(uuid.uuid4()),
        now=now,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now)
    message = send_mass_message(
        operator=operator,
        subject_ja="増速のお知らせ",
        body_ja="被災地域の回線を増速しました。",
        audience="disaster",
        disaster=blanket.disaster,
        idempotency_key=str(uuid.uuid4()),
        now=now,
    )
    queue_mass_message_deliveries(message_id=message.pk, now=now)
    return users
