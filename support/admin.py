from collections.abc import Callable, Collection

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from support.models import AfterHoursAlert, FollowUp, OnCallShift, OutboundEmail
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


class MergeTargetForm(forms.Form):
    into = forms.TypedChoiceField(label=_("Merge into"), coerce=int)

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["into"].choices = choices


class MergeIntoActionMixin:
    """The "Merge into…" action of a contact kind's changelist (support/merging.py).

    Select the duplicate(s), pick on the next page the contact they join among the same
    customer's open contacts of that kind, confirm. The admin names its kind's service
    (``merge_service``, keyword-only duplicate, into, by, now), where the customer is
    (``merge_customer_field``) and which statuses a target may have. The action is added
    to the admin's own ones, so the admin's ``actions`` list stays as it is.
    """

    merge_service: Callable
    merge_customer_field: str = "customer"
    merge_target_statuses: Collection[str] = ()
    # The merge page lists at most this many candidates, newest first.
    MERGE_CANDIDATES = 200

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            actions["merge_into"] = self.get_action("merge_into")
        return actions

    @admin.action(description=_("Merge into…"))
    def merge_into(self, request, queryset):
        duplicates = list(queryset.order_by("pk"))
        customers = set(queryset.values_list(self.merge_customer_field, flat=True))
        if len(customers) != 1:
            self.message_user(
                request,
                _("Choose contacts of one customer to merge them."),
                messages.ERROR,
            )
            return None
        candidates = (
            self.model.objects.filter(
                status__in=self.merge_target_statuses,
                merged_into__isnull=True,
                **{self.merge_customer_field: customers.pop()},
            )
            .exclude(pk__in=[duplicate.pk for duplicate in duplicates])
            .order_by("-received_at", "-pk")[: self.MERGE_CANDIDATES]
        )
        choices = [
            (
                candidate.pk,
                f"{candidate} ({timezone.localtime(candidate.received_at):%Y-%m-%d %H:%M}, "
                f"{candidate.get_status_display()})",
            )
            for candidate in candidates
        ]
        form = MergeTargetForm(request.POST if "into" in request.POST else None, choices=choices)
        if form.is_bound and form.is_valid():
            into = self.model.objects.get(pk=form.cleaned_data["into"])
            merged, now = 0, timezone.now()
            for duplicate in duplicates:
                try:
                    type(self).merge_service(
                        duplicate=duplicate, into=into, by=request.user, now=now
                    )
                except ValidationError as error:
                    self.message_user(
                        request, f"#{duplicate.pk}: {' '.join(error.messages)}", messages.WARNING
                    )
                else:
                    merged += 1
            if merged:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d contact merged into #%(number)s; the customer is told once.",
                        "%(count)d contacts merged into #%(number)s; the customer is told once.",
                        merged,
                    )
                    % {"count": merged, "number": into.pk},
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/merge_into.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Merge into…"),
                "opts": self.model._meta,
                "duplicates": duplicates,
                "form": form,
                "action": "merge_into",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


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
    list_display = ["received_at", "contact_kind", "summary", "email_sent", "nobody_on_call"]
    list_select_related = ["email"]
    list_filter = ["contact_kind", "nobody_on_call"]
    search_fields = ["summary", "contact_id"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("e-mail"))
    def email_sent(self, obj: AfterHoursAlert) -> str:
        return email_state(obj.email)
