"""Declaring a disaster, confirming, declining, reverting and ending (FAQ Q2)."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from subscriptions.models import Subscription
from support.channels import Channel
from tests.factories import SubscriptionFactory, UserFactory
from tests.upgrades.conftest import NOW, make_lines
from upgrades.models import BlanketUpgrade, BlanketUpgradeEvent, CustomerNotice, SpeedGrant
from upgrades.services import blanket as blanket_services
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    end_blanket_grants,
    end_disaster,
    extend_deadline,
    respond_to_grants,
    revert_expired_grants,
)

pytestmark = pytest.mark.django_db


def declare(operator, *, key="k1", nationwide=True, prefectures=(), window_days=3, now=NOW):
    blanket = declare_disaster(
        operator=operator,
        title="令和8年 関東大震災",
        nationwide=nationwide,
        prefectures=list(prefectures),
        window_days=window_days,
        idempotency_key=key,
        now=now,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now, chunk_size=7)
    blanket.refresh_from_db()
    return blanket


def test_declaring_upgrades_every_in_service_line_in_scope(operator):
    saitama = make_lines(10, prefecture="11")
    kochi = make_lines(4, prefecture="39")
    expired = SubscriptionFactory(service_start=date(2016, 1, 1), site__prefecture="11")
    cancelled = SubscriptionFactory(status="cancelled", site__prefecture="11")

    blanket = declare(operator, nationwide=False, prefectures=["11"])

    granted = set(blanket.grants.values_list("subscription_id", flat=True))
    assert granted == {line.pk for line in saitama}
    assert blanket.status == BlanketUpgrade.Status.ACTIVE
    assert blanket.deadline == NOW + timedelta(days=3)
    assert set(blanket.grants.values_list("state", flat=True)) == {SpeedGrant.State.PENDING}
    upgraded = set(
        Subscription.objects.filter(speed__desired_upgraded=True).values_list("pk", flat=True)
    )
    assert upgraded == granted
    assert not {line.pk for line in kochi} & upgraded
    assert expired.pk not in upgraded and cancelled.pk not in upgraded
    # one notice for the one customer of the ten lines
    (notice,) = CustomerNotice.objects.filter(kind="blanket_started")
    assert notice.customer == saitama[0].site.customer and notice.queued_at is not None


def test_a_line_whose_service_starts_later_is_not_upgraded_by_a_declaration(operator):
    # given a line in service and one signed to start in 30 days, at the same place
    in_service = make_lines(1, prefecture="11")[0]
    later = SubscriptionFactory(
        service_start=NOW.date() + timedelta(days=30), site__prefecture="11"
    )
    starts_today = SubscriptionFactory(service_start=NOW.date(), site__prefecture="11")

    # when a disaster is declared over it
    blanket = declare(operator, nationwide=False, prefectures=["11"])

    # then only the lines in service today are granted and upgraded
    granted = set(blanket.grants.values_list("subscription_id", flat=True))
    assert granted == {in_service.pk, starts_today.pk}
    later.refresh_from_db()
    assert not later.speed.desired_upgraded
    assert not CustomerNotice.objects.filter(customer=later.site.customer).exists()
    # and the day its service starts, it is in service
    assert Subscription.objects.in_service(later.service_start).filter(pk=later.pk).exists()


def test_declaring_twice_with_the_same_key_declares_once(operator):
    make_lines(5)

    first = declare(operator, key="form-token-1")
    second = declare(operator, key="form-token-1")

    assert first == second
    assert BlanketUpgrade.objects.count() == 1
    assert SpeedGrant.objects.count() == 5
    assert Subscription.objects.filter(speed__desired_version=1).count() == 5


def test_running_the_grant_job_again_changes_nothing(operator):
    make_lines(9)
    blanket = declare(operator)
    BlanketUpgrade.objects.filter(pk=blanket.pk).update(status="applying", cursor=0)

    created = apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW, chunk_size=4)

    assert created == 0
    assert SpeedGrant.objects.count() == 9
    assert CustomerNotice.objects.count() == 1
    assert Subscription.objects.filter(speed__desired_version=1).count() == 9


def test_scope_needs_nationwide_or_prefectures(operator):
    with pytest.raises(ValidationError):
        declare(operator, nationwide=False, prefectures=[])
    with pytest.raises(ValidationError):
        declare(operator, nationwide=False, prefectures=["99"])
    assert not BlanketUpgrade.objects.exists()


def test_confirmed_grants_stay_and_unconfirmed_ones_revert_at_the_deadline(operator):
    lines = make_lines(3)
    blanket = declare(operator)
    customer_user = UserFactory(customer=lines[0].site.customer)
    keep, decline, silent = blanket.grants.order_by("subscription_id")

    respond_to_grants(
        grants=SpeedGrant.objects.filter(pk=keep.pk),
        keep=True,
        by=customer_user,
        channel=Channel.PORTAL,
        now=NOW + timedelta(days=1),
    )
    respond_to_grants(
        grants=SpeedGrant.objects.filter(pk=decline.pk),
        keep=False,
        by=customer_user,
        channel=Channel.PORTAL,
        now=NOW + timedelta(days=1),
    )
    before = revert_expired_grants(now=blanket.deadline - timedelta(seconds=1))
    reverted = revert_expired_grants(now=blanket.deadline)

    states = dict(blanket.grants.values_list("pk", "state"))
    assert (before, reverted) == (0, 1)
    assert states == {keep.pk: "active", decline.pk: "declined", silent.pk: "reverted"}
    wanted = dict(Subscription.objects.values_list("pk", "speed__desired_upgraded"))
    assert wanted == {
        keep.subscription_id: True,
        decline.subscription_id: False,
        silent.subscription_id: False,
    }
    notice = CustomerNotice.objects.get(kind="reverted")
    assert (notice.customer, notice.blanket_upgrade, notice.created_at) == (
        lines[0].site.customer,
        blanket,
        blanket.deadline,
    )


def test_each_revert_run_is_in_the_history_of_the_blankets_it_touched(operator):
    make_lines(3, prefecture="11")
    make_lines(2, prefecture="39")
    make_lines(1, prefecture="01")
    saitama = declare(operator, key="a", nationwide=False, prefectures=["11"])
    kochi = declare(operator, key="b", nationwide=False, prefectures=["39"], window_days=5)
    hokkaido = declare(operator, key="c", nationwide=False, prefectures=["01"])
    respond_to_grants(  # Hokkaido's only line is confirmed: nothing to revert there
        grants=hokkaido.grants.all(), keep=True, by=None, channel=Channel.PHONE, now=NOW
    )
    first_run = saitama.deadline + timedelta(minutes=1)
    second_run = kochi.deadline + timedelta(minutes=1)

    revert_expired_grants(now=first_run, chunk_size=2)
    revert_expired_grants(now=first_run + timedelta(minutes=1))  # nothing left: no row
    revert_expired_grants(now=second_run)

    events = BlanketUpgradeEvent.objects.filter(kind="reverted")
    assert sorted(events.values_list("blanket_upgrade_id", "at", "detail")) == sorted(
        [(saitama.pk, first_run, {"grants": 3}), (kochi.pk, second_run, {"grants": 2})]
    )
    with translation.override("en"):
        described = events.get(blanket_upgrade=saitama).describe()
    assert described == "Unconfirmed lines returned to normal: 3"


def test_answers_after_the_deadline_or_twice_are_refused(operator):
    make_lines(1)
    blanket = declare(operator)
    grant = blanket.grants.get()
    staff = operator

    respond_to_grants(
        grants=blanket.grants.all(), keep=True, by=staff, channel=Channel.PHONE, now=NOW
    )
    with pytest.raises(ValidationError):
        respond_to_grants(
            grants=blanket.grants.all(), keep=False, by=staff, channel=Channel.PHONE, now=NOW
        )
    grant.refresh_from_db()
    assert grant.state == "active"
    assert grant.response_channel == "phone"
    assert grant.responded_by == staff


def test_a_pending_grant_cannot_be_confirmed_once_the_deadline_has_passed(operator):
    make_lines(1)
    blanket = declare(operator)

    with pytest.raises(ValidationError):
        respond_to_grants(
            grants=blanket.grants.all(),
            keep=True,
            by=None,
            channel=Channel.EMAIL_LINK,
            now=blanket.deadline,
        )


def test_extending_the_deadline_saves_lines_from_the_revert(operator):
    make_lines(2)
    blanket = declare(operator)

    extend_deadline(
        blanket=blanket,
        new_deadline=blanket.deadline + timedelta(days=2),
        operator=operator,
        now=NOW,
    )
    reverted = revert_expired_grants(now=NOW + timedelta(days=4))

    assert reverted == 0
    assert BlanketUpgradeEvent.objects.filter(kind="deadline_extended").exists()
    with pytest.raises(ValidationError):
        extend_deadline(blanket=blanket, new_deadline=NOW, operator=operator, now=NOW)


def test_ending_the_disaster_ends_every_grant_but_keeps_other_upgrades(operator):
    lines = make_lines(3)
    blanket = declare(operator)
    confirmed = blanket.grants.order_by("pk").first()
    respond_to_grants(
        grants=SpeedGrant.objects.filter(pk=confirmed.pk),
        keep=True,
        by=operator,
        channel=Channel.PHONE,
        now=NOW,
    )
    # a line also upgraded through an approved request keeps its speed
    SpeedGrant.objects.create(
        subscription=lines[2],
        source="request",
        upgrade_request=__import__("tests.factories").factories.UpgradeRequestFactory(
            customer=lines[2].site.customer
        ),
        state="active",
        starts_at=NOW,
    )

    end_disaster(disaster=blanket.disaster, operator=operator, now=NOW + timedelta(hours=5))
    ended = end_blanket_grants(blanket_id=blanket.pk, now=NOW + timedelta(hours=5))

    assert ended == 3
    assert set(blanket.grants.values_list("state", flat=True)) == {"ended"}
    wanted = dict(Subscription.objects.values_list("pk", "speed__desired_upgraded"))
    assert wanted == {lines[0].pk: False, lines[1].pk: False, lines[2].pk: True}
    assert CustomerNotice.objects.filter(kind="disaster_ended").count() == 1
    with pytest.raises(ValidationError):
        end_disaster(disaster=blanket.disaster, operator=operator, now=NOW + timedelta(hours=6))


def test_a_revert_that_dies_half_way_leaves_whole_chunks_and_the_next_run_finishes(
    operator, monkeypatch
):
    make_lines(10)
    blanket = declare(operator)
    real_lower = blanket_services.lower_desired_speeds
    calls = {"n": 0}

    def lower_then_die(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the worker dies inside the third chunk
            raise RuntimeError("worker killed")
        return real_lower(**kwargs)

    monkeypatch.setattr(blanket_services, "lower_desired_speeds", lower_then_die)
    with pytest.raises(RuntimeError):
        revert_expired_grants(now=blanket.deadline, chunk_size=3)

    # consistent: whole chunks only, each reverted grant's line lowered and noticed
    reverted = set(
        blanket.grants.filter(state="reverted").values_list("subscription_id", flat=True)
    )
    assert len(reverted) == 6
    lowered = set(
        Subscription.objects.filter(speed__desired_upgraded=False).values_list("pk", flat=True)
    )
    assert lowered == reverted
    # the dead run's notice is kept but not handed to the outbox: it would list 6 of 10
    assert CustomerNotice.objects.get(kind="reverted").queued_at is None

    monkeypatch.setattr(blanket_services, "lower_desired_speeds", real_lower)
    assert revert_expired_grants(now=blanket.deadline, chunk_size=3) == 4
    assert not Subscription.objects.filter(speed__desired_upgraded=True).exists()
    assert CustomerNotice.objects.get(kind="reverted").queued_at is not None


def test_a_grant_job_that_dies_half_way_resumes_where_it_stopped(operator, monkeypatch):
    make_lines(10)
    blanket = declare_disaster(
        operator=operator,
        title="t",
        nationwide=True,
        prefectures=[],
        idempotency_key="k",
        now=NOW,
    )
    real_raise = blanket_services.raise_desired_speeds
    calls = {"n": 0}

    def raise_then_die(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real_raise(**kwargs)

    monkeypatch.setattr(blanket_services, "raise_desired_speeds", raise_then_die)
    with pytest.raises(RuntimeError):
        apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW, chunk_size=4)
    assert SpeedGrant.objects.count() == 4
    assert Subscription.objects.filter(speed__desired_upgraded=True).count() == 4

    monkeypatch.setattr(blanket_services, "raise_desired_speeds", real_raise)
    apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW, chunk_size=4)

    blanket.refresh_from_db()
    assert blanket.status == "active"
    assert SpeedGrant.objects.count() == 10
    assert (
        Subscription.objects.filter(speed__desired_upgraded=True, speed__desired_version=1).count()
        == 10
    )


@pytest.mark.parametrize("job", ["declare", "revert"])
def test_queries_do_not_grow_with_the_number_of_lines(operator, job, django_assert_max_num_queries):
    def run(n: int, key: str) -> int:
        make_lines(n)
        blanket = declare_disaster(
            operator=operator,
            title=key,
            nationwide=True,
            prefectures=[],
            idempotency_key=key,
            confirm_overlap=True,  # the second run's disaster overlaps the first's
            now=NOW,
        )
        with django_assert_max_num_queries(200) as declared:
            apply_blanket_upgrade(blanket_id=blanket.pk, now=NOW, chunk_size=5000)
        if job == "declare":
            return len(declared.captured_queries)
        with django_assert_max_num_queries(200) as reverted:
            revert_expired_grants(now=blanket.deadline, chunk_size=5000)
        return len(reverted.captured_queries)

    few = run(100, "small")
    SpeedGrant.objects.all().delete()
    many = run(2000, "large")

    assert many == few
