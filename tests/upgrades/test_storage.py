"""The disaster path's storage: chunks keyed on the line id, overlapping declarations, a
line boosted by two grants, and the grant keys kept without a database constraint."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, ProtectedError
from django.urls import reverse

from portal.accounts.models import User
from subscriptions.models import LineSpeed, OutOfSyncTally, Site, Subscription
from support.channels import Channel
from tests.factories import SupportUserFactory, UserFactory
from tests.upgrades.conftest import NOW, make_lines
from upgrades.bulk import bool_array, int_array, text_array
from upgrades.models import (
    BlanketUpgrade,
    BlanketUpgradeEvent,
    CustomerNotice,
    SpeedGrant,
    UpgradeRequest,
)
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    end_blanket_grants,
    end_disaster,
    respond_to_grants,
    revert_expired_grants,
)
from upgrades.services.requests import approve_upgrade_request, request_upgrade

pytestmark = pytest.mark.django_db


def declare(operator, *, key, prefectures=(), chunk_size=3, now=NOW, grant=True):
    """Declare a disaster and (``grant``) grant its lines, as the follow-up task does."""
    blanket = declare_disaster(
        operator=operator,
        title=f"災害 {key}",
        nationwide=not prefectures,
        prefectures=list(prefectures),
        idempotency_key=key,
        confirm_overlap=True,
        now=now,
    )
    if grant:
        apply_blanket_upgrade(blanket_id=blanket.pk, now=now, chunk_size=chunk_size)
        blanket.refresh_from_db()
    return blanket


def boosting_grants_per_line() -> dict[int, int]:
    return dict(
        SpeedGrant.objects.boosting()
        .values_list("subscription_id")
        .annotate(n=Count("pk"))
        .order_by()
    )


def test_a_second_overlapping_declaration_grants_each_line_once_across_chunk_boundaries(
    operator,
):
    # given Saitama and Kochi lines interleaved by id, Saitama declared first
    lines = []
    for _ in range(4):
        lines += make_lines(2, prefecture="11") + make_lines(1, prefecture="39")
    saitama = [line for line in lines if line.site.prefecture == "11"]
    kochi = [line for line in lines if line.site.prefecture == "39"]
    first = declare(operator, key="saitama", prefectures=["11"])

    # when a nationwide disaster is declared over it, in chunks of 3 lines: every chunk
    # holds lines the first disaster already boosts, some at the chunk's edges
    second = declare(operator, key="nationwide")

    # then every line has exactly one boosting grant, the first disaster's where it had one
    assert boosting_grants_per_line() == {line.pk: 1 for line in lines}
    assert set(first.grants.values_list("subscription_id", flat=True)) == {
        line.pk for line in saitama
    }
    assert set(second.grants.values_list("subscription_id", flat=True)) == {
        line.pk for line in kochi
    }
    # each line's wanted speed changed once, and the second run ended on the last line
    assert set(
        Subscription.objects.values_list("speed__desired_upgraded", "speed__desired_version")
    ) == {(True, 1)}
    assert second.cursor == lines[-1].pk and second.status == "active"
    # one "started" notice per customer per disaster (each make_lines is its own customer)
    started = CustomerNotice.objects.filter(kind="blanket_started")
    assert started.filter(blanket_upgrade=first).count() == 4
    assert started.filter(blanket_upgrade=second).count() == 4


class WorkerStopped(Exception):
    pass


def test_a_disaster_ending_while_another_is_still_granting_hands_over_each_line_once(
    operator, monkeypatch
):
    # given a main shock over Miyagi, and an aftershock over Miyagi and Saitama whose
    # granting stopped after its first chunk of 3 lines (its worker died)
    lines = []
    for _ in range(3):
        lines += make_lines(2, prefecture="04") + make_lines(1, prefecture="11")
    miyagi = [line for line in lines if line.site.prefecture == "04"]
    main = declare(operator, key="main", prefectures=["04"])
    aftershock = declare(
        operator,
        key="aftershock",
        prefectures=["04", "11"],
        now=NOW + timedelta(hours=1),
        grant=False,
    )
    chunks_begun = []

    def keep_alive():  # called as each chunk begins
        chunks_begun.append(True)
        if len(chunks_begun) == 2:
            raise WorkerStopped

    with monkeypatch.context() as patched, pytest.raises(WorkerStopped):
        patched.setattr("upgrades.services.blanket.keep_alive", keep_alive)
        apply_blanket_upgrade(blanket_id=aftershock.pk, now=NOW + timedelta(hours=1), chunk_size=3)
    aftershock.refresh_from_db()
    assert aftershock.status == "applying" and aftershock.cursor == lines[2].pk

    # when the main shock ends, handing its Miyagi lines to the aftershock, those ahead of
    # the aftershock's granting included, and the aftershock's granting then resumes
    ended_at = NOW + timedelta(hours=2)
    end_disaster(disaster=main.disaster, operator=operator, now=ended_at)
    end_blanket_grants(blanket_id=main.pk, now=ended_at, chunk_size=3)
    apply_blanket_upgrade(blanket_id=aftershock.pk, now=ended_at, chunk_size=3)

    # then every line has one boosting grant, the aftershock's, and each Miyagi line waits
    # for the customer's answer to it
    aftershock.refresh_from_db()
    assert aftershock.status == "active"
    assert boosting_grants_per_line() == {line.pk: 1 for line in lines}
    assert set(
        aftershock.grants.filter(subscription__in=miyagi).values_list("state", flat=True)
    ) == {"pending"}
    assert aftershock.grants.count() == len(lines)
    assert set(Subscription.objects.values_list("speed__desired_upgraded", flat=True)) == {True}


def test_a_revert_over_chunk_boundaries_keeps_confirmed_lines_and_lines_boosted_twice(
    operator,
):
    # given ten lines of one customer; one has an approved upgrade request as well
    user = UserFactory()
    lines = make_lines(10, customer=user.customer)
    twice = lines[3]  # the first line of the second chunk of 3
    upgrade_request = request_upgrade(
        customer=user.customer,
        sites=[Site.objects.get(pk=twice.site_id)],
        reason="disaster",
        channel="portal",
        now=NOW,
    )
    approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)
    blanket = declare(operator, key="nationwide", now=NOW + timedelta(minutes=1))
    # the customer keeps the line at the end of the first chunk and of the third
    confirmed = [lines[2], lines[8]]
    respond_to_grants(
        grants=blanket.grants.filter(subscription__in=confirmed),
        keep=True,
        by=user,
        channel=Channel.PORTAL,
        now=NOW + timedelta(hours=1),
    )

    # when the revert job runs at the deadline in chunks of 3 grants, and again
    reverted = revert_expired_grants(now=blanket.deadline, chunk_size=3)
    again = revert_expired_grants(now=blanket.deadline + timedelta(minutes=1), chunk_size=3)

    # then the 8 unconfirmed grants are reverted, the line boosted twice among them
    assert (reverted, again) == (8, 0)
    states = dict(blanket.grants.values_list("subscription_id", "state"))
    assert {pk for pk, state in states.items() if state == "active"} == {
        line.pk for line in confirmed
    }
    assert {pk for pk, state in states.items() if state == "reverted"} == {
        line.pk for line in lines if line not in confirmed
    }
    # the line boosted twice stays upgraded (its request's grant), with no new change;
    # the confirmed ones too; the others go back to normal, one change each
    speeds = dict(Subscription.objects.values_list("pk", "speed__desired_upgraded"))
    versions = dict(Subscription.objects.values_list("pk", "speed__desired_version"))
    for line in lines:
        kept = line in confirmed or line == twice
        assert speeds[line.pk] is kept, line
        assert versions[line.pk] == (1 if kept else 2), line
    # one notice for the customer, one history row with the run's count
    assert CustomerNotice.objects.filter(kind="reverted").count() == 1
    assert list(
        BlanketUpgradeEvent.objects.filter(kind="reverted").values_list("detail", flat=True)
    ) == [{"grants": 8}]


def test_grant_keys_without_a_database_constraint_still_protect_what_they_name(operator):
    # given a grant from an approved request, and a blanket grant a customer answered
    user = UserFactory()
    line, other = make_lines(2, customer=user.customer)
    upgrade_request = request_upgrade(
        customer=user.customer,
        sites=[Site.objects.get(pk=line.site_id)],
        reason="disaster",
        channel="portal",
        now=NOW,
    )
    approve_upgrade_request(upgrade_request=upgrade_request, by=SupportUserFactory(), now=NOW)
    blanket = declare(operator, key="nationwide", now=NOW + timedelta(minutes=1))
    answering = UserFactory(customer=user.customer)
    respond_to_grants(
        grants=blanket.grants.filter(subscription=other),
        keep=True,
        by=answering,
        channel=Channel.PORTAL,
        now=NOW + timedelta(hours=1),
    )

    # then the request and the user cannot be deleted while grants name them
    with pytest.raises(ProtectedError) as request_kept:
        UpgradeRequest.objects.get(pk=upgrade_request.pk).delete()
    with pytest.raises(ProtectedError) as user_kept:
        User.objects.get(pk=answering.pk).delete()
    assert SpeedGrant in {type(row) for row in request_kept.value.protected_objects}
    assert {type(row) for row in user_kept.value.protected_objects} == {SpeedGrant}
    # and every key a grant holds names a row that exists
    assert SpeedGrant.objects.filter(upgrade_request__isnull=False).count() == 1
    assert not (
        SpeedGrant.objects.filter(upgrade_request__isnull=False)
        .exclude(upgrade_request_id__in=UpgradeRequest.objects.values("pk"))
        .exists()
    )
    assert not (
        SpeedGrant.objects.filter(responded_by__isnull=False)
        .exclude(responded_by_id__in=User.objects.values("pk"))
        .exists()
    )
    assert SpeedGrant.objects.get(responded_by=answering).subscription_id == other.pk
    # nor a line, which the admin does not offer to delete at all (it is cancelled)
    with pytest.raises(ProtectedError) as line_kept:
        Subscription.objects.get(pk=line.pk).delete()
    assert {type(row) for row in line_kept.value.protected_objects} >= {SpeedGrant}
    for key in ("subscription", "blanket_upgrade"):
        assert not SpeedGrant._meta.get_field(key).db_constraint  # what this test is for
    assert not (
        SpeedGrant.objects.exclude(subscription_id__in=Subscription.objects.values("pk"))
        .union(
            SpeedGrant.objects.filter(blanket_upgrade__isnull=False).exclude(
                blanket_upgrade_id__in=BlanketUpgrade.objects.values("pk")
            )
        )
        .exists()
    )


def test_staff_cannot_delete_a_line_in_the_admin(operator, client):
    """A line is cancelled, never deleted: its grants and audit name it without a
    database key (SpeedGrant, ProvisioningChange)."""
    (line,) = make_lines(1)
    client.force_login(operator)
    change_url = reverse("admin:subscriptions_subscription_change", args=[line.pk])
    listed = client.get(reverse("admin:subscriptions_subscription_changelist")).text
    assert f'href="{change_url}"' in listed
    page = client.get(change_url).text
    assert "/delete/" not in page and 'value="delete_selected"' not in listed

    assert (
        client.post(f"{change_url[: -len('change/')]}delete/", {"post": "yes"}).status_code == 403
    )
    assert Subscription.objects.filter(pk=line.pk).exists()


def grants_by_state(blanket) -> dict[str, int]:
    column = {"pending": "pending", "active": "confirmed", "declined": "declined"}
    column |= {"reverted": "reverted", "ended": "ended"}
    counts = dict.fromkeys(column.values(), 0)
    for state, count in blanket.grants.values_list("state").annotate(n=Count("pk")).order_by():
        counts[column[state]] = count
    return counts


def test_the_disaster_pages_counts_follow_every_move_of_the_grants(operator, client):
    # given Saitama (6 lines) and Kochi (3 lines); a customer who will answer in Saitama
    user = UserFactory()
    saitama_lines = make_lines(6, prefecture="11", customer=user.customer)
    make_lines(3, prefecture="39")
    client.force_login(operator)

    def shown(blanket) -> dict[str, int]:
        progress = client.get(reverse("upgrades:progress", args=[blanket.pk])).json()
        return {state: progress[state] for state in grants_by_state(blanket)} | {
            "total": progress["total"]
        }

    def assert_pages_match(*blankets):
        for blanket in blankets:
            expected = grants_by_state(blanket)
            assert shown(blanket) == expected | {"total": sum(expected.values())}, blanket

    # when Saitama is declared, then nationwide over it
    saitama = declare(operator, key="saitama", prefectures=["11"], chunk_size=2)
    nationwide = declare(operator, key="nationwide", now=NOW + timedelta(hours=1))
    assert_pages_match(saitama, nationwide)
    assert shown(saitama)["pending"] == 6 and shown(nationwide)["pending"] == 3

    # when the customer keeps one line and declines another
    for line, keep in ((saitama_lines[0], True), (saitama_lines[1], False)):
        respond_to_grants(
            grants=saitama.grants.filter(subscription=line),
            keep=keep,
            by=user,
            channel=Channel.PORTAL,
            now=NOW + timedelta(hours=2),
        )
    assert_pages_match(saitama, nationwide)

    # when Saitama's disaster ends: its grants end, nationwide takes its lines over
    end_disaster(disaster=saitama.disaster, operator=operator, now=NOW + timedelta(hours=3))
    end_blanket_grants(blanket_id=saitama.pk, now=NOW + timedelta(hours=3), chunk_size=2)
    assert_pages_match(saitama, nationwide)
    assert shown(saitama)["ended"] == 5 and shown(nationwide)["pending"] == 8

    # when nothing more is answered before the nationwide deadline
    nationwide.refresh_from_db()
    revert_expired_grants(now=nationwide.deadline, chunk_size=2)
    assert_pages_match(saitama, nationwide)
    assert shown(nationwide) == {
        "pending": 0,
        "confirmed": 0,
        "declined": 0,
        "reverted": 8,
        "ended": 0,
        "total": 8,
    }


def test_the_progress_reads_a_few_tally_rows_whatever_the_number_of_grants(
    operator, client, django_assert_max_num_queries
):
    make_lines(40)
    blanket = declare(operator, key="nationwide", chunk_size=7)
    client.force_login(operator)

    with django_assert_max_num_queries(12) as read:
        progress = client.get(reverse("upgrades:progress", args=[blanket.pk])).json()

    assert (progress["total"], progress["pending"], progress["caught_up"]) == (40, 40, 0)
    counts = [q["sql"] for q in read.captured_queries if "COUNT(" in q["sql"].upper()]
    # the one count left is of the lines waiting for the network, not of the grants
    assert len(counts) == 1, counts
    assert counts[0].split(" WHERE ")[0].endswith('FROM "subscriptions_linespeed"')


def test_every_line_the_portal_makes_has_a_speed_row_the_declaration_reaches(operator, client):
    """The speed lives in its own row (LineSpeed): a line added by staff in the admin and
    lines made in bulk each get one, and a declaration upgrades them on the network."""
    from tests.factories import PlanFactory, SiteFactory
    from tests.upgrades.conftest import form_data, post_forms
    from upgrades.provisioning import RecordingBackend
    from upgrades.services.provisioning import reconcile_speeds

    bulk = make_lines(4)
    site, plan = SiteFactory(prefecture="11"), PlanFactory()
    client.force_login(operator)
    listed = client.get(reverse("admin:subscriptions_subscription_changelist")).text
    add = reverse("admin:subscriptions_subscription_add")
    assert f'href="{add}"' in listed
    page = client.get(add).text
    (form,) = [f for f in post_forms(page) if "contract_number" in dict(f["fields"])]
    saved = client.post(
        add,
        form_data(
            form["fields"],
            contract_number="K-ADMIN-1",
            site=str(site.pk),
            plan=str(plan.pk),
            service_start="2024-04-01",
            status="active",
        ),
    )
    assert saved.status_code == 302, saved.text
    added = Subscription.objects.get(contract_number="K-ADMIN-1")
    lines = [*bulk, added]
    assert {line.pk for line in Subscription.objects.all()} == {line.pk for line in lines}

    declare(operator, key="all", chunk_size=2)

    class Network(RecordingBackend):
        told: set[str] = set()

        def apply(self, changes):
            self.told |= {change.line for change in changes}

    network = Network()
    reconcile_speeds(backend=network, now=NOW)

    assert network.told == {line.contract_number for line in lines}
    for line in lines:
        line.refresh_from_db()
        assert (line.speed.desired_upgraded, line.speed.applied_upgraded) == (True, True)


def waiting_counted_as_they_are() -> None:

    assert OutOfSyncTally.objects.total() == LineSpeed.objects.out_of_sync().count()


def test_the_lines_waiting_for_the_network_are_counted_by_every_move(operator):
    """The tally of lines out of sync follows declarations, answers, requests, reverts
    and the network, also when a line's wanted speed changes while it is being pushed."""
    from upgrades.provisioning import RecordingBackend
    from upgrades.services import provisioning
    from upgrades.services.provisioning import reconcile_speeds

    lines = make_lines(12)
    customer = lines[0].site.customer
    user = UserFactory(customer=customer)
    declare(operator, key="one", prefectures=["11"], chunk_size=5)
    waiting_counted_as_they_are()

    reconcile_speeds(backend=RecordingBackend(), now=NOW, batch_size=4, max_batches=1)
    waiting_counted_as_they_are()

    # A line declined while its change is with the network: pushed upgraded, wanted normal.
    claim = provisioning._claim_batch
    declined = []

    def claim_then_decline(**kwargs):
        rows = claim(**kwargs)
        if rows and not declined:
            grant = SpeedGrant.objects.get(subscription_id=rows[0]["subscription_id"])
            respond_to_grants(
                grants=SpeedGrant.objects.filter(pk=grant.pk),
                keep=False,
                by=user,
                channel=Channel.PORTAL,
                now=NOW,
            )
            declined.append(grant)
        return rows

    provisioning._claim_batch = claim_then_decline
    try:
        reconcile_speeds(backend=RecordingBackend(), now=NOW, batch_size=4, max_batches=1)
    finally:
        provisioning._claim_batch = claim
    assert declined
    waiting_counted_as_they_are()

    request = request_upgrade(
        customer=customer, sites=[lines[-1].site], reason="disaster", channel="portal", now=NOW
    )
    approve_upgrade_request(upgrade_request=request, by=SupportUserFactory(), now=NOW)
    waiting_counted_as_they_are()

    revert_expired_grants(now=NOW + timedelta(days=30), chunk_size=5)
    waiting_counted_as_they_are()
    reconcile_speeds(backend=RecordingBackend(), now=NOW + timedelta(days=30))
    waiting_counted_as_they_are()
    from subscriptions.models import OutOfSyncTally

    assert OutOfSyncTally.objects.total() == 0


