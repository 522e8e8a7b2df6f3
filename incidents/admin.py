from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from incidents.models import (
    DamagePhoto,
    DamageReport,
    Disaster,
    FieldVisit,
    IncidentContact,
    MassMessage,
    Outage,
)
from incidents.services import (
    DAMAGE_MERGE_TARGETS,
    close_damage_report,
    complete_field_visit,
    merge_damage_reports,
    plan_field_visit,
)
from subscriptions.admin import PhoneSearchMixin, customer_filter, customer_story_link
from support.admin import (
    ContactAdminMixin,
    EstimatedCountPaginator,
    MergeIntoActionMixin,
    PastTargetFilter,
    ReadOnlyAdmin,
    SafeActionsMixin,
    first_response,
)


def prefecture_list(obj: Disaster | MassMessage) -> str:
    """The prefectures in scope by name (the row keeps their JIS codes)."""
    return pgettext("list separator", ", ").join(map(str, obj.prefecture_names())) or "-"


@admin.register(Disaster)
class DisasterAdmin(ReadOnlyAdmin):
    """Read-only: operators declare and end disasters on the dashboard, where the
    blanket upgrade starts and stops with them."""

    list_display = ["title", "nationwide", "areas", "declared_at", "declared_by", "ended_at"]
    list_filter = ["nationwide"]
    search_fields = ["title"]
    list_select_related = ["declared_by"]
    # The one-time token of the declaring form: no one looks for it here.
    exclude = ["prefectures", "idempotency_key"]
    readonly_fields = ["areas"]

    @admin.display(description=_("prefectures"))
    def areas(self, obj: Disaster) -> str:
        return prefecture_list(obj)


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
    # The one-time token of the declaring form: no one looks for it here.
    exclude = ["prefectures", "idempotency_key"]
    readonly_fields = ["areas"]

    @admin.display(description=_("prefectures"))
    def areas(self, obj: MassMessage) -> str:
        return prefecture_list(obj)


@admin.register(Outage)
class OutageAdmin(ReadOnlyAdmin):
    """Read-only: operators declare and end outages on the dashboard."""

    list_display = ["started_at", "ended_at", "cause", "declared_by"]
    list_filter = ["cause"]
    list_select_related = ["declared_by"]
    readonly_fields = ["contacts_during"]

    @admin.display(description=_("contacts received during the outage"))
    def contacts_during(self, obj: Outage) -> str:
        # Every contact kind links to the outage it arrived in (IncidentContact). The
        # kinds above this app are found through the outage's own reverse relations,
        # never imported.
        counts = [
            _("%(count)s %(kind)s")
            % {
                "kind": relation.related_model._meta.verbose_name_plural,
                "count": relation.related_model.objects.filter(outage=obj).count(),
            }
            for relation in Outage._meta.related_objects
            if issubclass(relation.related_model, IncidentContact)
        ]
        return ", ".join(sorted(counts))


class FieldVisitForm(forms.ModelForm):
    """A visit starts as being arranged; then it is done or called off, and stays so."""

    class Meta:
        model = FieldVisit
        fields = ["tentative_date", "technician", "status", "outcome"]

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        before = self.instance.status if self.instance.pk else None
        if before is None and status != FieldVisit.Status.PLANNED:
            raise forms.ValidationError(
                _("Add the visit as being arranged first; mark it done once it has taken place.")
            )
        if before not in (None, FieldVisit.Status.PLANNED) and status != before:
            raise forms.ValidationError(_("A visit that is done or called off cannot change."))
        return status


class FieldVisitInline(admin.TabularInline):
    model = FieldVisit
    form = FieldVisitForm
    fields = ["tentative_date", "technician", "status", "outcome"]
    extra = 0
    # The customer may have been told about a visit: it is called off, never deleted.
    can_delete = False


class DamagePhotoInline(admin.TabularInline):
    model = DamagePhoto
    fields = ["link", "file_type", "size"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("photo"))
    def link(self, obj: DamagePhoto) -> str:
        if obj.pk is None:  # the empty form of the inline (a superuser may add)
            return ""
        return format_html(
            '<a href="{}">{}</a>', reverse("incidents:damage-photo", args=[obj.pk]), obj.pk
        )

    @admin.display(description=_("file type"))
    def file_type(self, obj: DamagePhoto) -> str:
        return {"image/jpeg": "JPEG", "image/png": "PNG"}.get(obj.content_type, obj.content_type)


@admin.register(DamageReport)
class DamageReportAdmin(
    PhoneSearchMixin, ContactAdminMixin, MergeIntoActionMixin, SafeActionsMixin, admin.ModelAdmin
):
    merge_service = staticmethod(merge_damage_reports)
    merge_customer_field = "site__customer"
    merge_target_statuses = DAMAGE_MERGE_TARGETS
    """Staff plan field visits inline; the customer sees progress without any date."""

    list_display = [
        "id",
        "received_at",
        "site",
        "priority",
        "after_hours",
        "assignee",
        "status",
        first_response,
    ]
    list_filter = [
        "status",
        PastTargetFilter,
        "priority",
        "after_hours",
        "site__prefecture",
        ("assignee", admin.RelatedOnlyFieldListFilter),
        customer_filter("site__customer"),
    ]
    list_select_related = ["site", "assignee"]
    # Indexed: the site's and its customer's (subscriptions/models.py).
    search_fields = ["^site__name", "^site__customer__code", "^site__customer__name"]
    phone_search_fields = ("site__contact_phone_e164", "site__customer__phone_e164")
    search_help_text = _(
        "The start of the site name, or of its customer's code or name, or a phone number."
    )
    paginator = EstimatedCountPaginator
    readonly_fields = [
        "site",
        "whole_story",
        "description",
        "channel",
        "received_at",
        "after_hours",
        "reported_by",
        "outage",
        "disaster",
        "status",
        "closed_at",
    ]
    fields = readonly_fields
    inlines = [DamagePhotoInline, FieldVisitInline]
    actions = ["assign_to_me", "close"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("support desk"))
    def whole_story(self, obj) -> str:
        return customer_story_link(obj.site.customer_id)

    def save_formset(self, request, form, formset, change):
        """Planning a visit and marking it done go through the services, which e-mail
        the customer (inside the admin's transaction, so both commit together)."""
        if formset.model is not FieldVisit:
            return super().save_formset(request, form, formset, change)
        now = timezone.now()
        formset.save(commit=False)
        for visit in formset.new_objects:
            plan_field_visit(
                report=form.instance,
                tentative_date=visit.tentative_date,
                technician=visit.technician,
                now=now,
            )
        for visit, changed in formset.changed_objects:
            if "status" in changed and visit.status == FieldVisit.Status.DONE:
                visit.save(update_fields=["tentative_date", "technician"])
                complete_field_visit(visit=visit, outcome=visit.outcome, now=now)
            else:
                visit.save()

    @admin.action(description=_("Close the reports"), permissions=["change"])
    def close(self, request, queryset):
        now = timezone.now()
        closed = sum(close_damage_report(report=report, now=now) for report in queryset)
        self.message_user(request, _("%(count)s report(s) closed.") % {"count": closed})
