"""The support desk's queues for upgrades. Every change goes through a service."""

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from subscriptions.admin import PhoneSearchMixin, customer_filter, customer_story_link
from subscriptions.prefectures import Prefecture
from subscriptions.speed_causes import describe_cause
from support.admin import (
    ContactAdminMixin,
    EstimatedCountPaginator,
    IndexedSearchMixin,
    MergeIntoActionMixin,
    PastTargetFilter,
    ReadOnlyAdmin,
    SafeActionsMixin,
    first_response,
    is_database_id,
)
from support.channels import Channel
from upgrades.models import (
    BlanketUpgrade,
    BlanketUpgradeEvent,
    CustomerNotice,
    ProvisioningChange,
    SpeedGrant,
    UpgradeRequest,
    UpgradeRequestEvent,
)
from upgrades.services.blanket import respond_to_grants
from upgrades.services.notices import COMPOSER
from upgrades.services.requests import (
    REQUEST_MERGE_TARGETS,
    approve_upgrade_request,
    check_sites_can_be_upgraded,
    end_upgrade_request,
    merge_upgrade_requests,
    reject_upgrade_request,
    request_upgrade,
)


def _run_each(modeladmin, request, objects, action, done_message) -> None:
    """Apply a service to each selected object; report successes and refusals."""
    done, refused = 0, []
    for obj in objects:
        try:
            action(obj)
            done += 1
        except ValidationError as error:
            refused.append(f"#{obj.pk}: {' '.join(error.messages)}")
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)
    for text in refused:
        modeladmin.message_user(request, text, messages.WARNING)


class RecordRequestForm(forms.ModelForm):
    """Support records a request received by phone, e-mail or IP phone."""

    channel = forms.ChoiceField(choices=Channel.staff_recorded, label=_("channel"))

    class Meta:
        model = UpgradeRequest
        fields = ["customer", "sites", "reason", "note", "channel", "contact_name", "contact_phone"]

    def clean(self):
        data = super().clean()
        customer, sites = data.get("customer"), data.get("sites")
        if customer and sites:
            try:
                check_sites_can_be_upgraded(
                    customer=customer, sites=list(sites), today=timezone.localdate()
                )
            except ValidationError as error:
                self.add_error(None, error)
        return data


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason told to the customer"), widget=forms.Textarea(attrs={"rows": 3})
    )


