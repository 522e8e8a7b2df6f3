"""Data migration: operators may reset a colleague's second factor; support may not."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "operator": ["accounts.reset_second_factor", "accounts.view_secondfactorreset"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0017_second_factor_reset")]

    operations = [migrations.RunPython(add, remove)]
