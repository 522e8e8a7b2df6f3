"""Data migration: invoices and payments for support; offers for operators."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT = [
    "subscriptions.view_invoice",
    "subscriptions.change_invoice",
    "subscriptions.view_invoiceline",
    "subscriptions.view_payment",
    "subscriptions.view_quote",
    "subscriptions.view_extensionoffer",
    "subscriptions.view_renewalreminder",
]
ROLES = {
    "support": SUPPORT,
    # Operators publish offers.
    "operator": [
        *SUPPORT,
        "subscriptions.add_extensionoffer",
        "subscriptions.change_extensionoffer",
    ],
}


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
        ("accounts", "0005_customer_not_staff_message"),
        ("subscriptions", "0004_seed_extension_offer"),
    ]

    operations = [migrations.RunPython(add, remove)]
