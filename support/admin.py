from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from support.calendar import TOKYO
from support.models import AfterHoursAlert, Contact, FollowUp, OnCallShift, OutboundEmail
from support.outbox import retry_now

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


def _japan_time(at) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")


def is_past_target(contact: Contact, now) -> bool:
    """Still open, nobody has responded, and its first-response target has passed."""
    return (
        contact.is_open
        and contact.first_response_at is None
        and contact.respond_by is not None
        and contact.respond_by < now
    )


@admin.display(description=_("first response"), ordering="respond_by")
def first_response(contact: Contact) -> str:
    """The changelist column of any contact kind: when staff first responded, or when
    they must (Japan time), marked when that is past."""
    if contact.first_response_at is not None:
        return _("Responded %(at)s") % {"at": _japan_time(contact.first_response_at)}
    if contact.respond_by is None:
        return "-"
    due = _("Due %(at)s") % {"at": _japan_time(contact.respond_by)}
    if is_past_target(contact, timezone.now()):
        return format_html('<strong class="sla-overdue">{}</strong> {}', _("Overdue"), due)
    return due


class PastTargetFilter(admin.SimpleListFilter):
    """Open contacts of any kind nobody has responded to within their target."""

    title = _("past its target")
    parameter_name = "past_target"

    def lookups(self, request, model_admin):
        return [("yes", _("Past its target"))]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        return queryset.filter(
            status__in=queryset.model.OPEN_STATUSES,
            first_response_at__isnull=True,
            respond_by__lt=timezone.now(),
        )


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
        "to",
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
    list_display = [
        "received_at",
        "contact_kind",
        "stage",
        "summary",
        "email_sent",
        "nobody_on_call",
    ]
    list_select_related = ["email"]
    list_filter = ["contact_kind", "stage", "nobody_on_call"]
    search_fields = ["summary", "contact_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("e-mail"))
    def email_sent(self, obj: AfterHoursAlert) -> str:
        return email_state(obj.email)
