from collections.abc import Callable, Collection

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import EmptyResultSet, ImproperlyConfigured, ValidationError
from django.core.paginator import Paginator
from django.db import connections, models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from support.calendar import TOKYO
from support.contacts import (
    add_note,
    assign_contacts,
    change_priority,
    contact_events,
    staff_name,
)
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

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # A forged related id beyond the database's integers ("customer=9999…9") would
        # reach the query that redraws the chosen value (an autocomplete widget): a 500.
        # Such a value is dropped: the form then says the field needs a valid choice.
        if request.method == "POST":
            forged = {
                field.name
                for field in self.model._meta.get_fields()
                if (field.many_to_one or field.many_to_many)
                and not field.auto_created
                and isinstance(field.target_field, models.AutoField | models.IntegerField)
                and any(
                    value and not is_database_id(value)
                    for value in request.POST.getlist(field.name)
                )
            }
            if forged:
                request.POST = request.POST.copy()
                for name in forged:
                    request.POST.setlist(
                        name, [v for v in request.POST.getlist(name) if is_database_id(v)]
                    )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_action(self, request, queryset):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        usable = [s for s in selected if is_database_id(s)]
        if len(usable) != len(selected):
            request.POST = request.POST.copy()
            request.POST.setlist(admin.helpers.ACTION_CHECKBOX_NAME, usable)
        return super().response_action(request, queryset)


class EstimatedCountPaginator(Paginator):
    """A changelist's paginator that never counts a big table exactly.

    The admin counts the listed rows to draw its page links, and an exact COUNT(*) over a
    million rows reads them all (hundreds of milliseconds, on every page). Here
    PostgreSQL's own estimate comes first: the table's ``reltuples`` for the unfiltered
    list, the planner's row estimate for a filtered one. Above ``EXACT_UP_TO`` rows it is
    shown, marked "about" on the page (templates/admin/pagination.html); below, the rows
    are counted, reading at most ``EXACT_UP_TO`` + 1 of them (an estimate that was too
    low is then replaced by that bound). A last page past the true end is empty, never
    an error. Two queries for a short list, one for a long one, whatever the table's size.
    """

    EXACT_UP_TO = 10_000

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, models.QuerySet):
            return super().count
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        estimate = self._estimate(queryset, connection)
        if estimate > self.EXACT_UP_TO:
            self.estimated = True
            return estimate
        capped = queryset.order_by()[: self.EXACT_UP_TO + 1].count()
        self.estimated = capped > self.EXACT_UP_TO
        return capped

    @staticmethod
    def _estimate(queryset: models.QuerySet, connection) -> int:
        with connection.cursor() as cursor:
            if not queryset.query.where:
                # Kept by VACUUM and ANALYZE (autovacuum): -1 for a table never analyzed.
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                (rows,) = cursor.fetchone()
                if rows >= 0:
                    return rows
            try:
                query, params = queryset.order_by().query.get_compiler(queryset.db).as_sql()
            except EmptyResultSet:  # e.g. a search that found no id: nothing to ask
                return 0
            cursor.execute(f"EXPLAIN (FORMAT JSON) {query}", params)
            (plan,) = cursor.fetchone()
        return int(plan[0]["Plan"]["Plan Rows"])


SEARCH_LOOKUPS = {"=": "iexact", "^": "istartswith"}


