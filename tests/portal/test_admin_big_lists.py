"""The admin lists that grow with the lines (bench/pages.py times them at 1,000,000):
the same queries whatever their size, and a search or filter typed as staff type it
still finds the row through the indexed lookups (support.admin.IndexedSearchMixin)."""

import pytest
from django.contrib.admin.sites import site as admin_site
from django.db import connection
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Site, Subscription
from support.admin import EstimatedCountPaginator, IndexedSearchMixin
from support.indexes import UpperPatternIndex
from support.models import OutboundEmail
from tests.factories import (
    CustomerFactory,
    CustomerNoticeFactory,
    ProvisioningChangeFactory,
    SiteFactory,
    SpeedGrantFactory,
    SubscriptionFactory,
    UpgradeRequestFactory,
    UserFactory,
)
from upgrades.models import CustomerNotice, SpeedGrant

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    # Every list below, as the desk's lead sees it (users included).
    user = django_user_model.objects.create_superuser("lead@bcp.example", "x")
    client.force_login(user)
    return user


def grants(n):
    SpeedGrantFactory.create_batch(n)


def notices(n):
    # Both subjects: a disaster's notices and a request's decision (its customer shown).
    for i in range(n):
        if i % 2:
            CustomerNoticeFactory()
        else:
            request = UpgradeRequestFactory()
            CustomerNoticeFactory(
                blanket_upgrade=None,
                upgrade_request=request,
                customer=request.customer,
                kind=CustomerNotice.Kind.REQUEST_APPROVED,
            )


def emails(n):
    now = timezone.now()
    start = OutboundEmail.objects.count()
    OutboundEmail.objects.bulk_create(
        OutboundEmail(
            key=f"test:{start + i}",
            to=["a@example.com"],
            subject=f"件名 {i}",
            created_at=now,
            send_after=now,
        )
        for i in range(n)
    )


BIG_LISTS = {
    "subscriptions_subscription": (SubscriptionFactory.create_batch, "site__prefecture__exact=11"),
    "upgrades_speedgrant": (grants, "state__exact=pending"),
    "upgrades_provisioningchange": (ProvisioningChangeFactory.create_batch, "upgraded__exact=1"),
    "upgrades_customernotice": (notices, "kind__exact=request_approved"),
    "support_outboundemail": (emails, "status__exact=queued"),
    "subscriptions_customer": (CustomerFactory.create_batch, "kind__exact=business"),
    "subscriptions_site": (SiteFactory.create_batch, "prefecture__exact=11"),
    "accounts_user": (UserFactory.create_batch, "is_staff__exact=0"),
}


