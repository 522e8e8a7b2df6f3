"""Data migration: canned replies for support and operators."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "support.view_cannedreply",
    "support.add_cannedreply",
    "support.change_cannedreply",
    "support.delete_cannedreply",
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
        ("accounts", "0009_incident_roles"),
        ("support", "0003_canned_replies"),
    ]

    operations = [migrations.RunPython(add, remove)]
