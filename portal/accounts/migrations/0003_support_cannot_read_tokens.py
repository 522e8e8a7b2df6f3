"""Support and operators must not read customers' API tokens (a token is a login)."""

from django.db import migrations

ROLES = ["support", "operator"]


def remove(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="authtoken", codename="view_tokenproxy"
    ).first()
    if permission:
        for group in Group.objects.filter(name__in=ROLES):
            group.permissions.remove(permission)


def restore(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="authtoken", codename="view_tokenproxy"
    ).first()
    if permission is None:
        return  # DRF's token app is no longer installed (0016): nothing to give back
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles")]

    operations = [migrations.RunPython(remove, restore)]
