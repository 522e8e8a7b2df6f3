"""The desk's admin pages: inquiries (with their conversation) and canned replies."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from desk.canned import placeholders_help, unknown_placeholders, unknown_placeholders_message
from desk.models import CannedReply, InboundEmail, Inquiry, InquiryAttachment, InquiryMessage
from desk.services import (
    INQUIRY_MERGE_TARGETS,
    assign_inquiry_customer,
    close_inquiry,
    merge_inquiries,
    open_inquiry,
    reply_to_inquiry,
)
from subscriptions.admin import PhoneSearchMixin, customer_story_link
from subscriptions.models import Customer
from support.admin import (
    ContactAdminMixin,
    EstimatedCountPaginator,
    MergeIntoActionMixin,
    PastTargetFilter,
    SafeActionsMixin,
    email_state,
    first_response,
)
from support.channels import Channel


class CannedReplyForm(forms.ModelForm):
    """Says which placeholders exist, and refuses a name that is none of them."""

    class Meta:
        model = CannedReply
        fields = ["title", "body"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["body"].help_text = placeholders_help()

    def clean_body(self):
        body = self.cleaned_data["body"]
        unknown = unknown_placeholders(body)
        if unknown:
            raise forms.ValidationError(unknown_placeholders_message(unknown))
        return body


@admin.register(CannedReply)
class CannedReplyAdmin(SafeActionsMixin, admin.ModelAdmin):
    form = CannedReplyForm
    list_display = ["title"]
    search_fields = ["title", "body"]


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
    )
    internal = forms.BooleanField(
        label=_("Internal note"),
        required=False,
        help_text=_("Keep this message for staff only: never shown or sent to the customer."),
    )

    customer_code = forms.CharField(
        label=_("Customer code"),
        required=False,
        max_length=20,
        help_text=_("An e-mail from an unknown sender: the code of the customer who wrote."),
    )

    class Meta:
        model = Inquiry
        fields = ["assignee"]

    def clean_customer_code(self):
        code = self.cleaned_data["customer_code"].strip()
        if not code:
            return None
        customer = Customer.objects.filter(code=code).first()
        if customer is None:
            raise forms.ValidationError(_("No customer has this code."))
        return customer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["canned_reply"].help_text = (
            _("Added after the text above (or sent alone when the reply is empty).")
            + " "
            + placeholders_help()
        )

    def clean_canned_reply(self):
        # A canned reply written before its placeholders were checked: said here, on the
        # form with the typed text kept, rather than after the save.
        canned = self.cleaned_data["canned_reply"]
        unknown = unknown_placeholders(canned.body) if canned else []
        if unknown:
            raise forms.ValidationError(unknown_placeholders_message(unknown))
        return canned

    def clean(self):
        # A reply to an inquiry closed meanwhile (by a colleague) is refused here, with
        # the typed text kept on the page, not lost after a save that says it worked.
        data = super().clean()
        replying = (data.get("reply") or "").strip() or data.get("canned_reply")
        if replying and not data.get("internal"):
            status = Inquiry.objects.filter(pk=self.instance.pk).values_list("status", flat=True)
            if status.first() == Inquiry.Status.CLOSED:
                self.add_error(
                    "reply",
                    _(
                        "This inquiry is closed: the customer reopens it by writing again. "
                        "Keep the text as an internal note, or write to the customer in a "
                        "new inquiry."
                    ),
                )
        return data


class InquiryAttachmentInline(admin.TabularInline):
    model = InquiryAttachment
    fields = ["file_link", "content_type", "size", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("file"))
    def file_link(self, obj: InquiryAttachment) -> str:
        return format_html('<a href="{}">{}</a>', reverse("desk:attachment", args=[obj.pk]), obj)


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
class InquiryAdmin(
    PhoneSearchMixin, ContactAdminMixin, MergeIntoActionMixin, SafeActionsMixin, admin.ModelAdmin
):
    merge_service = staticmethod(merge_inquiries)
    merge_target_statuses = INQUIRY_MERGE_TARGETS
    list_display = [
        "id",
        "received_at",
        "age",
        "customer",
        "subject",
        "channel",
        "after_hours",
        "priority",
        "status",
        "assignee",
        first_response,
    ]
    list_display_links = ["id", "subject"]
    list_filter = [
        "status",
        PastTargetFilter,
        "channel",
        "priority",
        "after_hours",
        "site__prefecture",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["customer", "assignee"]
    # Indexed: desk_inq_sender_upper_idx, the customer's and the site's.
    search_fields = ["^sender_email", "^customer__code", "^customer__name", "^site__name"]
    phone_search_fields = ("contact_phone_e164", "customer__phone_e164", "site__contact_phone_e164")
    search_help_text = _(
        "The start of the sender's address, of the customer's code or name, or of the site"
        " name, or a phone number."
    )
    paginator = EstimatedCountPaginator
    autocomplete_fields = ["customer", "site"]
    actions = ["assign_to_me", "close"]
    inlines = [InquiryMessageInline, InquiryAttachmentInline]
    show_full_result_count = False
    readonly_fields = [
        "customer",
        "sender_email",
        "whole_story",
        "site",
        "subject",
        "channel",
        "received_at",
        "after_hours",
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
        return super().get_readonly_fields(request, obj) if obj else []

    def get_inlines(self, request, obj=None):
        return self.inlines if obj else []

    @admin.display(description=_("support desk"))
    def whole_story(self, obj) -> str:
        if obj.customer_id is None:
            return _("Unknown sender: choose the customer below.")
        return customer_story_link(obj.customer_id)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*RecordInquiryForm._meta.fields, "body"]
        unknown = ["customer_code"] if obj.customer_id is None else []
        return [*self.readonly_fields, *unknown, "reply", "canned_reply", "internal"]

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
        super().save_model(request, obj, form, change)  # assignee, priority, note
        if data.get("customer_code"):
            try:
                assign_inquiry_customer(
                    inquiry=obj, customer=data["customer_code"], by=request.user, now=now
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.WARNING)
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


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    """What the support mailbox received; those that could not be read wait here, with
    the error and the raw message, for staff to read and record by hand."""

    list_display = ["fetched_at", "sender", "subject", "state", "inquiry", "error"]
    list_filter = ["state"]
    search_fields = ["sender", "subject", "message_id"]
    list_select_related = ["inquiry"]
    show_full_result_count = False
    fields = [
        "fetched_at",
        "sender",
        "subject",
        "message_id",
        "folder",
        "uid",
        "state",
        "error",
        "processed_at",
        "inquiry",
        "acknowledgement",
        "raw_text",
    ]
    readonly_fields = fields
    actions = ["process_again"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("raw message"))
    def raw_text(self, obj: InboundEmail) -> str:
        return format_html("<pre>{}</pre>", bytes(obj.raw).decode("utf-8", "replace")[:200_000])

    @admin.action(description=_("Process again (after a fix)"), permissions=["change"])
    def process_again(self, request, queryset):
        count = queryset.filter(state=InboundEmail.State.FAILED).update(
            state=InboundEmail.State.RECEIVED, error=""
        )
        self.message_user(
            request,
            ngettext(
                "%d e-mail will be processed again at the next fetch.",
                "%d e-mails will be processed again at the next fetch.",
                count,
            )
            % count,
        )