class IndexedSearchMixin:
    """The admin's search on a table of a million rows, answered from indexes.

    Every search field is an exact (``=field``) or prefix (``^field``) match on a column
    indexed for it (an index on ``UPPER(column) text_pattern_ops``: the admin's matches
    ignore case), and the typed text is matched whole (quotes and spaces kept as typed).
    Django ORs the fields in one WHERE over the joined tables, which PostgreSQL answers
    by reading them all; here each field is its own lookup of ids through its index, and
    the list keeps the rows whose id is in their union. ``search_help_text`` says on the
    page what is searched.
    """

    # The ids found are fetched first (one query) and handed to the list as values, so
    # the list's plan starts from them; past this many, as a subquery (slower, rare: a
    # search that broad is refined by typing more).
    FETCHED_UP_TO = 1000

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = None
        for field in self.get_search_fields(request):
            if field[:1] not in SEARCH_LOOKUPS:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}: search field {field!r} must be '=field' or "
                    "'^field' on an indexed column"
                )
            lookup = f"{field[1:]}__{SEARCH_LOOKUPS[field[0]]}"
            matching = self.model._default_manager.filter(**{lookup: term})
            matching = matching.order_by().values_list("pk", flat=True)
            ids = matching if ids is None else ids.union(matching)
        return self.rows_with_ids(queryset, ids), False

    def rows_with_ids(self, queryset, ids):
        """``queryset`` narrowed to ``ids`` (a query of primary keys): as values when they
        are few, as a subquery past FETCHED_UP_TO, so no row found is ever left out."""
        found = list(ids[: self.FETCHED_UP_TO + 1])
        if len(found) <= self.FETCHED_UP_TO:
            return queryset.filter(pk__in=found)
        return queryset.filter(pk__in=ids)


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


def _japan_time(at) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")


@admin.display(description=_("first response"), ordering="respond_by")
def first_response(contact: Contact) -> str:
    """The changelist column of any contact kind: when staff first responded, or when
    they must (Japan time), marked when that is past."""
    if contact.first_response_at is not None:
        return _("Responded %(at)s") % {"at": _japan_time(contact.first_response_at)}
    if contact.respond_by is None:
        return "-"
    due = _("Due %(at)s") % {"at": _japan_time(contact.respond_by)}
    if contact.is_past_target(timezone.now()):
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
        return queryset.past_target(timezone.now())


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
class OutboundEmailAdmin(IndexedSearchMixin, ReadOnlyAdmin):
    """Every e-mail the portal sent or will send; failed ones with their error."""

    list_display = ["created_at", "subject", "recipients", "status", "attempts", "sent_at"]
    list_filter = ["status", "created_at"]
    # "=key": a link from a notice finds exactly its e-mail (support_outbox_key_upper_idx).
    search_fields = ["=key"]
    search_help_text = _("The e-mail's key, exactly (as a notice's link gives it).")
    paginator = EstimatedCountPaginator
    sortable_by = ["created_at"]
    # No date hierarchy: its links are a DISTINCT over every e-mail ever sent; the
    # "created" filter gives the same periods through support_outbox_created_idx.
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


