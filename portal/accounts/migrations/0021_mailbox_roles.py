"""Data migration: support staff see the e-mails the support mailbox received (those that
could not be read above all) and may have one processed again; so may operators."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

MAILBOX = [
    "desk.view_inboundemail",
    "desk.change_inboundemail",
    "desk.view_inquiryattachment",
]
# Operators hold every support permission (tests/portal/test_accounts.py).
ROLES = {"support": MAILBOX, "operator": MAILBOX}


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