def queries_of(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("changelist", BIG_LISTS)
@pytest.mark.parametrize("filtered", [False, True], ids=["plain", "filtered"])
def test_a_big_list_runs_the_same_queries_for_5_rows_and_for_50(
    client, staff, changelist, filtered
):
    make, lookup = BIG_LISTS[changelist]
    url = reverse(f"admin:{changelist}_changelist") + (f"?{lookup}" if filtered else "")
    make(5)
    client.get(url)  # the session and the caches, once

    with_5 = queries_of(client, url)
    make(45)
    with_50 = queries_of(client, url)

    assert with_50 == with_5


def test_every_big_list_searches_indexed_columns_only():
    for changelist in BIG_LISTS:
        app_label, model_name = changelist.split("_", 1)
        model_admin = next(
            admin
            for model, admin in admin_site._registry.items()
            if (model._meta.app_label, model._meta.model_name) == (app_label, model_name)
        )
        assert isinstance(model_admin, IndexedSearchMixin), changelist
        assert model_admin.paginator is EstimatedCountPaginator, changelist
        assert model_admin.search_help_text, changelist
        assert all(field[0] in "=^" for field in model_admin.search_fields), changelist


def listed(client, changelist, query) -> list[str]:
    response = client.get(reverse(f"admin:{changelist}_changelist"), query)
    assert response.status_code == 200
    return [str(obj.pk) for obj in response.context["cl"].result_list]


def test_staff_find_a_line_by_the_start_of_its_contract_number_in_any_case(client, staff):
    line = SubscriptionFactory(contract_number="BCP-0012345")
    SubscriptionFactory(contract_number="BCP-0099999")

    found = listed(client, "subscriptions_subscription", {"q": " bcp-00123 "})

    assert found == [str(line.pk)]


def test_a_search_that_finds_nothing_shows_an_empty_list(client, staff):
    SubscriptionFactory(contract_number="BCP-0012345")

    assert listed(client, "subscriptions_subscription", {"q": "BCP-999"}) == []


def test_staff_find_a_line_by_its_customer_name_or_code_or_site_name(client, staff):
    customer = CustomerFactory(code="K-777", name="秩父市役所")
    line = SubscriptionFactory(site=SiteFactory(customer=customer, name="本庁舎"))
    SubscriptionFactory()

    for typed in ["秩父市", "k-777", "本庁"]:
        assert listed(client, "subscriptions_subscription", {"q": typed}) == [str(line.pk)]


def test_staff_find_a_grant_and_its_audit_by_the_line(client, staff):
    grant = SpeedGrantFactory(subscription__contract_number="BCP-0424242")
    SpeedGrantFactory()
    change = ProvisioningChangeFactory(subscription=grant.subscription)
    ProvisioningChangeFactory()

    assert listed(client, "upgrades_speedgrant", {"q": "BCP-0424242"}) == [str(grant.pk)]
    assert listed(client, "upgrades_provisioningchange", {"q": "bcp-042"}) == [str(change.pk)]


def test_staff_filter_grants_by_state_and_lines_by_prefecture(client, staff):
    pending = SpeedGrantFactory()
    SpeedGrantFactory(state=SpeedGrant.State.ACTIVE)
    tokyo = SubscriptionFactory(site__prefecture="13")
    SubscriptionFactory(site__prefecture="11")

    assert listed(client, "upgrades_speedgrant", {"state__exact": "pending"}) == [str(pending.pk)]
    assert listed(client, "subscriptions_subscription", {"site__prefecture__exact": "13"}) == [
        str(tokyo.pk)
    ]


def test_a_notice_link_finds_its_email_and_a_customer_finds_its_notices(client, staff):
    notice = CustomerNoticeFactory(customer__code="K-31")
    CustomerNoticeFactory()
    emails(3)

    assert listed(client, "upgrades_customernotice", {"q": "K-31"}) == [str(notice.pk)]
    assert listed(client, "support_outboundemail", {"q": "test:1"}) == [
        str(OutboundEmail.objects.get(key="test:1").pk)
    ]


def test_the_pickers_find_a_customer_and_a_site_by_the_start_of_the_name(client, staff):
    site = SiteFactory(name="第二庁舎", customer__name="長瀞町")

    def picked(model_name, field_name, term):
        response = client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": "subscriptions",
                "model_name": model_name,
                "field_name": field_name,
                "term": term,
            },
        )
        assert response.status_code == 200
        return [result["id"] for result in response.json()["results"]]

    assert picked("site", "customer", "長瀞") == [str(site.customer_id)]
    assert picked("subscription", "site", "第二") == [str(site.pk)]


def test_a_search_field_on_an_unindexed_column_is_refused(rf, staff):
    class Careless(IndexedSearchMixin):
        model = Site
        search_fields = ["address"]

        def get_search_fields(self, request):
            return self.search_fields

    with pytest.raises(Exception, match="must be '=field' or '\\^field'"):
        Careless().get_search_results(rf.get("/"), Site.objects.all(), "秩父")


