"""Data migration: the three roles as groups with their permissions.

The lists are frozen here, as a migration must be; a later migration that changes a
role adds or removes permissions itself.

Support once also had DRF's "view token" permission (taken away again by 0003); DRF's
token app is gone since the API moved to django-rest-knox (0016), so this migration no
longer names it nor depends on it: a fresh database could not resolve either.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "accounts.view_user",
    "subscriptions.view_customer",
    "subscriptions.change_customer",
    "subscriptions.view_site",
    "subscriptions.change_site",
    "subscriptions.view_subscription",
    "subscriptions.view_plan",
    "portal.view_heartbeat",
]
ROLES = {
    "customer": ["accounts.access_customer_portal"],
    "support": SUPPORT,
    # Operators do everything support does, and run the service.
    "operator": [
        *SUPPORT,
        "accounts.access_operator_dashboard",
        "subscriptions.add_customer",
        "subscriptions.add_site",
        "subscriptions.add_subscription",
        "subscriptions.change_subscription",
        "subscriptions.add_plan",
        "subscriptions.change_plan",
    ],
}


def create_roles(apps, schema_editor):
    # Django creates permissions after the last migration (post_migrate); on a fresh
    # database they must exist now for the groups to refer to them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("portal", "0001_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
