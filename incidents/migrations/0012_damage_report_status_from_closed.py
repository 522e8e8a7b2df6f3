"""Data migration: damage reports closed before they had a status are closed."""

from django.db import migrations


def close(apps, schema_editor):
    DamageReport = apps.get_model("incidents", "DamageReport")
    DamageReport.objects.filter(closed_at__isnull=False).update(status="closed")


def reopen(apps, schema_editor):
    DamageReport = apps.get_model("incidents", "DamageReport")
    DamageReport.objects.update(status="new")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0011_desk_contacts")]

    operations = [migrations.RunPython(close, reopen)]
