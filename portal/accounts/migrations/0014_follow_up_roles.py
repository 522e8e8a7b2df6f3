"""Data migration: operators and support see the follow-ups waiting for a worker."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "support": ["support.view_followup"],
    "operator": ["support.view_followup"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0013_mass_message_roles"),
        ("support", "0005_follow_ups"),
    ]

    operations = [migrations.RunPython(add, remove)]
