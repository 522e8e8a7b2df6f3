from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscriptions.models import Customer, Plan, Site, Subscription


class SiteInline(admin.TabularInline):
    model = Site
    fields = ["name", "prefecture", "address", "contact_phone"]
    extra = 0
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "phone", "email", "created_at"]
    list_filter = ["kind"]
    search_fields = ["code", "name", "phone", "email"]
    inlines = [SiteInline]
    show_full_result_count = False


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "prefecture", "address", "contact_phone"]
    list_filter = ["prefecture"]
    list_select_related = ["customer"]
    search_fields = ["name", "address", "contact_phone", "customer__name", "customer__code"]
    autocomplete_fields = ["customer"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # Moving a site to another organisation would hand it that site's contracts.
        return ["customer"] if obj else []


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "normal_kbps", "upgraded_kbps"]
    search_fields = ["name"]


class ExpiryYearFilter(admin.SimpleListFilter):
    title = _("term end year")
    parameter_name = "term_end_year"

    def lookups(self, request, model_admin):
        # A fixed range rather than a DISTINCT over a table that may hold a million rows.
        # Terms are five years, so the range runs from the oldest contracts to five years out.
        last = timezone.localdate().year + 6
        return [(str(year), str(year)) for year in range(2016, last)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(term_end__year=int(self.value()))
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "contract_number",
        "site",
        "customer",
        "prefecture",
        "plan",
        "service_start",
        "term_end",
        "status",
        "static_ip",
    ]
    list_filter = ["status", "plan", "static_ip", "site__prefecture", ExpiryYearFilter]
    list_select_related = ["site__customer", "plan"]
    search_fields = [
        "contract_number",
        "site__name",
        "site__contact_phone",
        "site__customer__name",
        "site__customer__code",
    ]
    autocomplete_fields = ["site"]
    readonly_fields = ["term_end", "created_at"]
    show_full_result_count = False

    @admin.display(description=_("customer"), ordering="site__customer__name")
    def customer(self, obj: Subscription) -> Customer:
        return obj.site.customer

    @admin.display(description=_("prefecture"), ordering="site__prefecture")
    def prefecture(self, obj: Subscription) -> str:
        return obj.site.get_prefecture_display()
