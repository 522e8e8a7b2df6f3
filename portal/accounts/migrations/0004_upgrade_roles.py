"""Data migration: the upgrade queues for support and operators."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "upgrades.view_upgraderequest",
    "upgrades.add_upgraderequest",
    "upgrades.change_upgraderequest",
    "upgrades.view_upgraderequestevent",
    "upgrades.view_speedgrant",
    "upgrades.change_speedgrant",
    "upgrades.view_blanketupgrade",
    "upgrades.view_blanketupgradeevent",
    "upgrades.view_provisioningchange",
    "upgrades.view_notification",
    "incidents.view_disaster",
]
ROLES = {"support": SUPPORT, "operator": SUPPORT}


def add(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in ROLES.items():
        group = Group.objects.get(name=role)
        for permission in permissions:
            app_label, codename = permission.split(".")
            # filter, not get: a model deleted since (upgrades.Notification, replaced by
            # CustomerNotice in 0012) has no permission when tests replay this on today's
            # models.
            group.permissions.add(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


def remove(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in ROLES.items():
        group = Group.objects.get(name=role)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_support_cannot_read_tokens"),
        ("upgrades", "0001_initial"),
        ("incidents", "0001_initial"),
    ]

    operations = [migrations.RunPython(add, remove)]
