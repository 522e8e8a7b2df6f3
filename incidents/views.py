"""Ground-station outages: operators declare and end them; everyone sees the status."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import DetailView, ListView, TemplateView

from incidents import broadcasts
from incidents.forms import MassMessageForm
from incidents.models import CheckIn, DamagePhoto, DamageReport, Disaster, MassMessage, Outage
from incidents.services import (
    PHOTO_EXTENSIONS,
    add_damage_photo,
    add_damage_photos,
    damage_progress,
    declare_outage,
    end_outage,
    issue_check_in_token,
    record_check_in,
    report_damage,
    revoke_check_in_tokens,
)
from subscriptions.models import Site
from subscriptions.prefectures import Prefecture
from support.access import CustomerRequiredMixin, OperatorRequiredMixin
from support.channels import Channel


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
    """A customer records that they verified a site's line (no JavaScript needed).

    The form is a page of its own, linked from each site on the home page: the home stays
    small for a customer with hundreds of sites (no form and CSRF token per site)."""

    def get(self, request, pk: int):
        site = _own_site(request, pk)
        return render(request, "incidents/check_in.html", {"site": site, "form": CheckInForm()})

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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; each checked further by the service."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files if item]


class DamageReportForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none(), label=gettext_lazy("Site"))
    description = forms.CharField(
        label=gettext_lazy("What happened? (tilted antenna, broken modem, …)"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
    )
    photos = MultipleFileField(
        label=gettext_lazy("Photos (optional, JPEG or PNG)"),
        required=False,
        help_text=gettext_lazy("Choose several at once; you can also add photos later."),
    )

    def __init__(self, *args, customer_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(customer_id=customer_id)


def photo_limits() -> dict:
    """The limits the forms state, from the settings the server enforces. The upload
    times are at the satellite line's 64 kbit/s uplink."""
    uplink_bytes_per_second = 64_000 / 8
    return {
        "max_mb": settings.DAMAGE_PHOTO_MAX_BYTES // (1024 * 1024),
        "max_count": settings.DAMAGE_PHOTO_MAX_COUNT,
        "max_minutes": round(settings.DAMAGE_PHOTO_MAX_BYTES / uplink_bytes_per_second / 60),
        "shrunk_kb": 300,
        "shrunk_seconds": round(300 * 1000 / uplink_bytes_per_second / 5) * 5,
    }