def test_the_disaster_page_estimates_caught_up_while_too_many_lines_wait(
    operator, client, settings
):
    from upgrades.provisioning import RecordingBackend
    from upgrades.services.provisioning import reconcile_speeds

    settings.PROGRESS_EXACT_UP_TO = 10
    make_lines(30)
    blanket = declare(operator, key="many", chunk_size=7)
    client.force_login(operator)
    dashboard = client.get(reverse("operator-dashboard")).text
    page_url = reverse("upgrades:disaster", args=[blanket.pk])
    assert f'href="{page_url}"' in dashboard

    page = client.get(page_url).text
    progress = client.get(reverse("upgrades:progress", args=[blanket.pk])).json()
    assert (progress["caught_up"], progress["caught_up_estimated"]) == (0, True)
    assert progress["caught_up_about"] == "約"  # the operator's pages are in Japanese first
    assert 'data-count="caught_up_about">約</span> <span data-count="caught_up">0<' in page

    reconcile_speeds(backend=RecordingBackend(), now=NOW, batch_size=8, max_batches=3)
    progress = client.get(reverse("upgrades:progress", args=[blanket.pk])).json()
    # 6 lines wait: counted exactly
    assert (progress["caught_up"], progress["caught_up_estimated"]) == (24, False)
    assert progress["caught_up_about"] == ""

    reconcile_speeds(backend=RecordingBackend(), now=NOW)
    page = client.get(page_url).text
    assert 'data-count="caught_up_about"></span> <span data-count="caught_up">30<' in page