class ContactChangeForm(forms.ModelForm):
    """The triage part of every contact kind's change page: assignee (staff only, by the
    field's own limit), taking over from a colleague, priority with its reason, and an
    internal note. ``ContactAdminMixin`` puts it in front of the kind's own form."""

    take_over = forms.BooleanField(label=_("Take over"), required=False)
    priority_reason = forms.CharField(
        label=_("Reason for the priority change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when the priority changes; kept in the history for staff."),
    )
    internal_note = forms.CharField(
        label=_("Internal note for staff"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with this contact for staff only: never shown or sent to the customer."),
    )

    # The staff member using the page, set by ContactAdminMixin.get_form.
    staff_user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        holder = self._colleague_holding()
        if "take_over" in self.fields:
            if holder is None:
                self.fields["take_over"].widget = forms.HiddenInput()
            else:
                self.fields["take_over"].label = _("Take over from %(name)s") % {
                    "name": staff_name(holder)
                }

    def _colleague_holding(self):
        """The colleague who holds the contact now (None when nobody or the user does)."""
        holder = self.instance.assignee if self.instance.assignee_id else None
        if holder is None or self.staff_user is None or holder.pk == self.staff_user.pk:
            return None
        return holder

    def clean(self):
        data = super().clean()
        holder = self._colleague_holding()
        if (
            "assignee" in self.changed_data
            and holder is not None
            and not data.get("take_over")
            and "assignee" in data
        ):
            self.add_error(
                "take_over",
                _(
                    "%(name)s holds this contact: tick “Take over from %(name)s” to change "
                    "its assignee."
                )
                % {"name": staff_name(holder)},
            )
        if "priority" in self.changed_data and not data.get("priority_reason", "").strip():
            self.add_error("priority_reason", _("Say why the priority changes."))
        return data


CONTACT_FIELDS = ["assignee", "take_over", "priority", "priority_reason", "internal_note"]


class ContactAdminMixin:
    """What every contact kind's admin shares (upgrade requests, damage reports,
    inquiries): "assign to me" in the list, asking before taking a colleague's
    contacts; and on the change page the assignee, priority with a reason, an internal
    note and the contact's history. Every change goes through support/contacts.py and is
    recorded there.

    On the change page the contact's shared fields are saved by the services and the
    row itself is not saved: a kind with more editable fields saves them in its own
    ``save_model`` and then calls this one."""

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            base = kwargs.get("form", self.form)
            kwargs["form"] = type(
                base.__name__, (ContactChangeForm, base), {"staff_user": request.user}
            )
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is None:
            return fields
        shared = [f for f in fields if f not in CONTACT_FIELDS and f != "contact_history"]
        return [*shared, "contact_history"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        shared = {*CONTACT_FIELDS, "contact_history"}
        own = [
            (name, {**options, "fields": [f for f in options["fields"] if f not in shared]})
            for name, options in fieldsets
        ]
        triage = [
            f
            for f in CONTACT_FIELDS
            if f != "internal_note" or request.user.has_perm("support.add_contactevent")
        ]
        fieldsets = [*own, (_("Triage"), {"fields": triage})]
        if request.user.has_perm("support.view_contactevent"):
            fieldsets.append((_("Internal notes and history"), {"fields": ["contact_history"]}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        data, now = form.cleaned_data, timezone.now()
        try:
            if "assignee" in form.changed_data:
                result = assign_contacts(
                    contacts=[obj],
                    to=data["assignee"],
                    by=request.user,
                    take_over=data.get("take_over", False),
                    now=now,
                )
                for contact in result.held:  # taken by a colleague since the page was shown
                    self.message_user(
                        request,
                        _("%(name)s holds this contact now: the assignee was not changed.")
                        % {"name": staff_name(contact.assignee)},
                        messages.WARNING,
                    )
            if "priority" in form.changed_data:
                change_priority(
                    contact=obj,
                    priority=data["priority"],
                    reason=data.get("priority_reason", ""),
                    by=request.user,
                    now=now,
                )
            if data.get("internal_note", "").strip() and request.user.has_perm(
                "support.add_contactevent"
            ):
                add_note(contact=obj, text=data["internal_note"], by=request.user, now=now)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.WARNING)
        return None

    @admin.display(description=_("internal notes and history"))
    def contact_history(self, obj) -> str:
        events = list(contact_events(obj)) if obj is not None and obj.pk else []
        if not events:
            return _("Nothing yet.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li style="white-space: pre-line">{} {}: {}</li>',
                (
                    (
                        timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M"),
                        staff_name(event.by),
                        event.describe(),
                    )
                    for event in events
                ),
            ),
        )

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        """Unassigned ones are assigned at once; a colleague's are listed on a page that
        asks first, whose confirmation posts them back with ``take_over``."""
        confirmed = request.POST.get("take_over") == "yes"
        try:
            result = assign_contacts(
                contacts=queryset,
                to=request.user,
                by=request.user,
                take_over=confirmed,
                now=timezone.now(),
            )
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return None
        if result.assigned:
            count = len(result.assigned)
            self.message_user(
                request,
                ngettext(
                    "%(count)d %(items)s assigned to you.",
                    "%(count)d %(items)s assigned to you.",
                    count,
                )
                % {"count": count, "items": model_ngettext(self.opts, count)},
                messages.SUCCESS,
            )
        if not result.held:
            return None
        return TemplateResponse(
            request,
            "admin/contact_take_over.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Take over from colleagues?"),
                "held": result.held,
                "opts": self.opts,
                "action": "assign_to_me",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )
