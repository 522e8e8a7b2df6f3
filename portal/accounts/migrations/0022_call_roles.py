"""Data migration: support and operators read the caller log and record callbacks, and
keep customer users' phone numbers (the numbers calls are matched by)."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

CALLS = ["desk.view_call", "desk.change_call", "desk.view_callevent"]
USER_PHONES = [
    "subscriptions.view_userphone",
    "subscriptions.add_userphone",
    "subscriptions.change_userphone",
    "subscriptions.delete_userphone",
]
ROLES = {"support": CALLS + USER_PHONES, "operator": CALLS + USER_PHONES}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_mailbox_roles"),
        ("desk", "0004_calls"),
        ("subscriptions", "0010_fill_phones_e164"),
    ]

    operations = [migrations.RunPython(add, remove)]
