"""Granting permissions to the role groups, for data migrations (historical models only)."""

from django.contrib.auth.management import create_permissions


def grant(apps, roles: dict[str, list[str]]) -> None:
    """Give each role group its ``app_label.codename`` permissions (created if needed)."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in roles.items():
        group = Group.objects.get(name=role)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, roles: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in roles.items():
        group = Group.objects.get(name=role)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