def test_lines_made_in_bulk_with_conflicts_ignored_still_get_their_speed_rows():
    (first,) = make_lines(1)
    like_first = {
        "site": first.site,
        "plan": first.plan,
        "service_start": first.service_start,
        "term_end": first.term_end,
    }
    Subscription.objects.bulk_create(
        [
            Subscription(contract_number=first.contract_number, **like_first),
            Subscription(contract_number="K-NEW", **like_first),
        ],
        ignore_conflicts=True,
    )

    assert Subscription.objects.count() == 2
    assert set(LineSpeed.objects.values_list("subscription__contract_number", flat=True)) == {
        first.contract_number,
        "K-NEW",
    }


def test_arrays_in_their_text_form_reach_postgresql_value_for_value():
    if connection.vendor != "postgresql":
        pytest.skip("the text form is PostgreSQL's array syntax")
    texts = ["", '"', "\\", '\\"', "NULL", "{a,b}", " 台風 ", "a,b", "NULL"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::varchar[], %s::bigint[], %s::boolean[], %s::bigint[]",
            [
                text_array(texts),
                int_array([0, -1, 2**40]),
                bool_array([True, False]),
                int_array([]),
            ],
        )
        assert cursor.fetchone() == (texts, [0, -1, 2**40], [True, False], [])
    with pytest.raises(KeyError):
        bool_array([True, None])
