from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from support.channels import Channel
from support.models import (
    AfterHoursAlert,
    CannedReply,
    FollowUp,
    Inquiry,
    InquiryMessage,
    OnCallShift,
    OutboundEmail,
)
from support.outbox import retry_now
from support.services import assign_inquiries, close_inquiry, open_inquiry, reply_to_inquiry

MAX_ID = 2**63 - 1


def is_database_id(value: str) -> bool:
    # isdigit() alone is true for "²" and other non-ASCII digits, which int() refuses.
    return value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID


class SafeActionsMixin:
    """Drops selected ids that cannot be database ids before an admin action runs them
    (an absurd number or "abc" in a forged form would otherwise fail the query: a 500),
    and refuses list filters holding a NUL byte (PostgreSQL refuses them in any query)
    with a message instead of a 500."""

    def changelist_view(self, request, extra_context=None):
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            messages.error(request, _("That filter is not valid; the full list is shown."))
            return HttpResponseRedirect(request.path)
        return super().changelist_view(request, extra_context)

    def response_action(self, request, queryset):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        usable = [s for s in selected if is_database_id(s)]
        if len(usable) != len(selected):
            request.POST = request.POST.copy()
            request.POST.setlist(admin.helpers.ACTION_CHECKBOX_NAME, usable)
        return super().response_action(request, queryset)


