"""Customer pages for upgrades, and the operators' disaster actions. Thin: parse, call a
service, redirect with a message."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import DetailView, TemplateView

from support.access import CustomerRequiredMixin, OperatorRequiredMixin
from support.channels import Channel
from upgrades import selectors
from upgrades.forms import DeclareDisasterForm, ExtendDeadlineForm, UpgradeRequestForm
from upgrades.models import BlanketUpgrade, SpeedGrant, UpgradeRequest
from upgrades.services.blanket import (
    declare_disaster,
    end_disaster,
    extend_deadline,
    respond_to_grants,
)
from upgrades.services.notices import read_response_token
from upgrades.services.requests import cancel_upgrade_request, request_upgrade


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


class UpgradesView(CustomerRequiredMixin, TemplateView):
    """The customer's upgrades: ask for one, see requests and grants, answer pending ones."""

    template_name = "upgrades/upgrades.html"

    def _form(self, data=None) -> UpgradeRequestForm:
        sites = selectors.sites_that_can_be_upgraded(
            customer_id=self.request.user.customer_id, today=timezone.localdate()
        )
        return UpgradeRequestForm(data, sites=sites)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer_id = self.request.user.customer_id
        context.setdefault("form", self._form())
        context["upgrade_requests"] = selectors.requests_for_customer(customer_id=customer_id)[:20]
        context["grants"] = selectors.grants_for_customer(customer_id=customer_id)[:50]
        return context

    def post(self, request, *args, **kwargs):
        form = self._form(request.POST)
        if form.is_valid():
            try:
                upgrade_request = request_upgrade(
                    customer=request.user.customer,
                    sites=list(form.cleaned_data["sites"]),
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    channel=Channel.PORTAL,
                    requested_by=request.user,
                    now=timezone.now(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    _("Your request #%(number)s has been received. Support will handle it now.")
                    % {"number": upgrade_request.pk},
                )
                return redirect("upgrades:request", pk=upgrade_request.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class UpgradeRequestDetailView(CustomerRequiredMixin, DetailView):
    template_name = "upgrades/request_detail.html"
    context_object_name = "upgrade_request"

    def get_queryset(self):
        return selectors.requests_for_customer(customer_id=self.request.user.customer_id)


class CancelUpgradeRequestView(CustomerRequiredMixin, View):
    def post(self, request, pk: int):
        upgrade_request = get_object_or_404(
            UpgradeRequest, pk=pk, customer_id=request.user.customer_id
        )
        try:
            cancel_upgrade_request(
                upgrade_request=upgrade_request, by=request.user, now=timezone.now()
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, _("Your request has been cancelled."))
        return redirect("upgrades:request", pk=pk)


class RespondView(CustomerRequiredMixin, View):
    """Keep or decline one pending grant (``grant`` posted) or all of them."""

    def post(self, request):
        if request.POST.get("keep") not in {"0", "1"}:
            messages.error(request, _("Choose to keep the upgrade or to return to normal."))
            return HttpResponseRedirect(_safe_next(request))
        keep = request.POST["keep"] == "1"
        grants = SpeedGrant.objects.for_customer(request.user.customer_id)
        if request.POST.get("grant") != "all":
            try:
                grants = grants.filter(pk=int(request.POST.get("grant", "")))
            except ValueError:
                messages.error(request, _("Choose an upgrade to answer."))
                return redirect("upgrades:index")
        try:
            answered = respond_to_grants(
                grants=grants,
                keep=keep,
                by=request.user,
                channel=Channel.PORTAL,
                now=timezone.now(),
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, _answer_message(keep, len(answered)))
        return HttpResponseRedirect(_safe_next(request))


def _answer_message(keep: bool, count: int) -> str:
    if keep:
        return _("Thank you. The upgrade stays on for %(count)s line(s).") % {"count": count}
    return _("Thank you. %(count)s line(s) return to normal speed.") % {"count": count}


def _safe_next(request) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("upgrades:index")


class RespondByLinkView(View):
    """The signed links in the e-mail: no login; one line, or all of the customer's lines
    in a blanket upgrade; keep, decline, or (a line's own link) choose on the page.

    GET only shows the question: mail scanners open links to check them, and a GET that
    changed the speed would answer for the customer.
    """

    template_name = "upgrades/respond_by_link.html"

    def _read(self, token: str):
        try:
            grants, keep = read_response_token(token, max_age=timedelta(days=60))
        except signing.BadSignature:
            return None, None, []
        lines = list(
            grants.select_related("subscription__site", "blanket_upgrade__disaster").order_by(
                "subscription__site__name", "subscription__contract_number"
            )
        )
        if not lines or not all(line.blanket_upgrade_id for line in lines):
            return None, None, []
        return grants, keep, lines

    def _render(self, request, lines, keep, status=200, **extra):
        waiting = [line for line in lines if line.state == SpeedGrant.State.PENDING]
        context = {
            "lines": lines,
            "waiting": waiting,
            "keep": keep,
            "disaster": lines[0].blanket_upgrade.disaster,
            "deadline": lines[0].blanket_upgrade.deadline,
            **extra,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, token: str):
        grants, keep, lines = self._read(token)
        if grants is None:
            return render(request, self.template_name, {"invalid": True}, status=404)
        return self._render(request, lines, keep)

    def post(self, request, token: str):
        grants, keep, lines = self._read(token)
        if grants is None:
            return render(request, self.template_name, {"invalid": True}, status=404)
        if keep is None:  # a line's own link: the button says which answer
            answer = request.POST.get("answer")
            if answer not in {"keep", "decline"}:
                return self._render(
                    request, lines, keep, status=400, error=_("Choose keep or return to normal.")
                )
            keep = answer == "keep"
        try:
            answered = respond_to_grants(
                grants=grants, keep=keep, by=None, channel=Channel.EMAIL_LINK, now=timezone.now()
            )
        except ValidationError as error:
            # A second click, or a colleague with the same e-mail: already answered so.
            same = SpeedGrant.State.ACTIVE if keep else SpeedGrant.State.DECLINED
            if all(line.state == same for line in lines):
                return self._render(request, lines, keep, done=True, already=True)
            return self._render(request, lines, keep, status=400, error=_error_text(error))
        return self._render(request, answered, keep, done=True)


def _declare_page(request, form: DeclareDisasterForm, *, status: int = 200):
    return render(request, "upgrades/declare_disaster.html", {"declare_form": form}, status=status)


# The form carries a one-time token: a copy from a cache (the back button, a proxy) would
# replay a token already used, so the page is never stored.
@method_decorator(never_cache, name="dispatch")
class DeclareDisasterView(OperatorRequiredMixin, View):
    def post(self, request):
        form = DeclareDisasterForm(request.POST)
        if not form.is_valid():
            return _declare_page(request, form, status=400)
        data = form.cleaned_data
        now = timezone.now()
        try:
            blanket = declare_disaster(
                operator=request.user,
                title=data["title"],
                nationwide=data["nationwide"],
                prefectures=data["prefectures"],
                message=data["message"],
                message_en=data["message_en"],
                window_days=data["window_days"],
                idempotency_key=data["idempotency_key"],
                confirm_overlap=data["confirm_overlap"],
                now=now,
            )
        except ValidationError as error:
            form.add_error(None, error)
            return _declare_page(request, form, status=400)
        if blanket.created_at != now:  # the token had been used: nothing new was declared
            messages.warning(
                request,
                _("This form was already submitted: disaster “%(title)s” was declared at %(at)s.")
                % {
                    "title": blanket.disaster.title,
                    "at": timezone.localtime(blanket.disaster.declared_at).strftime(
                        "%Y-%m-%d %H:%M"
                    ),
                },
            )
        else:
            messages.success(request, _("Declared. Lines in scope are being upgraded now."))
        return redirect("upgrades:disaster", pk=blanket.pk)


@method_decorator(never_cache, name="dispatch")
class DeclareDisasterFormView(OperatorRequiredMixin, View):
    def get(self, request):
        return _declare_page(request, DeclareDisasterForm())


class DisasterView(OperatorRequiredMixin, DetailView):
    template_name = "upgrades/disaster.html"
    context_object_name = "blanket"
    queryset = BlanketUpgrade.objects.select_related("disaster", "disaster__declared_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["progress"] = selectors.blanket_progress(blanket=self.object)
        context["stage"] = self.object.stage_on(timezone.now())
        context["extend_form"] = ExtendDeadlineForm(
            initial={"deadline": timezone.localtime(self.object.deadline)}
        )
        context["events"] = self.object.events.select_related("by")
        context["refresh_seconds"] = settings.DASHBOARD_REFRESH_SECONDS
        return context


class DisasterProgressView(OperatorRequiredMixin, View):
    """JSON for the dashboard's refresh, a few hundred bytes."""

    def get(self, request, pk: int):
        blanket = get_object_or_404(BlanketUpgrade, pk=pk)
        progress = selectors.blanket_progress(blanket=blanket)
        return JsonResponse(
            {
                "status": blanket.status,
                "stage": blanket.stage_on(timezone.now()),
                "deadline": blanket.deadline.isoformat(),
                **progress.as_dict(),
            }
        )


class ExtendDeadlineView(OperatorRequiredMixin, View):
    def post(self, request, pk: int):
        blanket = get_object_or_404(BlanketUpgrade, pk=pk)
        form = ExtendDeadlineForm(request.POST)
        if form.is_valid():
            try:
                extend_deadline(
                    blanket=blanket,
                    new_deadline=form.cleaned_data["deadline"],
                    operator=request.user,
                    now=timezone.now(),
                )
            except ValidationError as error:
                messages.error(request, _error_text(error))
            else:
                messages.success(request, _("The deadline has been extended."))
        else:
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect("upgrades:disaster", pk=pk)


class EndDisasterView(OperatorRequiredMixin, View):
    """GET asks (what ending does to the lines), POST with ``confirm`` ends."""

    def _blanket(self, pk: int) -> BlanketUpgrade:
        return get_object_or_404(BlanketUpgrade.objects.select_related("disaster"), pk=pk)

    def get(self, request, pk: int):
        blanket = self._blanket(pk)
        if blanket.status == BlanketUpgrade.Status.ENDED:
            messages.info(request, _("This disaster has already ended."))
            return redirect("upgrades:disaster", pk=pk)
        return render(
            request,
            "upgrades/end_disaster.html",
            {
                "blanket": blanket,
                "preview": selectors.ending_preview(blanket=blanket, now=timezone.now()),
            },
        )

    def post(self, request, pk: int):
        blanket = self._blanket(pk)
        if request.POST.get("confirm") != "yes":
            # Never ended by one click: a bare POST (an old page, a stray form) only asks.
            return redirect("upgrades:end", pk=pk)
        try:
            end_disaster(
                disaster=blanket.disaster,
                operator=request.user,
                now=timezone.now(),
                message=request.POST.get("message", "")[:5000],
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(
                request,
                _(
                    "The disaster has ended. Its lines return to normal speed, except those "
                    "another upgrade keeps fast."
                ),
            )
        return redirect("upgrades:disaster", pk=pk)
