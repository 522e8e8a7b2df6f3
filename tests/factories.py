"""factory-boy factories for every model, the way tests build their world."""

import uuid
from datetime import date, timedelta

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from incidents.models import Disaster
from portal.accounts.models import Role, User
from portal.models import Heartbeat
from subscriptions.models import (
    Customer,
    LineSpeed,
    OutOfSyncTally,
    Plan,
    Site,
    Subscription,
    term_end_for,
)
from subscriptions.prefectures import Prefecture
from support.channels import Channel
from upgrades.models import (
    BlanketUpgrade,
    CustomerNotice,
    ProvisioningChange,
    SpeedGrant,
    UpgradeRequest,
)

PASSWORD = "correct-horse-battery"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    code = factory.Sequence(lambda n: f"C-{n:05d}")
    name = factory.Sequence(lambda n: f"顧客{n}株式会社")
    kind = Customer.Kind.BUSINESS
    email = factory.Sequence(lambda n: f"contact{n}@customer.example.com")
    phone = "03-1234-5678"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"拠点{n}")
    postal_code = "368-0033"
    prefecture = Prefecture.SAITAMA
    address = factory.Sequence(lambda n: f"秩父市野坂町{n}-1")
    contact_phone = "0494-22-0000"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ["name"]

    name = "BCP-256"
    normal_kbps = 256
    upgraded_kbps = 8192


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    contract_number = factory.Sequence(lambda n: f"BCP-{n:07d}")
    site = factory.SubFactory(SiteFactory)
    plan = factory.SubFactory(PlanFactory)
    service_start = date(2023, 4, 1)
    static_ip = False

    @factory.post_generation
    def speed(line, create, extracted, **state):
        """``speed__applied_upgraded=True`` and the like: the line's speed row (made
        with the line) as given, counted if it waits for the network."""
        if create and state:
            LineSpeed.objects.filter(subscription=line).update(**state)
            line.speed.refresh_from_db()
            if line.speed.desired_upgraded != line.speed.applied_upgraded:
                OutOfSyncTally.objects.add(1)


def role_group(default: Role) -> factory.PostGeneration:
    """Put the user in a role's group (made by the roles data migration)."""

    def add(user, create, extracted, **kwargs):
        if create:
            user.groups.add(Group.objects.get(name=extracted or default))

    return factory.PostGeneration(add)


class UserFactory(factory.django.DjangoModelFactory):
    """A customer user; pass ``customer=`` to put it in an existing organisation."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Sequence(lambda n: f"利用者 {n}")
    customer = factory.SubFactory(CustomerFactory)
    password = factory.django.Password(PASSWORD)
    role = role_group(Role.CUSTOMER)


class SupportUserFactory(UserFactory):
    customer = None
    is_staff = True
    role = role_group(Role.SUPPORT)


class OperatorUserFactory(UserFactory):
    customer = None
    is_staff = True
    role = role_group(Role.OPERATOR)


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Heartbeat

    name = "beat"
    beat_at = factory.LazyFunction(timezone.now)
    count = 1


class DisasterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Disaster

    title = factory.Sequence(lambda n: f"令和8年 地震 {n}")
    nationwide = True
    prefectures = factory.LazyFunction(list)
    declared_at = factory.LazyFunction(timezone.now)
    declared_by = factory.SubFactory(OperatorUserFactory)
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")


class BlanketUpgradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlanketUpgrade

    disaster = factory.SubFactory(DisasterFactory)
    created_at = factory.LazyFunction(timezone.now)
    deadline = factory.LazyAttribute(lambda o: o.created_at + timedelta(days=3))
    in_service_on = factory.LazyAttribute(lambda o: timezone.localdate(o.created_at))


class UpgradeRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UpgradeRequest
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    reason = UpgradeRequest.Reason.DISASTER
    channel = Channel.PORTAL
    received_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def sites(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.sites.set(extracted)


class SpeedGrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpeedGrant

    subscription = factory.SubFactory(SubscriptionFactory)
    source = SpeedGrant.Source.BLANKET
    blanket_upgrade = factory.SubFactory(BlanketUpgradeFactory)
    state = SpeedGrant.State.PENDING
    starts_at = factory.LazyFunction(timezone.now)


class ProvisioningChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProvisioningChange

    subscription = factory.SubFactory(SubscriptionFactory)
    version = 1
    upgraded = True
    from_kbps = 256
    to_kbps = 8192
    cause = "test"
    batch = factory.LazyFunction(uuid.uuid4)
    applied_at = factory.LazyFunction(timezone.now)


class CustomerNoticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerNotice

    kind = CustomerNotice.Kind.BLANKET_STARTED
    blanket_upgrade = factory.SubFactory(BlanketUpgradeFactory)
    customer = factory.SubFactory(CustomerFactory)
    created_at = factory.LazyFunction(timezone.now)


def give_lines(customer, *, sites: int, per_site: int, first: int = 0) -> None:
    """``sites`` times ``per_site`` in-service lines in three queries (2,000 in a second);
    the sites are numbered from ``first``."""
    plan = PlanFactory()
    start = date(2024, 4, 1)
    made = Site.objects.bulk_create(
        Site(
            customer=customer,
            name=f"拠点{i:04d}",
            prefecture="11",
            address=f"秩父市野坂町{i}-1",
            contact_phone="0494-22-0000",
            contact_phone_e164="+81494220000",  # what save() keeps, which bulk_create skips
        )
        for i in range(first, first + sites)
    )
    Subscription.objects.bulk_create(
        Subscription(
            contract_number=f"{customer.code}-{site.pk}-{n}",
            site=site,
            plan=plan,
            service_start=start,
            term_end=term_end_for(start),
        )
        for site in made
        for n in range(per_site)
    )
