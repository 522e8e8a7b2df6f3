"""A grant's state moves without new index entries (a HOT update on PostgreSQL).

The revert of a nationwide disaster moves a million grants from pending to reverted. With
the state in the (line, state) index each move wrote a new entry in all three of the
grant's indexes; the index now names the line only (a line has a handful of grants, read
with it), and half of each page is left free so the new version of the row stays on its
page.
"""

from django.db import migrations, models


def leave_room_in_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE upgrades_speedgrant SET (fillfactor = 50)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE upgrades_speedgrant RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("upgrades", "0018_hot_rows_without_keys"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="speedgrant", name="upg_grant_sub_state_idx"),
        migrations.AddIndex(
            model_name="speedgrant",
            index=models.Index(fields=["subscription"], name="upg_grant_sub_idx"),
        ),
        migrations.RunPython(leave_room_in_pages, fill_pages),
    ]
