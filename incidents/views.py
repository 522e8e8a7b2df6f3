"""Ground-station outages: operators declare and end them; everyone sees the status."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from incidents.models import Disaster, Outage
from incidents.services import declare_outage, end_outage
from subscriptions.access import OperatorRequiredMixin


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
