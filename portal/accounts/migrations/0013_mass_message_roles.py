"""Data migration: operators and support see the record of mass messages in the admin."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "support": ["incidents.view_massmessage"],
    "operator": ["incidents.view_massmessage"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_customer_notice_roles"),
        ("incidents", "0007_mass_messages"),
    ]

    operations = [migrations.RunPython(add, remove)]
