"""The database cache's table (embedded mode: the API throttles count there). Nothing is
created when the cache is Redis (production)."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_heartbeat_recent")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
