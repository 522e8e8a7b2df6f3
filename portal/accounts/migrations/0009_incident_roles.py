"""Data migration: outages, readiness checks, damage reports and field visits for staff."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "incidents.view_outage",
    "incidents.view_checkin",
    "incidents.view_readinessreminder",
    "incidents.view_damagereport",
    "incidents.change_damagereport",
    "incidents.view_damagephoto",
    "incidents.view_fieldvisit",
    "incidents.add_fieldvisit",
    "incidents.change_fieldvisit",
    "incidents.delete_fieldvisit",
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
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
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
        ("accounts", "0008_inquiry_roles"),
        ("incidents", "0005_damage_reports"),
    ]

    operations = [migrations.RunPython(add, remove)]
