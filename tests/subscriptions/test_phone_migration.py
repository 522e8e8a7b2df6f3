"""Phones saved before the E.164 columns existed are matched all the same."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_phones_get_their_e164_form():
    # given: customers and sites as they were before the E.164 columns
    old = _migrate([("subscriptions", "0008_labels")])
    customer = old.get_model("subscriptions", "Customer").objects.create(
        name="秩父市", code="C-OLD", phone="03-6279-0933"
    )
    old.get_model("subscriptions", "Site").objects.create(
        customer=customer,
        name="本庁舎",
        prefecture="11",
        address="秩父市熊木町8-15",
        contact_phone="+81 494-22-2211",
    )
    without_phone = old.get_model("subscriptions", "Customer").objects.create(
        name="電話なし", code="C-NONE"
    )

    # when: the migrations run
    new = _migrate([("subscriptions", "0010_fill_phones_e164")])

    # then
    customers = new.get_model("subscriptions", "Customer").objects
    assert customers.get(pk=customer.pk).phone_e164 == "+81362790933"
    assert customers.get(pk=without_phone.pk).phone_e164 == ""
    site = new.get_model("subscriptions", "Site").objects.get()
    assert site.contact_phone_e164 == "+81494222211"

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
