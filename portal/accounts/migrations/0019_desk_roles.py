"""Data migration: the roles keep their inquiry and canned-reply permissions now that
those models are the desk's (desk 0001 moved the content types; this grants them on a
database where the roles were set up afresh)."""

from django.db import migrations

from portal.accounts.roles import grant, revoke

INQUIRIES = [
    "desk.view_inquiry",
    "desk.add_inquiry",
    "desk.change_inquiry",
    "desk.view_inquirymessage",
    "desk.add_inquirymessage",
    "desk.change_inquirymessage",
]
CANNED_REPLIES = [
    "desk.view_cannedreply",
    "desk.add_cannedreply",
    "desk.change_cannedreply",
    "desk.delete_cannedreply",
]
ROLES = {"support": INQUIRIES + CANNED_REPLIES, "operator": INQUIRIES + CANNED_REPLIES}


def add(apps, schema_editor):
    grant(apps, ROLES)


def remove(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0018_second_factor_roles"),
        ("desk", "0002_desk_contacts"),
    ]

    operations = [migrations.RunPython(add, remove)]
