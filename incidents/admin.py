from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from incidents.models import (
    DamagePhoto,
    DamageReport,
    Disaster,
    FieldVisit,
    MassMessage,
    Outage,
)
from incidents.services import assign_damage_reports
from support.admin import ReadOnlyAdmin, SafeActionsMixin
from support.models import Inquiry


@admin.register(Disaster)
class DisasterAdmin(ReadOnlyAdmin):
    """Read-only: operators declare and end disasters on the dashboard, where the
    blanket upgrade starts and stops with them."""

    list_display = ["title", "nationwide", "prefectures", "declared_at", "declared_by", "ended_at"]
    list_filter = ["nationwide"]
    search_fields = ["title"]
    list_select_related = ["declared_by"]


@admin.register(MassMessage)
class MassMessageAdmin(ReadOnlyAdmin):
    """Read-only: operators send mass messages from the dashboard; this is the record."""

    list_display = [
        "created_at",
        "subject_ja",
        "audience",
        "organisations",
        "addresses",
        "queued_organisations",
        "queued_at",
        "created_by",
    ]
    list_filter = ["audience"]
    search_fields = ["subject_ja", "body_ja"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"


@admin.register(Outage)
class OutageAdmin(ReadOnlyAdmin):
    """Read-only: operators declare and end outages on the dashboard."""

    list_display = ["started_at", "ended_at", "cause", "declared_by"]
    list_filter = ["cause"]
    list_select_related = ["declared_by"]
    readonly_fields = ["contacts_during"]

    @admin.display(description=_("contacts received during the outage"))
    def contacts_during(self, obj: Outage) -> str:
        # Requests and damage reports point at the outage; inquiries (support sits below
        # incidents) are found by when they arrived.
        window = {"received_at__gte": obj.started_at}
        if obj.ended_at:
            window["received_at__lt"] = obj.ended_at
        return _(
            "%(requests)s upgrade requests, %(reports)s damage reports, %(inquiries)s inquiries"
        ) % {
            "requests": obj.upgrade_requests.count(),
            "reports": obj.damage_reports.count(),
            "inquiries": Inquiry.objects.filter(**window).count(),
        }


class FieldVisitInline(admin.TabularInline):
    model = FieldVisit
    fields = ["tentative_date", "technician", "status", "outcome"]
    extra = 0


class DamagePhotoInline(admin.TabularInline):
    model = DamagePhoto
    fields = ["link", "content_type", "size"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("photo"))
    def link(self, obj: DamagePhoto) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("incidents:damage-photo", args=[obj.pk]), obj.pk
        )


@admin.register(DamageReport)
class DamageReportAdmin(SafeActionsMixin, admin.ModelAdmin):
    """Staff plan field visits inline; the customer sees progress without any date."""

    list_display = ["pk", "received_at", "site", "priority", "after_hours", "assignee", "closed_at"]
    list_filter = [
        "priority",
        "after_hours",
        ("closed_at", admin.EmptyFieldListFilter),
        "site__prefecture",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["site", "assignee"]
    search_fields = ["site__name", "site__customer__name", "site__contact_phone", "description"]
    readonly_fields = [
        "site",
        "description",
        "channel",
        "received_at",
        "after_hours",
        "reported_by",
        "outage",
    ]
    fields = [*readonly_fields, "assignee", "closed_at"]
    inlines = [DamagePhotoInline, FieldVisitInline]
    actions = ["assign_to_me"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        count = assign_damage_reports(reports=queryset, assignee=request.user)
        self.message_user(request, _("%(count)s report(s) assigned to you.") % {"count": count})
