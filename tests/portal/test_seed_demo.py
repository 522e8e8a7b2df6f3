import io
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from portal.accounts.models import User
from subscriptions.models import Customer, Site, Subscription

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_can_run_again_without_duplicating_anything():
    seed()
    counts = [m.objects.count() for m in (Customer, Site, Subscription, User)]

    seed()

    assert [m.objects.count() for m in (Customer, Site, Subscription, User)] == counts


def test_seed_demo_covers_prefectures_ages_and_roles():
    output = seed()
    today = date(2026, 11, 24)

    assert Site.objects.values("prefecture").distinct().count() >= 3
    expired_years = {
        s.term_end.year for s in Subscription.objects.all() if s.state_on(today) == "expired"
    }
    assert {2019, 2020, 2021} <= expired_years
    states = {s.state_on(timezone.localdate()) for s in Subscription.objects.all()}
    assert states == {"active", "expiring_soon", "extended", "expired", "cancelled"}
    assert Subscription.objects.in_service(today).exists()
    assert User.objects.filter(groups__name="support", is_staff=True).exists()
    assert User.objects.filter(groups__name="operator", is_staff=True).exists()
    assert "operator@example.com" in output
    assert "chichibu@example.com" in output


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError):
        seed()
    assert not Customer.objects.exists()
