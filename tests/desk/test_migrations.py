"""Moving inquiries from `support` to `desk` keeps every row and every permission."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("support", "0006_follow_up_backoff_hold"),
    ("accounts", "0018_second_factor_roles"),
    ("subscriptions", "0007_provisioning_backoff"),
    ("desk", None),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_inquiries_written_before_the_move_are_the_desks_after_it():
    # given: a database as it was before the desk app, with an inquiry in support
    old = _migrate(BEFORE)
    customer = old.get_model("subscriptions", "Customer").objects.create(
        name="旧顧客", code="C-OLD"
    )
    inquiry = old.get_model("support", "Inquiry").objects.create(
        customer=customer,
        subject="移行前の質問",
        channel="portal",
        received_at="2026-11-01T01:00:00Z",
    )
    old.get_model("support", "InquiryMessage").objects.create(
        inquiry=inquiry, body="本文", created_at="2026-11-01T01:00:00Z"
    )
    old.get_model("support", "CannedReply").objects.create(title="お礼", body="どうも")

    # when: every migration runs
    executor = MigrationExecutor(connection)
    new = _migrate(executor.loader.graph.leaf_nodes())

    # then: the same rows, now the desk's, and the roles keep their permissions
    moved = new.get_model("desk", "Inquiry").objects.get(pk=inquiry.pk)
    assert moved.subject == "移行前の質問"
    assert moved.status == "new"
    assert new.get_model("desk", "InquiryMessage").objects.get().body == "本文"
    assert new.get_model("desk", "CannedReply").objects.get().title == "お礼"
    support = new.get_model("auth", "Group").objects.get(name="support")
    granted = set(
        support.permissions.filter(content_type__app_label="desk").values_list(
            "codename", flat=True
        )
    )
    assert {"view_inquiry", "change_inquiry", "view_cannedreply"} <= granted
    assert (
        not new.get_model("contenttypes", "ContentType")
        .objects.filter(app_label="support", model="inquiry")
        .exists()
    )
