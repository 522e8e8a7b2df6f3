from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from subscriptions.models import Site, Subscription, term_end_for
from tests.factories import CustomerFactory, OperatorUserFactory, PlanFactory

TOKYO = ZoneInfo("Asia/Tokyo")
# "Now" in these tests: a Tuesday morning in Japan.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO)


def make_lines(n: int, *, prefecture: str = "11", customer=None, start=date(2024, 4, 1)):
    """``n`` in-service lines, each at its own site, in three queries (bulk)."""
    customer = customer or CustomerFactory()
    plan = PlanFactory()
    sites = Site.objects.bulk_create(
        Site(
            customer=customer,
            name=f"site {i}",
            prefecture=prefecture,
            address="x",
            contact_phone="0494-22-0000",
        )
        for i in range(n)
    )
    return Subscription.objects.bulk_create(
        Subscription(
            contract_number=f"{customer.code}-{prefecture}-{i}",
            site=site,
            plan=plan,
            service_start=start,
            term_end=term_end_for(start),
        )
        for i, site in enumerate(sites)
    )


@pytest.fixture
def operator():
    return OperatorUserFactory()
