"""Data migration: support staff and operators see a contact's history and add internal
notes (support.ContactEvent rows are written by services, never edited or deleted)."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

CONTACT_EVENTS = ["support.view_contactevent", "support.add_contactevent"]
ROLES = {"support": CONTACT_EVENTS, "operator": CONTACT_EVENTS}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0019_desk_roles"),
        ("support", "0008_contact_events"),
    ]

    operations = [migrations.RunPython(add, remove)]
