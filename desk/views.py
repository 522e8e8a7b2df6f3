"""The customer's side of the desk (their inquiries and each conversation), the
staff's one queue over every contact kind, and the page of one customer's whole story."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from desk.calls import (
    choose_call_customer,
    pending_blanket_lines,
    record_blanket_answer_from_call,
    record_callback,
    record_damage_report_from_call,
    record_inquiry_from_call,
    record_upgrade_request_from_call,
)
from desk.customer_page import customer_story
from desk.mailbox import PDF
from desk.models import Call, Inquiry, InquiryAttachment
from desk.queue import KINDS, QueueFilters, QueueRow, queue
from desk.services import customer_follow_up, open_inquiry
from incidents.services import PHOTO_EXTENSIONS
from subscriptions.models import Site
from support.access import CustomerRequiredMixin
from support.admin import MAX_ID
from support.channels import Channel
from support.models import ContactPriority
from upgrades.models import UpgradeRequest


class InquiryForm(forms.Form):
    # Labels are lazy: the form class is built once, the language per request.
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    body = forms.CharField(
        label=gettext_lazy("Your question"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    site = forms.ModelChoiceField(
        queryset=None, required=False, label=gettext_lazy("Site (optional)"), empty_label="—"
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites

    def clean_site(self):
        # A forged id beyond the database's integers must be a form error, not a 500.
        raw = self.data.get("site", "")
        if raw and (not (str(raw).isascii() and str(raw).isdigit()) or int(raw) > MAX_ID):
            raise forms.ValidationError(self.fields["site"].error_messages["invalid_choice"])
        return self.cleaned_data["site"]


class FollowUpForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Your message"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


def customer_inquiries(customer_id: int):
    return Inquiry.objects.for_customer(customer_id).select_related("site")


class InquiriesView(CustomerRequiredMixin, TemplateView):
    """The customer's inquiries, newest first, and the form to open one."""

    template_name = "desk/inquiries.html"

    def _form(self, data=None) -> InquiryForm:
        sites = Site.objects.filter(customer_id=self.request.user.customer_id).order_by(
            "name", "pk"
        )
        return InquiryForm(data, sites=sites)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self._form())
        context["inquiries"] = customer_inquiries(self.request.user.customer_id)[:50]
        return context

    def post(self, request, *args, **kwargs):
        form = self._form(request.POST)
        if form.is_valid():
            try:
                inquiry = open_inquiry(
                    customer=request.user.customer,
                    subject=form.cleaned_data["subject"],
                    body=form.cleaned_data["body"],
                    site=form.cleaned_data["site"],
                    channel=Channel.PORTAL,
                    by=request.user,
                    now=timezone.now(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    _("Your inquiry #%(number)s has been received.") % {"number": inquiry.pk},
                )
                return redirect("desk:inquiry", pk=inquiry.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class InquiryDetailView(CustomerRequiredMixin, TemplateView):
    """One inquiry's conversation as the customer sees it (no internal notes)."""

    template_name = "desk/inquiry_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        inquiry = get_object_or_404(
            customer_inquiries(self.request.user.customer_id), pk=self.kwargs["pk"]
        )
        context["inquiry"] = inquiry
        context["conversation"] = (
            inquiry.messages.filter(internal=False)
            .select_related("author")
            .prefetch_related("attachments")
        )
        context.setdefault("form", FollowUpForm())
        return context

    def post(self, request, *args, **kwargs):
        form = FollowUpForm(request.POST)
        if form.is_valid():
            inquiry = get_object_or_404(
                customer_inquiries(request.user.customer_id), pk=kwargs["pk"]
            )
            try:
                customer_follow_up(
                    inquiry=inquiry,
                    by=request.user,
                    body=form.cleaned_data["body"],
                    now=timezone.now(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Your message has been sent to support."))
                return redirect("desk:inquiry", pk=inquiry.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class CustomerStoryView(PermissionRequiredMixin, TemplateView):
    """Support staff: everything about one customer organisation on one page.

    Anonymous visitors log in first; a user without the staff's view permissions of
    everything shown (a customer) gets 403.
    """

    permission_required = (
        "subscriptions.view_customer",
        "subscriptions.view_subscription",
        "subscriptions.view_invoice",
        "upgrades.view_speedgrant",
        "upgrades.view_upgraderequest",
        "incidents.view_damagereport",
        "incidents.view_fieldvisit",
        "incidents.view_checkin",
        "desk.view_inquiry",
        "desk.view_call",
    )
    template_name = "desk/customer.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["story"] = customer_story(self.kwargs["pk"])
        return context


class QueueFilterForm(forms.Form):
    """The queue's filters and sort, read from the query string (a plain GET form)."""

    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("open", gettext_lazy("Open")), ("all", gettext_lazy("All, closed too"))],
    )
    priority = forms.ChoiceField(
        label=gettext_lazy("Priority"),
        required=False,
        choices=[("", gettext_lazy("Any priority")), *ContactPriority.choices],
    )
    after_hours = forms.BooleanField(label=gettext_lazy("After hours"), required=False)
    mine = forms.BooleanField(label=gettext_lazy("Assigned to me"), required=False)
    unassigned = forms.BooleanField(
        label=pgettext_lazy("queue filter", "Unassigned"), required=False
    )
    overdue = forms.BooleanField(
        label=gettext_lazy("Past its first-response target"), required=False
    )
    sort = forms.ChoiceField(
        label=gettext_lazy("Sort"),
        required=False,
        choices=[
            ("priority", gettext_lazy("Priority (high first, then oldest)")),
            ("oldest", gettext_lazy("Oldest first")),
            ("newest", gettext_lazy("Newest first")),
            ("sla", gettext_lazy("First-response target (soonest first)")),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", gettext_lazy("Every kind")), *KINDS.items()]

    def filters(self) -> QueueFilters:
        """The filters asked for; a value not understood is left at its default (the
        form's errors say which)."""
        self.is_valid()
        data = {
            name: value
            for name, value in getattr(self, "cleaned_data", {}).items()
            if name not in self.errors
        }
        return QueueFilters(
            kind=data.get("kind") or "",
            open_only=(data.get("status") or "open") == "open",
            priority=data.get("priority") or "",
            after_hours=bool(data.get("after_hours")),
            mine=bool(data.get("mine")),
            unassigned=bool(data.get("unassigned")),
            overdue=bool(data.get("overdue")),
            sort=data.get("sort") or "priority",
        )


@method_decorator(never_cache, name="dispatch")
class QueueView(PermissionRequiredMixin, TemplateView):
    """Staff only (support and operators): every contact of every kind in one list,
    filtered and sorted as the query string says, page by page without a cap."""

    # It lists every kind and links to each kind's admin page.
    permission_required = (
        "upgrades.view_upgraderequest",
        "incidents.view_damagereport",
        "desk.view_inquiry",
    )
    template_name = "desk/queue.html"
    paginate_by = 25
    # How often the page refreshes its list (static/desk/refresh.js), in seconds.
    refresh_seconds = 30

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        form = QueueFilterForm(self.request.GET)
        filters = form.filters()
        rows = queue(filters=filters, user_id=self.request.user.pk, now=now)
        page = Paginator(rows, self.paginate_by).get_page(self.request.GET.get("page"))
        context.update(
            form=form,
            filters=filters,
            page=page,
            rows=[QueueRow.from_values(row, now=now) for row in page.object_list],
            loaded_at=now,
            refresh_seconds=self.refresh_seconds,
        )
        return context


class AttachmentView(LoginRequiredMixin, View):
    """A file that came with an inquiry's e-mail, to that customer's users and to staff
    only; others get 404 (as incidents.views.DamagePhotoView)."""

    def get(self, request, pk: int):
        attachment = get_object_or_404(InquiryAttachment.objects.select_related("inquiry"), pk=pk)
        customer_id = attachment.inquiry.customer_id
        own = request.user.customer_id is not None and customer_id == request.user.customer_id
        if not (own or request.user.has_perm("desk.view_inquiry")):
            raise Http404
        extension = (
            "pdf" if attachment.content_type == PDF else (PHOTO_EXTENSIONS[attachment.content_type])
        )
        # Under a name of ours with the detected type's extension, as the detected type
        # (nosniff), and kept in no cache.
        response = FileResponse(
            attachment.file.open("rb"),
            content_type=attachment.content_type,
            filename=f"inquiry-{attachment.inquiry_id}-{attachment.pk}.{extension}",
        )
        response["Cache-Control"] = "private, no-store"
        return response


class CallbackForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("What came of the callback"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )


class CallCustomerForm(forms.Form):
    customer = forms.TypedChoiceField(label=gettext_lazy("Whose call was it?"), coerce=int)

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = [(c.pk, f"{c.name} ({c.code})") for c in candidates]


class CallBlanketAnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label=gettext_lazy("The customer's answer"),
        choices=[("keep", gettext_lazy("Keep fast")), ("decline", gettext_lazy("Back to normal"))],
    )


class CallInquiryForm(forms.Form):
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    body = forms.CharField(
        label=gettext_lazy("What the customer asked"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
    )


class CallUpgradeForm(forms.Form):
    sites = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Sites"),
        queryset=Site.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.ChoiceField(label=gettext_lazy("Reason"), choices=UpgradeRequest.Reason.choices)
    note = forms.CharField(
        label=gettext_lazy("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, call, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].queryset = Site.objects.filter(customer_id=call.customer_id)


class CallDamageForm(forms.Form):
    site = forms.ModelChoiceField(label=gettext_lazy("Site"), queryset=Site.objects.none())
    description = forms.CharField(
        label=gettext_lazy("What is damaged"), widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, call, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(customer_id=call.customer_id)


@method_decorator(never_cache, name="dispatch")
class CallLogView(PermissionRequiredMixin, TemplateView):
    """Staff: every phone call, newest first, page by page; ``?callback=1`` keeps the
    callback list (missed calls nobody has called back yet), ``?customer=<id>`` one
    customer's calls (linked from the customer's page)."""

    permission_required = "desk.view_call"
    template_name = "desk/calls.html"
    paginate_by = 25

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        callback_only = self.request.GET.get("callback") == "1"
        calls = Call.objects.select_related("customer").prefetch_related("answered_by")
        if callback_only:
            calls = calls.filter(status=Call.Status.MISSED)
        customer_id = self.request.GET.get("customer", "")
        if customer_id.isdigit() and int(customer_id) <= MAX_ID:
            calls = calls.filter(customer_id=int(customer_id))
        page = Paginator(calls.order_by("-received_at", "-pk"), self.paginate_by).get_page(
            self.request.GET.get("page")
        )
        context.update(page=page, callback_only=callback_only)
        return context


@method_decorator(never_cache, name="dispatch")
class CallDetailView(PermissionRequiredMixin, TemplateView):
    """Staff: one call: who called, its events; record the callback, say whose call it
    was when several customers have the number, record what the customer asked."""

    permission_required = "desk.view_call"
    template_name = "desk/call_detail.html"

    def get_call(self) -> Call:
        return get_object_or_404(
            Call.objects.select_related(
                "customer", "callback_by", "inquiry", "upgrade_request", "damage_report"
            ),
            pk=self.kwargs["pk"],
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        call = kwargs.get("call") or self.get_call()
        candidates = list(call.candidates.order_by("name", "pk"))
        context.update(
            call=call,
            candidates=candidates,
            events=call.events.all(),
            answered_by=list(call.answered_by.all()),
            callback_form=kwargs.get("callback_form") or CallbackForm(),
            customer_form=kwargs.get("customer_form")
            or CallCustomerForm(
                candidates=candidates,
                initial={"customer": call.customer_id} if call.customer_id else None,
            ),
            inquiry_form=kwargs.get("inquiry_form") or CallInquiryForm(),
            upgrade_form=kwargs.get("upgrade_form") or CallUpgradeForm(call=call),
            damage_form=kwargs.get("damage_form") or CallDamageForm(call=call),
            blanket_form=kwargs.get("blanket_form") or CallBlanketAnswerForm(),
            pending_blanket_lines=pending_blanket_lines(call, now=timezone.now()),
        )
        return context

    def post(self, request, *args, **kwargs):
        if not request.user.has_perm("desk.change_call"):
            raise PermissionDenied
        call = self.get_call()
        action = request.POST.get("action")
        now = timezone.now()
        forms_by_action = {
            "callback": ("callback_form", CallbackForm(request.POST)),
            "customer": (
                "customer_form",
                CallCustomerForm(request.POST, candidates=call.candidates.all()),
            ),
            "inquiry": ("inquiry_form", CallInquiryForm(request.POST)),
            "upgrade": ("upgrade_form", CallUpgradeForm(request.POST, call=call)),
            "damage": ("damage_form", CallDamageForm(request.POST, call=call)),
            "blanket": ("blanket_form", CallBlanketAnswerForm(request.POST)),
        }
        if action not in forms_by_action:
            return redirect("desk:call", pk=call.pk)
        name, form = forms_by_action[action]
        if form.is_valid():
            data = form.cleaned_data
            try:
                if action == "callback":
                    record_callback(call=call, by=request.user, note=data["note"], now=now)
                    messages.success(request, _("The callback is recorded."))
                elif action == "customer":
                    choose_call_customer(call=call, customer_id=data["customer"])
                    messages.success(request, _("The call is the chosen customer's."))
                elif action == "upgrade":
                    record_upgrade_request_from_call(
                        call=call,
                        by=request.user,
                        sites=list(data["sites"]),
                        reason=data["reason"],
                        note=data["note"],
                        now=now,
                    )
                    messages.success(request, _("The upgrade request is recorded from this call."))
                elif action == "blanket":
                    lines = record_blanket_answer_from_call(
                        call=call, by=request.user, keep=data["answer"] == "keep", now=now
                    )
                    messages.success(
                        request,
                        ngettext(
                            "The customer's answer is recorded for %(count)s line.",
                            "The customer's answer is recorded for %(count)s lines.",
                            lines,
                        )
                        % {"count": lines},
                    )
                elif action == "damage":
                    record_damage_report_from_call(
                        call=call,
                        by=request.user,
                        site=data["site"],
                        description=data["description"],
                        now=now,
                    )
                    messages.success(request, _("The damage report is recorded from this call."))
                else:
                    inquiry = record_inquiry_from_call(
                        call=call,
                        by=request.user,
                        subject=data["subject"],
                        body=data["body"],
                        now=now,
                    )
                    messages.success(
                        request,
                        _("Inquiry #%(number)s is recorded from this call.")
                        % {"number": inquiry.pk},
                    )
                return redirect("desk:call", pk=call.pk)
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
        return self.render_to_response(self.get_context_data(call=call, **{name: form}))
