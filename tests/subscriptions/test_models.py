import re
from datetime import UTC, date, datetime

import pytest
from django.db import IntegrityError, transaction

from subscriptions.models import Subscription, term_end_for
from tests.factories import PlanFactory, SiteFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_term_ends_on_the_fifth_anniversary_of_the_start():
    assert term_end_for(date(2014, 4, 1)) == date(2019, 4, 1)


def test_term_started_on_29_february_ends_on_1_march_never_short():
    assert term_end_for(date(2016, 2, 29)) == date(2021, 3, 1)


def test_saving_a_subscription_derives_its_term_end_from_the_start():
    subscription = SubscriptionFactory(service_start=date(2016, 12, 1))

    subscription.refresh_from_db()
    assert subscription.term_end == date(2021, 12, 1)


def test_state_follows_the_term_dates_and_cancellation():
    subscription = SubscriptionFactory(service_start=date(2014, 4, 1))

    assert subscription.state_on(date(2018, 3, 31)) == Subscription.State.ACTIVE
    assert subscription.state_on(date(2019, 3, 31)) == Subscription.State.EXPIRING_SOON
    assert subscription.days_left(date(2019, 3, 31)) == 1
    assert subscription.state_on(date(2019, 4, 1)) == Subscription.State.EXPIRED
    assert subscription.days_left(date(2019, 4, 1)) == 0
    subscription.status = Subscription.Status.CANCELLED
    assert subscription.state_on(date(2018, 1, 1)) == Subscription.State.CANCELLED


def test_in_service_selects_active_subscriptions_whose_term_has_not_ended():
    current = SubscriptionFactory(service_start=date(2023, 1, 1))
    SubscriptionFactory(service_start=date(2014, 1, 1))  # expired 2019
    SubscriptionFactory(service_start=date(2023, 1, 1), status=Subscription.Status.CANCELLED)
    SubscriptionFactory(service_start=date(2026, 12, 24))  # starts in a month

    assert list(Subscription.objects.in_service(date(2026, 11, 24))) == [current]


def test_for_customer_without_a_customer_matches_nothing():
    SubscriptionFactory()

    assert not Subscription.objects.for_customer(None).exists()


@pytest.mark.parametrize(
    ("factory", "fields"),
    [
        (PlanFactory, {"name": "slow", "normal_kbps": 512, "upgraded_kbps": 512}),
        (PlanFactory, {"name": "zero", "normal_kbps": 0, "upgraded_kbps": 512}),
        (SiteFactory, {"prefecture": "48"}),
        (SiteFactory, {"prefecture": "00"}),
        (SubscriptionFactory, {"status": "paused"}),
    ],
    ids=[
        "upgrade-not-faster",
        "zero-speed",
        "prefecture-48",
        "prefecture-00",
        "unknown-status",
    ],
)
def test_database_refuses_rows_that_break_an_invariant(factory, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**fields)


def test_contract_numbers_are_unique():
    SubscriptionFactory(contract_number="CHI-2014-001")

    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(contract_number="CHI-2014-001")


def test_a_line_expires_at_midnight_japan_time_not_utc(client):
    import time_machine
    from django.urls import reverse

    from tests.factories import UserFactory

    user = UserFactory()
    SubscriptionFactory(site__customer=user.customer, service_start=date(2021, 11, 25))
    client.force_login(user)

    # 2026-11-24 23:59 in Tokyo is still 14:59 UTC the same day: the last day of service
    with time_machine.travel(datetime(2026, 11, 24, 14, 59, tzinfo=UTC), tick=False):
        last_day = client.get(reverse("home")).text
    # 2026-11-25 00:00 in Tokyo is 15:00 UTC on the 24th: the term has ended
    with time_machine.travel(datetime(2026, 11, 24, 15, 0, tzinfo=UTC), tick=False):
        next_day = client.get(reverse("home")).text

    # the line's own state badge (the summary above names every state as a heading)
    badges = re.compile(r'<span class="badge [a-z]+">([^<]+)</span>')
    assert badges.findall(last_day) == ["まもなく満了"]
    assert badges.findall(next_day) == ["期限切れ"]
    assert "2026-11-24" in last_day  # shown as the last day of service


def test_database_refuses_a_term_that_ends_before_it_starts():
    subscription = SubscriptionFactory(service_start=date(2020, 1, 1))

    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(term_end=date(2020, 1, 1))


def test_the_term_end_follows_a_corrected_start():
    subscription = SubscriptionFactory(service_start=date(2020, 1, 1))

    subscription.service_start = date(2020, 2, 1)
    subscription.save()

    assert subscription.term_end == date(2025, 2, 1)
    assert subscription.last_day == date(2025, 1, 31)