@pytest.mark.postgres
def test_a_big_list_shows_an_estimate_marked_about(client, staff, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's")
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_UP_TO", 3)
    SubscriptionFactory.create_batch(5)

    response = client.get(reverse("admin:subscriptions_subscription_changelist"))

    assert response.context["cl"].paginator.estimated
    assert "約" in response.content.decode()  # "about", in the admin's Japanese
    assert len(response.context["cl"].result_list) == 5


def test_a_small_list_shows_its_exact_count(client, staff):
    SubscriptionFactory.create_batch(3)

    response = client.get(reverse("admin:subscriptions_subscription_changelist"))

    assert not response.context["cl"].paginator.estimated
    assert response.context["cl"].result_count == Subscription.objects.count() == 3


def test_staff_find_a_caller_by_the_phone_number_in_any_form(client, staff):
    # A town hall calls: staff type the number as they hear it or as the phone shows it.
    site = SiteFactory(contact_phone="0494-22-2211", customer__phone="0494-25-5200")
    line = SubscriptionFactory(site=site)
    grant = SpeedGrantFactory(subscription=line)
    request = UpgradeRequestFactory(customer=site.customer, sites=[site])
    SubscriptionFactory(site__contact_phone="03-6279-0933")
    SpeedGrantFactory()
    UpgradeRequestFactory()

    for typed in ["0494-22-2211", "0494222211", "+81 494 22 2211", "0494-25-5200"]:
        assert listed(client, "subscriptions_subscription", {"q": typed}) == [str(line.pk)]
        assert listed(client, "subscriptions_site", {"q": typed}) == [str(site.pk)]
        assert listed(client, "upgrades_speedgrant", {"q": typed}) == [str(grant.pk)]
        assert listed(client, "upgrades_upgraderequest", {"q": typed}) == [str(request.pk)]
    assert listed(client, "subscriptions_customer", {"q": "0494-25-5200"}) == [
        str(site.customer.pk)
    ]
    # the number a caller gave when the request was recorded by phone finds it too
    by_mobile = UpgradeRequestFactory(contact_phone="090-1234-5678")
    assert listed(client, "upgrades_upgraderequest", {"q": "+81 90 1234 5678"}) == [
        str(by_mobile.pk)
    ]
    # a number nobody has finds nothing, and text is still matched as text
    assert listed(client, "subscriptions_subscription", {"q": "0120-000-000"}) == []
    assert listed(client, "subscriptions_site", {"q": site.name}) == [str(site.pk)]


def test_a_phone_search_lists_every_line_of_a_big_customer(client, staff, monkeypatch):
    # Past FETCHED_UP_TO ids the list narrows by a subquery, never by a truncated list.
    monkeypatch.setattr(IndexedSearchMixin, "FETCHED_UP_TO", 3)
    site = SiteFactory(contact_phone="0494-22-2211")
    lines = SubscriptionFactory.create_batch(5, site=site)
    SubscriptionFactory()

    by_phone = listed(client, "subscriptions_subscription", {"q": "0494-22-2211"})
    by_name = listed(client, "subscriptions_subscription", {"q": site.name})

    assert sorted(by_phone) == sorted(by_name) == sorted(str(line.pk) for line in lines)


def _column_of(model, path: str):
    """The model and field a search path (``site__customer__name``) ends on."""
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    return model, model._meta.get_field(name)


def _indexed(model, field, *, upper: bool) -> bool:
    if not upper and (field.primary_key or field.unique or field.db_index):
        return True
    for index in model._meta.indexes:
        if upper and isinstance(index, UpperPatternIndex):
            (expression,) = index.expressions
            column = expression.source_expressions[0].name
            if isinstance(expression, Upper) and column == field.name:
                return True
        if not upper and index.fields and index.fields[0] in (field.name, field.attname):
            return True
    return False


def test_every_indexed_search_field_has_its_index():
    # Each search field of every admin with the indexed search names a column with the
    # index that answers it: UPPER(column) for the admin's case-insensitive matches, a
    # plain index for the E.164 phone columns matched exactly.
    checked = 0
    for model, model_admin in admin_site._registry.items():
        if not isinstance(model_admin, IndexedSearchMixin):
            continue
        for search_field in model_admin.search_fields:
            owner, field = _column_of(model, search_field[1:])
            upper = search_field[0] == "^" or not (field.unique or field.primary_key)
            assert _indexed(owner, field, upper=upper), (model.__name__, search_field)
            checked += 1
        for path in getattr(model_admin, "phone_search_fields", ()):
            owner, field = _column_of(model, path)
            assert _indexed(owner, field, upper=False), (model.__name__, path)
            checked += 1
    assert checked > 20
