"""Data migration: the E.164 form of the phones saved before it was kept."""

from django.db import migrations

from subscriptions.phones import fill_e164


def fill(apps, schema_editor):
    fill_e164(apps.get_model("subscriptions", "Customer"), "phone", "phone_e164")
    fill_e164(apps.get_model("subscriptions", "Site"), "contact_phone", "contact_phone_e164")


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0009_phones_e164")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
