from django.contrib import admin

from support.models import AfterHoursAlert, OnCallShift


@admin.register(OnCallShift)
class OnCallShiftAdmin(admin.ModelAdmin):
    list_display = ["staff", "starts_at", "ends_at"]
    list_select_related = ["staff"]
    autocomplete_fields = ["staff"]
    date_hierarchy = "starts_at"


@admin.register(AfterHoursAlert)
class AfterHoursAlertAdmin(admin.ModelAdmin):
    list_display = ["received_at", "contact_kind", "summary", "sent_at", "nobody_on_call"]
    list_filter = ["contact_kind", "nobody_on_call"]
    search_fields = ["summary", "contact_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