class DamageReportsView(CustomerRequiredMixin, TemplateView):
    template_name = "incidents/damage_reports.html"

    def _form(self, data=None, files=None):
        return DamageReportForm(data, files, customer_id=self.request.user.customer_id)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self._form())
        context["limits"] = photo_limits()
        context["reports"] = DamageReport.objects.filter(
            site__customer_id=self.request.user.customer_id
        ).select_related("site")[:50]
        return context

    def post(self, request):
        form = self._form(request.POST, request.FILES)
        if form.is_valid():
            # The text first, then each photo on its own: a refused photo is named and
            # the report and the other photos are kept (issue 13).
            try:
                report = report_damage(
                    site=form.cleaned_data["site"],
                    description=form.cleaned_data["description"],
                    photos=[],
                    channel=Channel.PORTAL,
                    by=request.user,
                    now=timezone.now(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Thank you: your report has been received."))
                refused = add_damage_photos(report=report, photos=form.cleaned_data["photos"])
                for message in refused:
                    messages.error(request, message)
                if refused:
                    messages.info(request, _("You can add photos below."))
                return redirect("incidents:damage-report", pk=report.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class DamagePhotoForm(forms.Form):
    photo = forms.FileField(
        label=gettext_lazy("Photo (JPEG or PNG)"),
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png"}),
    )


class DamagePhotoAddView(CustomerRequiredMixin, View):
    """Add one photo to one of the customer's own reports (others: 404). The plain form
    redirects back to the report; the page's script asks for JSON."""

    def post(self, request, pk: int):
        report = get_object_or_404(DamageReport, pk=pk, site__customer_id=request.user.customer_id)
        wants_json = "application/json" in request.headers.get("Accept", "")
        form = DamagePhotoForm(request.POST, request.FILES)
        try:
            if not form.is_valid():
                raise ValidationError(_("Choose a photo to add."))
            add_damage_photo(report=report, photo=form.cleaned_data["photo"])
        except ValidationError as error:
            if wants_json:
                return JsonResponse({"error": " ".join(error.messages)}, status=400)
            for message in error.messages:
                messages.error(request, message)
        else:
            if wants_json:
                return JsonResponse({"ok": True}, status=201)
            messages.success(request, _("The photo has been added."))
        return redirect("incidents:damage-report", pk=report.pk)


class DamageReportView(CustomerRequiredMixin, DetailView):
    template_name = "incidents/damage_report.html"
    context_object_name = "report"

    def get_queryset(self):
        return DamageReport.objects.filter(
            site__customer_id=self.request.user.customer_id
        ).prefetch_related("photos", "visits")

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "progress": damage_progress(self.object),
            "photo_form": DamagePhotoForm(),
            "limits": photo_limits(),
        }


class DamagePhotoView(LoginRequiredMixin, View):
    """A photo, to its customer's users and to staff only; others get 404."""

    def get(self, request, pk: int):
        photo = get_object_or_404(DamagePhoto.objects.select_related("report__site"), pk=pk)
        own = (
            request.user.customer_id is not None
            and photo.report.site.customer_id == request.user.customer_id
        )
        if not (own or request.user.has_perm("incidents.view_damagereport")):
            raise Http404
        # Served under a name of ours with the detected type's extension, as the detected
        # type (nosniff: SECURE_CONTENT_TYPE_NOSNIFF), and kept in no cache.
        response = FileResponse(
            photo.image.open("rb"),
            content_type=photo.content_type,
            filename=f"damage-{photo.report_id}-{photo.pk}.{PHOTO_EXTENSIONS[photo.content_type]}",
        )
        response["Cache-Control"] = "private, no-store"
        return response


def _mass_message_form_page(request, form: MassMessageForm, *, status: int = 200):
    return render(request, "incidents/mass_message_form.html", {"form": form}, status=status)


def _scope_from(form: MassMessageForm) -> broadcasts.Scope:
    data = form.cleaned_data
    return broadcasts.resolve_scope(
        audience=data["audience"], disaster=data["disaster"], prefectures=data["prefectures"]
    )


# The forms carry a one-time token: a cached copy (the back button) would replay a token
# already used, so these pages are never stored.
@method_decorator(never_cache, name="dispatch")
class MassMessageFormView(OperatorRequiredMixin, View):
    """GET: an empty form (``?disaster=<id>`` pre-selects a disaster's customers).
    POST: the confirmation page's "change" button brings the text back to edit."""

    def get(self, request):
        initial = {}
        disaster_id = request.GET.get("disaster", "")
        if disaster_id.isascii() and disaster_id.isdigit() and len(disaster_id) < 19:
            disaster = Disaster.objects.active().filter(pk=int(disaster_id)).first()
            if disaster is not None:
                initial = {"audience": MassMessage.Audience.DISASTER, "disaster": disaster.pk}
        return _mass_message_form_page(request, MassMessageForm(initial=initial))

    def post(self, request):
        return _mass_message_form_page(request, MassMessageForm(request.POST))


@method_decorator(never_cache, name="dispatch")
class MassMessagePreviewView(OperatorRequiredMixin, View):
    """The counts and the text, before anything is sent."""

    def post(self, request):
        form = MassMessageForm(request.POST)
        if not form.is_valid():
            return _mass_message_form_page(request, form, status=400)
        try:
            scope = _scope_from(form)
        except ValidationError as error:
            form.add_error(None, error)
            return _mass_message_form_page(request, form, status=400)
        counts = broadcasts.preview_audience(scope=scope, day=timezone.localdate())
        preview = MassMessage(**{k: form.cleaned_data[k] for k in MASS_MESSAGE_TEXT})
        subject, body = broadcasts.compose(preview)
        return render(
            request,
            "incidents/mass_message_confirm.html",
            {
                "form": form,
                "scope": scope,
                "audience_label": MassMessage.Audience(form.cleaned_data["audience"]).label,
                "prefecture_names": [Prefecture(code).label for code in scope.prefectures],
                "counts": counts,
                "subject": subject,
                "body": body,
            },
        )


MASS_MESSAGE_TEXT = ("subject_ja", "body_ja", "subject_en", "body_en")


@method_decorator(never_cache, name="dispatch")
class MassMessageSendView(OperatorRequiredMixin, View):
    def post(self, request):
        form = MassMessageForm(request.POST)
        if not form.is_valid():
            return _mass_message_form_page(request, form, status=400)
        data = form.cleaned_data
        now = timezone.now()
        try:
            message = broadcasts.send_mass_message(
                operator=request.user,
                audience=data["audience"],
                disaster=data["disaster"],
                prefectures=data["prefectures"],
                idempotency_key=data["idempotency_key"],
                now=now,
                **{k: data[k] for k in MASS_MESSAGE_TEXT},
            )
        except ValidationError as error:
            form.add_error(None, error)
            return _mass_message_form_page(request, form, status=400)
        if message.created_at != now:  # the token had been used: nothing new was sent
            messages.warning(
                request,
                _("This message was already sent at %(at)s; it was not sent again.")
                % {"at": timezone.localtime(message.created_at).strftime("%Y-%m-%d %H:%M")},
            )
        else:
            messages.success(request, _("Sent. The e-mails are being queued now."))
        return redirect(message)


class MassMessageListView(OperatorRequiredMixin, ListView):
    template_name = "incidents/mass_messages.html"
    context_object_name = "mass_messages"
    paginate_by = 50
    queryset = MassMessage.objects.select_related("created_by", "disaster")


class MassMessageView(OperatorRequiredMixin, DetailView):
    template_name = "incidents/mass_message.html"
    context_object_name = "mass_message"
    queryset = MassMessage.objects.select_related("created_by", "disaster")
