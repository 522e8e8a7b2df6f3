"""A grant's state moves without new index entries (a HOT update on PostgreSQL).

The revert of a nationwide disaster moves a million grants from pending to reverted. With
the state in the (line, state) index each move wrote a new entry in all three of the
grant's indexes; the index now names the line only (a line has a handful of grants, read
with it), and half of each page is left free so the new version of the row stays on its
page.

On PostgreSQL the new index is built and the old one dropped CONCURRENTLY (outside a
transaction): on a table of millions of grants a plain CREATE INDEX would hold up every
answer and declaration while it reads them all. The fillfactor applies to the pages
written from now on (every new disaster's grants); the grants already there keep their
full pages until the table is rewritten (VACUUM FULL or pg_repack), if ever wanted.
"""

from django.db import migrations, models

TABLE = "upgrades_speedgrant"


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def index_the_line_only(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX{how} IF NOT EXISTS upg_grant_sub_idx ON {TABLE} (subscription_id)"
    )
    schema_editor.execute(f"DROP INDEX{how} IF EXISTS upg_grant_sub_state_idx")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")


def index_the_state_again(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX{how} IF NOT EXISTS upg_grant_sub_state_idx"
        f" ON {TABLE} (subscription_id, state)"
    )
    schema_editor.execute(f"DROP INDEX{how} IF EXISTS upg_grant_sub_idx")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("upgrades", "0018_hot_rows_without_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="speedgrant", name="upg_grant_sub_state_idx"),
                migrations.AddIndex(
                    model_name="speedgrant",
                    index=models.Index(fields=["subscription"], name="upg_grant_sub_idx"),
                ),
            ],
            database_operations=[
                migrations.RunPython(index_the_line_only, index_the_state_again),
            ],
        ),
    ]