def guard_every_admin(site: admin.AdminSite) -> None:
    """Give every registered admin, Django's and libraries' too (groups, axes, OTP
    devices), the same guard against forged ids and NUL bytes: called once the admins are
    all registered (portal/urls.py)."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, SafeActionsMixin):
            continue
        guarded = type(type(model_admin).__name__, (SafeActionsMixin, type(model_admin)), {})
        site.unregister(model)
        site.register(model, guarded)


class ReadOnlyAdmin(SafeActionsMixin, admin.ModelAdmin):
    """Rows written by services only (audit, events, declarations): look, never edit."""

    show_full_result_count = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CannedReply)
class CannedReplyAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["title"]
    search_fields = ["title", "body"]


@admin.register(OnCallShift)
class OnCallShiftAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["staff", "starts_at", "ends_at"]
    list_select_related = ["staff"]
    autocomplete_fields = ["staff"]
    date_hierarchy = "starts_at"


def email_state(email: OutboundEmail | None) -> str:
    """How an e-mail queued in the outbox is doing, in words staff act on."""
    if email is None:
        return "-"
    if email.status == OutboundEmail.Status.SENT:
        return _("Sent %(at)s") % {
            "at": timezone.localtime(email.sent_at).strftime("%Y-%m-%d %H:%M")
        }
    if email.status == OutboundEmail.Status.QUEUED and email.last_error:
        return _("Not sent yet (%(attempts)s attempts): %(error)s") % {
            "attempts": email.attempts,
            "error": email.last_error,
        }
    if email.status == OutboundEmail.Status.FAILED:
        return _("Failed: %(error)s") % {"error": email.last_error}
    return email.get_status_display()


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    """Every e-mail the portal sent or will send; failed ones with their error."""

    list_display = ["created_at", "subject", "recipients", "status", "attempts", "sent_at"]
    list_filter = ["status", "created_at"]
    # "=key": a link from a notice finds exactly its e-mail.
    search_fields = ["=key", "subject"]
    date_hierarchy = "created_at"
    fields = [
        "key",
        "status",
        "to_all",
        "subject",
        "body",
        "created_at",
        "send_after",
        "attempts",
        "sent_at",
        "last_error",
    ]
    readonly_fields = fields
    actions = ["retry"]

    @admin.display(description=_("recipients"))
    def recipients(self, obj: OutboundEmail) -> str:
        return ", ".join(obj.to[:3]) + (" …" if len(obj.to) > 3 else "")

    @admin.display(description=_("recipients"))
    def to_all(self, obj: OutboundEmail) -> str:
        return ", ".join(obj.to)

    @admin.action(description=_("Try the failed e-mails again now"))
    def retry(self, request, queryset):
        count = retry_now(emails=queryset)
        self.message_user(
            request,
            ngettext("%d e-mail queued again.", "%d e-mails queued again.", count) % count,
        )


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    """Work waiting for a worker (support/followups.py): normally empty within seconds.
    A row that stays shows why in its last error; the relay keeps sending it."""

    list_display = ["task", "args", "created_at", "due_at", "started_at", "attempts", "relays"]
    list_filter = ["task"]
    fields = [
        "task",
        "args",
        "created_at",
        "due_at",
        "started_at",
        "hold_until",
        "relays",
        "attempts",
        "last_error",
    ]
    readonly_fields = fields


@admin.register(AfterHoursAlert)
class AfterHoursAlertAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["received_at", "contact_kind", "summary", "email_sent", "nobody_on_call"]
    list_select_related = ["email"]
    list_filter = ["contact_kind", "nobody_on_call"]
    search_fields = ["summary", "contact_id"]
    show_full_result_count = False
    exclude = ["recipients"]
    readonly_fields = ["recipient_list"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("e-mail"))
    def email_sent(self, obj: AfterHoursAlert) -> str:
        return email_state(obj.email)

    @admin.display(description=_("recipients"))
    def recipient_list(self, obj: AfterHoursAlert) -> str:
        return ", ".join(obj.recipients) or "-"


class RecordInquiryForm(forms.ModelForm):
    """Support records an inquiry received by phone, e-mail or IP phone."""

    channel = forms.ChoiceField(choices=Channel.staff_recorded, label=_("channel"))
    body = forms.CharField(
        label=_("What the customer asked"), widget=forms.Textarea(attrs={"rows": 5})
    )

    class Meta:
        model = Inquiry
        fields = ["customer", "site", "channel", "contact_phone", "subject"]

    def clean(self):
        data = super().clean()
        customer, site = data.get("customer"), data.get("site")
        if customer and site and site.customer_id != customer.pk:
            self.add_error("site", _("Choose a site of this customer."))
        return data


class InquiryChangeForm(forms.ModelForm):
    """The change page: assign, and answer the customer or note something internally."""

    reply = forms.CharField(
        label=_("Reply"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Sent to the customer by e-mail and shown in the portal."),
    )
    canned_reply = forms.ModelChoiceField(
        queryset=CannedReply.objects.all(),
        label=_("Canned reply"),
        required=False,
        help_text=_("Added after the text above (or sent alone when the reply is empty)."),
    )
    internal = forms.BooleanField(
        label=_("Internal note"),
        required=False,
        help_text=_("Keep this message for staff only: never shown or sent to the customer."),
    )

    class Meta:
        model = Inquiry
        fields = ["assignee"]


class InquiryMessageInline(admin.TabularInline):
    model = InquiryMessage
    fields = ["created_at", "author", "from_staff", "internal", "body", "emailed"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author", "email")

    @admin.display(description=_("e-mail"))
    def emailed(self, obj: InquiryMessage) -> str:
        return email_state(obj.email) if obj.from_staff and not obj.internal else "-"


@admin.register(Inquiry)
class InquiryAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "received_at",
        "age",
        "customer",
        "subject",
        "channel",
        "after_hours",
        "priority",
        "status",
        "assignee",
    ]
    list_display_links = ["pk", "subject"]
    list_filter = [
        "status",
        "channel",
        "priority",
        "after_hours",
        "site__prefecture",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["customer", "assignee"]
    search_fields = [
        "customer__name",
        "customer__code",
        "customer__phone",
        "site__name",
        "site__contact_phone",
        "subject",
        "contact_phone",
    ]
    autocomplete_fields = ["customer", "site"]
    actions = ["assign_to_me", "close"]
    inlines = [InquiryMessageInline]
    show_full_result_count = False
    readonly_fields = [
        "customer",
        "site",
        "subject",
        "channel",
        "received_at",
        "after_hours",
        "priority",
        "status",
        "contact_phone",
        "created_by",
        "recorded_by",
        "closed_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = InquiryChangeForm if obj else RecordInquiryForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_inlines(self, request, obj=None):
        return self.inlines if obj else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*RecordInquiryForm._meta.fields, "body"]
        return [*self.readonly_fields, "assignee", "reply", "canned_reply", "internal"]

    def save_model(self, request, obj, form, change):
        data, now = form.cleaned_data, timezone.now()
        if not change:
            created = open_inquiry(
                customer=data["customer"],
                site=data["site"],
                subject=data["subject"],
                body=data["body"],
                channel=data["channel"],
                recorded_by=request.user,
                contact_phone=data["contact_phone"],
                now=now,
            )
            obj.pk = created.pk
            return
        assign_inquiries(inquiries=[obj.pk], assignee=obj.assignee)
        if data.get("reply", "").strip() or data.get("canned_reply"):
            try:
                reply_to_inquiry(
                    inquiry=obj,
                    by=request.user,
                    body=data.get("reply", ""),
                    canned_reply=data.get("canned_reply"),
                    internal=data["internal"],
                    now=now,
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.WARNING)
            else:
                self.message_user(
                    request,
                    _("Internal note saved.")
                    if data["internal"]
                    else _("Reply saved; it is e-mailed to the customer now."),
                )

    @admin.display(description=_("age"), ordering="received_at")
    def age(self, obj: Inquiry) -> str:
        return timesince(obj.received_at)

    @admin.action(description=_("Assign to me"))
    def assign_to_me(self, request, queryset):
        count = assign_inquiries(inquiries=queryset, assignee=request.user)
        self.message_user(
            request,
            ngettext("%d inquiry assigned to you.", "%d inquiries assigned to you.", count) % count,
        )

    # A context of its own: Django's "Close" (leaving a read-only page) is 閉じる.
    @admin.action(description=pgettext_lazy("inquiry action", "Close"), permissions=["change"])
    def close(self, request, queryset):
        now, closed, refused = timezone.now(), 0, []
        for inquiry in queryset:
            try:
                close_inquiry(inquiry=inquiry, by=request.user, now=now)
                closed += 1
            except ValidationError as error:
                refused.append(f"#{inquiry.pk}: {' '.join(error.messages)}")
        if closed:
            self.message_user(
                request,
                ngettext("%d inquiry closed.", "%d inquiries closed.", closed) % closed,
                messages.SUCCESS,
            )
        for text in refused:
            self.message_user(request, text, messages.WARNING)
