"""Ground-station outages: operators declare and end them; everyone sees the status."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from incidents.models import CheckIn, Disaster, Outage
from incidents.services import (
    declare_outage,
    end_outage,
    issue_check_in_token,
    record_check_in,
    revoke_check_in_tokens,
)
from subscriptions.access import CustomerRequiredMixin, OperatorRequiredMixin
from subscriptions.models import Site


class OutageForm(forms.Form):
    cause = forms.ChoiceField(choices=Outage.Cause.choices, label=gettext_lazy("Cause"))
    message = forms.CharField(
        label=gettext_lazy("Message to customers (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DeclareOutageView(OperatorRequiredMixin, View):
    def post(self, request):
        form = OutageForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a cause."))
            return redirect("operator-dashboard")
        try:
            declare_outage(operator=request.user, now=timezone.now(), **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The outage is shown on every page and the status page."))
        return redirect("operator-dashboard")


class EndOutageView(OperatorRequiredMixin, View):
    def post(self, request, pk: int):
        outage = get_object_or_404(Outage, pk=pk)
        if end_outage(outage=outage, operator=request.user, now=timezone.now()):
            messages.success(request, _("The outage has ended."))
        else:
            messages.error(request, _("This outage had already ended."))
        return redirect("operator-dashboard")


class StatusView(TemplateView):
    """Public, no login, tiny: read over a slow link when things go wrong."""

    template_name = "incidents/status.html"

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "disasters": Disaster.objects.active(),
            "past_outages": Outage.objects.filter(is_current__isnull=True)[:10],
            "past_disasters": Disaster.objects.filter(ended_at__isnull=False)[:10],
        }


class CheckInForm(forms.Form):
    web_ok = forms.BooleanField(label=gettext_lazy("Web pages open over the line"), required=False)
    mail_ok = forms.BooleanField(label=gettext_lazy("E-mail goes out and comes in"), required=False)
    equipment = forms.ChoiceField(
        label=gettext_lazy("Antenna and equipment"),
        choices=CheckIn.Equipment.choices,
        initial=CheckIn.Equipment.OK,
    )
    note = forms.CharField(label=gettext_lazy("Note (optional)"), required=False, max_length=500)


def _own_site(request, pk: int):
    return get_object_or_404(Site, pk=pk, customer_id=request.user.customer_id)


class CheckInView(CustomerRequiredMixin, View):
    """A customer records that they verified a site's line (no JavaScript needed)."""

    def post(self, request, pk: int):
        site = _own_site(request, pk)
        form = CheckInForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose the state of the equipment."))
            return redirect("home")
        record_check_in(
            site=site,
            source=CheckIn.Source.PORTAL,
            by=request.user,
            now=timezone.now(),
            mail_ok=form.cleaned_data["mail_ok"],
            web_ok=form.cleaned_data["web_ok"],
            equipment=form.cleaned_data["equipment"],
            note=form.cleaned_data["note"],
        )
        messages.success(
            request, _("Thank you: the check of %(site)s is recorded.") % {"site": site}
        )
        return redirect("home")


class CheckInTokenView(CustomerRequiredMixin, View):
    """Make a new secret for a site's own check-in link (shown once), revoking older ones."""

    def post(self, request, pk: int):
        site = _own_site(request, pk)
        now = timezone.now()
        revoke_check_in_tokens(site=site, now=now)
        if request.POST.get("revoke"):
            messages.success(
                request, _("The check-in link of %(site)s no longer works.") % {"site": site}
            )
            return redirect("home")
        token = issue_check_in_token(site=site, now=now)
        return render(
            request,
            "incidents/check_in_token.html",
            {
                "site": site,
                "token": token,
                "url": request.build_absolute_uri(reverse("check-in-api")),
            },
        )
