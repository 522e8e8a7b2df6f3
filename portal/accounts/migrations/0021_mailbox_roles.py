"""Data migration: support staff see the e-mails the support mailbox received (those that
could not be read above all) and may have one processed again; operators read them."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

ROLES = {
    "support": [
        "desk.view_inboundemail",
        "desk.change_inboundemail",
        "desk.view_inquiryattachment",
    ],
    "operator": ["desk.view_inboundemail", "desk.view_inquiryattachment"],
}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0020_contact_event_roles"),
        ("desk", "0003_mailbox_inbound_email_and_attachments"),
    ]

    operations = [migrations.RunPython(add, remove)]
