"""Upgrade requests: from the portal or recorded by support, approved, applied, ended."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from subscriptions.models import Subscription
from support.channels import Channel
from tests.factories import (
    DisasterFactory,
    SiteFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)
from tests.upgrades.conftest import NOW
from upgrades.models import CustomerNotice, SpeedGrant, UpgradeRequest
from upgrades.provisioning import RecordingBackend
from upgrades.services.provisioning import reconcile_speeds
from upgrades.services.requests import (
    approve_upgrade_request,
    cancel_upgrade_request,
    end_upgrade_request,
    reject_upgrade_request,
    request_upgrade,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_user():
    return UserFactory()


@pytest.fixture
def site(customer_user):
    line = SubscriptionFactory(site__customer=customer_user.customer, site__prefecture="04")
    return line.site


def ask(customer_user, sites, now_override=None, **kwargs):
    return request_upgrade(
        customer=customer_user.customer,
        sites=sites,
        reason=UpgradeRequest.Reason.DISASTER,
        channel=kwargs.pop("channel", Channel.PORTAL),
        requested_by=customer_user,
        now=now_override or NOW,
        **kwargs,
    )


def test_a_customer_request_is_stamped_with_channel_and_time_and_starts_new(customer_user, site):
    upgrade_request = ask(customer_user, [site], note="停電中")

    assert upgrade_request.status == "new"
    assert upgrade_request.channel == "portal"
    assert upgrade_request.received_at == NOW
    assert list(upgrade_request.sites.all()) == [site]
    assert [e.status for e in upgrade_request.events.all()] == ["new"]


def test_support_records_a_phone_request_for_a_customer(customer_user, site):
    staff = SupportUserFactory()

    upgrade_request = request_upgrade(
        customer=customer_user.customer,
        sites=[site],
        reason=UpgradeRequest.Reason.DISASTER,
        channel=Channel.PHONE,
        recorded_by=staff,
        contact_name="佐藤",
        contact_phone="022-555-0101",
        now=NOW,
    )

    assert (upgrade_request.channel, upgrade_request.recorded_by) == ("phone", staff)
    assert upgrade_request.requested_by is None


def test_a_request_is_linked_to_the_active_disaster_covering_its_site(customer_user, site):
    DisasterFactory(nationwide=False, prefectures=["13"])
    miyagi = DisasterFactory(nationwide=False, prefectures=["04", "07"])

    assert ask(customer_user, [site]).disaster == miyagi


@pytest.mark.parametrize("case", ["none", "foreign", "expired"])
def test_a_request_refuses_sites_it_cannot_upgrade(customer_user, site, case):
    sites = {
        "none": [],
        "foreign": [SubscriptionFactory().site],
        "expired": [
            SubscriptionFactory(
                site__customer=customer_user.customer, service_start=date(2015, 1, 1)
            ).site
        ],
    }[case]

    with pytest.raises(ValidationError) as error:
        ask(customer_user, sites)

    assert "sites" in error.value.message_dict
    assert not UpgradeRequest.objects.exists()


def test_approval_grants_every_line_at_the_sites_and_tells_the_customer(customer_user, site):
    other = SiteFactory(customer=customer_user.customer)
    SubscriptionFactory(site=other)
    upgrade_request = ask(customer_user, [site, other])
    staff = SupportUserFactory()

    grants = approve_upgrade_request(upgrade_request=upgrade_request, by=staff, now=NOW)

    assert len(grants) == 2
    assert {g.state for g in grants} == {"active"}
    assert Subscription.objects.filter(speed__desired_upgraded=True).count() == 2
    assert CustomerNotice.objects.filter(kind="request_approved").count() == 1
    upgrade_request.refresh_from_db()
    assert (upgrade_request.status, upgrade_request.decided_by) == ("approved", staff)


def test_a_request_becomes_applied_once_the_network_runs_its_lines_fast(customer_user, site):
    upgrade_request = ask(customer_user, [site])
    approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)

    reconcile_speeds(backend=RecordingBackend(), now=NOW)

    upgrade_request.refresh_from_db()
    assert upgrade_request.status == "applied"
    assert [e.status for e in upgrade_request.events.all()] == ["new", "approved", "applied"]


def test_ending_a_request_ends_its_grants_and_slows_the_lines(customer_user, site):
    upgrade_request = ask(customer_user, [site])
    approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)

    end_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)

    assert set(SpeedGrant.objects.values_list("state", flat=True)) == {"ended"}
    assert not Subscription.objects.filter(speed__desired_upgraded=True).exists()


def test_rejection_needs_a_reason_and_tells_the_customer(customer_user, site):
    upgrade_request = ask(customer_user, [site])
    staff = SupportUserFactory()

    with pytest.raises(ValidationError):
        reject_upgrade_request(upgrade_request=upgrade_request, by=staff, now=NOW, reason=" ")
    reject_upgrade_request(
        upgrade_request=upgrade_request, by=staff, now=NOW, reason="回線は既に高速です"
    )

    upgrade_request.refresh_from_db()
    assert upgrade_request.status == "rejected"
    assert CustomerNotice.objects.filter(kind="request_rejected").count() == 1
    assert not SpeedGrant.objects.exists()


def test_only_a_new_request_can_be_cancelled_or_decided(customer_user, site):
    upgrade_request = ask(customer_user, [site])
    cancel_upgrade_request(upgrade_request=upgrade_request, by=customer_user, now=NOW)

    with pytest.raises(ValidationError):
        approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)
    with pytest.raises(ValidationError):
        cancel_upgrade_request(upgrade_request=upgrade_request, by=customer_user, now=NOW)
    assert not SpeedGrant.objects.exists()


@pytest.mark.parametrize(
    ("hour", "after_hours"), [(10, False), (22, True)], ids=["working-hours", "night"]
)
def test_a_request_is_stamped_after_hours_by_the_business_calendar(
    customer_user, site, hour, after_hours
):
    upgrade_request = ask(customer_user, [site], now_override=NOW.replace(hour=hour))

    assert upgrade_request.after_hours is after_hours


def test_a_request_in_a_declared_disaster_or_after_hours_gets_high_priority(customer_user, site):
    calm = ask(customer_user, [site])
    night = ask(customer_user, [site], now_override=NOW.replace(hour=23))
    DisasterFactory(nationwide=False, prefectures=["04"])
    in_disaster = ask(customer_user, [site])

    assert [calm.priority, night.priority, in_disaster.priority] == ["normal", "high", "high"]