class UpgradeRequestEventInline(admin.TabularInline):
    model = UpgradeRequestEvent
    fields = ["at", "status", "by", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SpeedGrantInline(admin.TabularInline):
    model = SpeedGrant
    fk_name = "upgrade_request"
    fields = ["subscription", "state", "starts_at", "ended_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UpgradeRequest)
class UpgradeRequestAdmin(
    PhoneSearchMixin, ContactAdminMixin, MergeIntoActionMixin, SafeActionsMixin, admin.ModelAdmin
):
    merge_service = staticmethod(merge_upgrade_requests)
    merge_target_statuses = REQUEST_MERGE_TARGETS
    list_display = [
        "id",
        "received_at",
        "age",
        "customer",
        "site_names",
        "channel",
        "after_hours",
        "priority",
        "reason",
        "status",
        "assignee",
        "disaster",
        first_response,
    ]
    list_filter = [
        "status",
        PastTargetFilter,
        "channel",
        "reason",
        "priority",
        "after_hours",
        "sites__prefecture",
        "disaster",
        "outage",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["customer", "assignee", "disaster"]
    # Indexed: the customer's and the sites' (subscriptions/models.py).
    search_fields = ["^customer__code", "^customer__name", "^sites__name"]
    phone_search_fields = (
        "contact_phone_e164",
        "customer__phone_e164",
        "sites__contact_phone_e164",
    )
    search_help_text = _(
        "The start of the customer's code or name, or of a site name, or a phone number."
    )
    autocomplete_fields = ["customer", "sites"]
    actions = ["assign_to_me", "approve", "reject", "end"]
    inlines = [UpgradeRequestEventInline, SpeedGrantInline]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    date_hierarchy = None
    readonly_fields = [
        "customer",
        "whole_story",
        "sites",
        "reason",
        "note",
        "channel",
        "received_at",
        "after_hours",
        "contact_name",
        "contact_phone",
        "requested_by",
        "recorded_by",
        "status",
        "disaster",
        "outage",
        "decided_at",
        "decided_by",
        "decision_note",
        "ended_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("sites")

    @admin.display(description=_("support desk"))
    def whole_story(self, obj) -> str:
        return customer_story_link(obj.customer_id)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = RecordRequestForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return super().get_readonly_fields(request, obj) if obj else []

    def get_inlines(self, request, obj=None):
        return self.inlines if obj else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return RecordRequestForm._meta.fields
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:  # only the shared triage fields are editable (ContactAdminMixin)
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = request_upgrade(
            customer=data["customer"],
            sites=list(data["sites"]),
            reason=data["reason"],
            note=data["note"],
            channel=data["channel"],
            recorded_by=request.user,
            contact_name=data["contact_name"],
            contact_phone=data["contact_phone"],
            now=timezone.now(),
        )
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        # On add, the service saved the sites already and there are no inlines.
        if change:
            super().save_related(request, form, formsets, change)

    @admin.display(description=_("sites"))
    def site_names(self, obj: UpgradeRequest) -> str:
        return ", ".join(site.name for site in obj.sites.all())

    @admin.display(description=_("age"), ordering="received_at")
    def age(self, obj: UpgradeRequest) -> str:
        return timesince(obj.received_at)

    @admin.action(description=_("Approve: upgrade the lines"), permissions=["change"])
    def approve(self, request, queryset):
        now = timezone.now()
        _run_each(
            self,
            request,
            queryset,
            lambda obj: approve_upgrade_request(upgrade_request=obj, by=request.user, now=now),
            _("%(count)s request(s) approved."),
        )

    @admin.action(description=_("Reject with a reason"), permissions=["change"])
    def reject(self, request, queryset):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            now, reason = timezone.now(), form.cleaned_data["reason"]
            _run_each(
                self,
                request,
                queryset,
                lambda obj: reject_upgrade_request(
                    upgrade_request=obj, by=request.user, now=now, reason=reason
                ),
                _("%(count)s request(s) rejected."),
            )
            return None
        return TemplateResponse(
            request,
            "admin/upgrades/reject_requests.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Reject upgrade requests"),
                "form": form,
                "objects": queryset,
                "opts": self.model._meta,
            },
        )

    @admin.action(description=_("End: return the lines to normal"), permissions=["change"])
    def end(self, request, queryset):
        now = timezone.now()
        _run_each(
            self,
            request,
            queryset,
            lambda obj: end_upgrade_request(upgrade_request=obj, by=request.user, now=now),
            _("%(count)s request(s) ended."),
        )


class BlanketUpgradeFilter(admin.SimpleListFilter):
    """The latest disasters' blanket upgrades, named in one query (the admin's own
    filter would read each one's disaster apart)."""

    title = _("blanket upgrade")
    parameter_name = "blanket_upgrade__id__exact"
    SHOWN = 20

    def lookups(self, request, model_admin):
        blankets = BlanketUpgrade.objects.select_related("disaster").order_by("-created_at", "-pk")
        return [(str(blanket.pk), str(blanket)) for blanket in blankets[: self.SHOWN]]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not is_database_id(value):
            return queryset.none()
        return queryset.filter(blanket_upgrade_id=value)


@admin.register(SpeedGrant)
class SpeedGrantAdmin(PhoneSearchMixin, SafeActionsMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "subscription",
        "customer",
        "source",
        "state",
        "starts_at",
        "deadline",
        "responded_at",
        "response_channel",
    ]
    list_filter = [
        "state",
        "source",
        "response_channel",
        "response_after_hours",
        BlanketUpgradeFilter,
        customer_filter("subscription__site__customer"),
    ]
    list_select_related = ["subscription__site__customer", "blanket_upgrade"]
    # Each through an index: the line's, site's or customer's (subscriptions/models.py),
    # then the grants of the lines found (upg_grant_sub_idx).
    search_fields = [
        "^subscription__contract_number",
        "^subscription__site__name",
        "^subscription__site__customer__code",
        "^subscription__site__customer__name",
    ]
    phone_search_fields = (
        "subscription__site__contact_phone_e164",
        "subscription__site__customer__phone_e164",
    )
    search_help_text = _(
        "The start of the contract number, of the site name, or of the customer's code or"
        " name, or a phone number."
    )
    actions = ["keep_by_phone", "keep_by_email", "decline_by_phone", "decline_by_email"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # Newest first by id, the order grants are written in: the primary key's index
    # serves it, where the model's "-starts_at" would need an index more on a table a
    # nationwide declaration writes a million rows into.
    ordering = ["-pk"]
    sortable_by = ["id"]
    readonly_fields = [f.name for f in SpeedGrant._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("customer"))
    def customer(self, obj: SpeedGrant):
        return obj.subscription.site.customer

    @admin.display(description=_("confirmation deadline"))
    def deadline(self, obj: SpeedGrant):
        return obj.blanket_upgrade.deadline if obj.blanket_upgrade_id else None

    def _respond(self, request, queryset, *, keep: bool, channel: str):
        try:
            answered = respond_to_grants(
                grants=queryset, keep=keep, by=request.user, channel=channel, now=timezone.now()
            )
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.WARNING)
            return
        self.message_user(request, _("%(count)s answer(s) recorded.") % {"count": len(answered)})

    @admin.action(
        description=_("Record: customer keeps the upgrade (phone)"), permissions=["change"]
    )
    def keep_by_phone(self, request, queryset):
        self._respond(request, queryset, keep=True, channel=Channel.PHONE)

    @admin.action(
        description=_("Record: customer keeps the upgrade (e-mail)"), permissions=["change"]
    )
    def keep_by_email(self, request, queryset):
        self._respond(request, queryset, keep=True, channel=Channel.EMAIL)

    @admin.action(description=_("Record: customer declines (phone)"), permissions=["change"])
    def decline_by_phone(self, request, queryset):
        self._respond(request, queryset, keep=False, channel=Channel.PHONE)

    @admin.action(description=_("Record: customer declines (e-mail)"), permissions=["change"])
    def decline_by_email(self, request, queryset):
        self._respond(request, queryset, keep=False, channel=Channel.EMAIL)


DETAIL_LABELS = {
    "nationwide": _("nationwide"),
    "prefectures": _("prefectures"),
    "window_days": _("confirmation window (days)"),
    "grants": _("lines"),
    "from": _("deadline before"),
    "to": _("deadline after"),
}


def _detail_value(value) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        names = [Prefecture(v).label if v in Prefecture.values else str(v) for v in value]
        return pgettext("list separator", ", ").join(map(str, names)) or "-"
    if isinstance(value, str):
        try:  # the times an event records (ISO 8601), in Japan time
            return date_format(timezone.localtime(datetime.fromisoformat(value)), "Y-m-d H:i")
        except ValueError:
            return value
    return str(value)


def describe_detail(detail: dict) -> str:
    """An event's detail as "label: value" lines (the row keeps codes and ISO times)."""
    return format_html_join(
        mark_safe("<br>"),
        "{}: {}",
        ((DETAIL_LABELS.get(key, key), _detail_value(value)) for key, value in detail.items()),
    )


class BlanketUpgradeEventInline(admin.TabularInline):
    model = BlanketUpgradeEvent
    fields = ["at", "kind", "by", "details"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("detail"))
    def details(self, obj: BlanketUpgradeEvent) -> str:
        return describe_detail(obj.detail) if obj.detail else "-"


@admin.register(BlanketUpgrade)
class BlanketUpgradeAdmin(ReadOnlyAdmin):
    list_display = ["disaster", "status", "deadline", "created_at", "applied_at", "ended_at"]
    list_filter = ["status"]
    list_select_related = ["disaster"]
    inlines = [BlanketUpgradeEventInline]


@admin.register(ProvisioningChange)
class ProvisioningChangeAdmin(IndexedSearchMixin, ReadOnlyAdmin):
    list_display = ["applied_at", "subscription", "from_kbps", "to_kbps", "reason", "version"]
    list_filter = ["upgraded"]
    list_select_related = ["subscription"]
    # Through the line's or customer's index, then the line's changes (the
    # once-per-version unique index starts with the line).
    search_fields = ["^subscription__contract_number", "^subscription__site__customer__code"]
    search_help_text = _("The start of the contract number or of the customer code.")
    paginator = EstimatedCountPaginator
    # Newest first by id, the order the network confirmed them in (as SpeedGrantAdmin).
    ordering = ["-pk"]
    sortable_by = []
    fields = [
        "subscription",
        "version",
        "upgraded",
        "from_kbps",
        "to_kbps",
        "reason",
        "batch",
        "applied_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("cause"))
    def reason(self, obj: ProvisioningChange) -> str:
        return describe_cause(obj.cause)


@admin.register(CustomerNotice)
class CustomerNoticeAdmin(IndexedSearchMixin, ReadOnlyAdmin):
    """What each customer was told, one row per organisation and event; the e-mail
    itself (its text as sent, or its error) is in the outbox under the same key."""

    list_display = ["created_at", "kind", "customer", "blanket_upgrade", "upgrade_request", "email"]
    list_filter = ["kind", ("queued_at", admin.EmptyFieldListFilter)]
    # Every column that follows a key, the request's customer included (its name).
    list_select_related = ["customer", "blanket_upgrade__disaster", "upgrade_request__customer"]
    search_fields = ["^customer__code", "^customer__name"]
    search_help_text = _("The start of the customer's code or name.")
    paginator = EstimatedCountPaginator
    sortable_by = ["created_at"]
    raw_id_fields = ["customer", "blanket_upgrade", "upgrade_request"]

    @admin.display(description=_("e-mail"))
    def email(self, obj: CustomerNotice):
        url = reverse("admin:support_outboundemail_changelist")
        return format_html(
            '<a href="{}?q={}">{}</a>', url, f"{COMPOSER}:{obj.pk}", _("outgoing e-mail")
        )
