import uuid
from datetime import datetime

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscriptions.prefectures import Prefecture
from upgrades.models import UpgradeRequest

MAX_ID = 2**63 - 1


class IdChoiceField(forms.ModelMultipleChoiceField):
    """Refuses a value that is not a database id before it reaches the database (an
    absurd number would overflow SQLite's integers and fail loudly)."""

    def clean(self, value):
        for item in value or []:
            if not (str(item).isascii() and str(item).isdigit()) or not 0 < int(item) <= MAX_ID:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": item},
                )
        return super().clean(value)


class UpgradeRequestForm(forms.Form):
    sites = IdChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        label=_("Sites to upgrade"),
        error_messages={"required": _("Choose at least one site.")},
    )
    reason = forms.ChoiceField(
        choices=UpgradeRequest.Reason.choices, label=_("Reason"), initial="disaster"
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].queryset = sites
        # With one site there is nothing to choose: it is ticked already.
        only = list(sites[:2])
        if len(only) == 1:
            self.fields["sites"].initial = [only[0].pk]


class DeclareDisasterForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    nationwide = forms.BooleanField(label=_("Nationwide"), required=False)
    prefectures = forms.MultipleChoiceField(
        label=_("Prefectures"),
        choices=Prefecture.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    window_days = forms.IntegerField(
        label=_("Days customers have to confirm"),
        min_value=1,
        max_value=30,
        initial=settings.BLANKET_CONFIRMATION_DAYS,
    )
    message = forms.CharField(
        label=_("Message to customers (optional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    message_en = forms.CharField(
        label=_("The same message in English (optional)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # One token per form shown: submitting it twice declares once.
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex
    )
    # Shown only once the service refused an overlap with an active disaster.
    confirm_overlap = forms.BooleanField(label=_("Declare anyway"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("nationwide") == bool(data.get("prefectures")):
            raise forms.ValidationError(_("Choose either nationwide or at least one prefecture."))
        return data


class ExtendDeadlineForm(forms.Form):
    deadline = forms.DateTimeField(
        label=_("New deadline (Japan time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def clean_deadline(self) -> datetime:
        value = self.cleaned_data["deadline"]
        return value if timezone.is_aware(value) else timezone.make_aware(value)
