from django.contrib import admin

from incidents.models import Disaster, Outage


@admin.register(Disaster)
class DisasterAdmin(admin.ModelAdmin):
    """Read-only: operators declare and end disasters on the dashboard, where the
    blanket upgrade starts and stops with them."""

    list_display = ["title", "nationwide", "prefectures", "declared_at", "declared_by", "ended_at"]
    list_filter = ["nationwide"]
    search_fields = ["title"]
    list_select_related = ["declared_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    """Read-only: operators declare and end outages on the dashboard."""

    list_display = ["started_at", "ended_at", "cause", "declared_by"]
    list_filter = ["cause"]
    list_select_related = ["declared_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
