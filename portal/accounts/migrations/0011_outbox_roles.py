"""Data migration: support and operators see the outbox (and retry failed e-mails)."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "support": ["support.view_outboundemail"],
    "operator": ["support.view_outboundemail"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_canned_reply_roles"),
        ("support", "0004_outbox"),
    ]

    operations = [migrations.RunPython(add, remove)]
