"""Data migration: support and operators see the notices told to customers."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "support": ["upgrades.view_customernotice"],
    "operator": ["upgrades.view_customernotice"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_outbox_roles"),
        ("upgrades", "0007_customer_notices"),
    ]

    operations = [migrations.RunPython(add, remove)]
