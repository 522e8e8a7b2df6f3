"""Data migration: the E.164 form of the phones saved before it was kept."""

from django.db import migrations

from subscriptions.phones import to_e164

BATCH = 2000


def fill(apps, schema_editor):
    for model_name, raw, e164 in (
        ("Customer", "phone", "phone_e164"),
        ("Site", "contact_phone", "contact_phone_e164"),
    ):
        model = apps.get_model("subscriptions", model_name)
        rows = []
        for row in model.objects.exclude(**{raw: ""}).only("pk", raw).iterator(chunk_size=BATCH):
            setattr(row, e164, to_e164(getattr(row, raw)) or "")
            rows.append(row)
        model.objects.bulk_update(rows, [e164], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0009_phones_e164")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
