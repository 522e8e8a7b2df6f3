"""DRF's token table goes: API tokens are django-rest-knox's now (0015).

Its keys never expired and were stored in clear, so they are not carried over: API
clients log in again once (README, "API"). The table is dropped only if it is there (a
database made after the change never had it); going back does not bring the keys back.
Its leftover content type and permissions: ``manage.py remove_stale_contenttypes``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0015_api_tokens")]

    operations = [
        migrations.RunSQL(
            "DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop
        ),
    ]
