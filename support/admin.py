from django.contrib import admin

from support.models import AfterHoursAlert, OnCallShift

MAX_ID = 2**63 - 1


class SafeActionsMixin:
    """Drops selected ids that cannot be database ids before an admin action runs them
    (an absurd number in a forged form would otherwise overflow the query: a 500)."""

    def response_action(self, request, queryset):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        if any(not s.isdigit() or not 0 < int(s) <= MAX_ID for s in selected):
            request.POST = request.POST.copy()
            request.POST.setlist(
                admin.helpers.ACTION_CHECKBOX_NAME,
                [s for s in selected if s.isdigit() and 0 < int(s) <= MAX_ID],
            )
        return super().response_action(request, queryset)


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
