"""Counts for the blanket upgrades declared before the tallies: each one's grants by
state, counted once into its first slot (the services keep them from now on)."""

from django.db import migrations
from django.db.models import Count, Q

COLUMNS = {
    "pending": "pending",
    "confirmed": "active",
    "declined": "declined",
    "reverted": "reverted",
    "ended": "ended",
}
SLOTS = 8


def fill(apps, schema_editor):
    BlanketUpgrade = apps.get_model("upgrades", "BlanketUpgrade")
    SpeedGrant = apps.get_model("upgrades", "SpeedGrant")
    Tally = apps.get_model("upgrades", "BlanketUpgradeTally")
    for blanket_id in BlanketUpgrade.objects.values_list("pk", flat=True).iterator():
        counts = SpeedGrant.objects.filter(blanket_upgrade_id=blanket_id).aggregate(
            **{column: Count("pk", filter=Q(state=state)) for column, state in COLUMNS.items()}
        )
        Tally.objects.bulk_create(
            [Tally(blanket_upgrade_id=blanket_id, slot=0, **counts)]
            + [Tally(blanket_upgrade_id=blanket_id, slot=n) for n in range(1, SLOTS)],
            ignore_conflicts=True,
        )


def empty(apps, schema_editor):
    apps.get_model("upgrades", "BlanketUpgradeTally").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("upgrades", "0014_blanket_upgrade_tallies")]

    operations = [migrations.RunPython(fill, empty)]
