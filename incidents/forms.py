import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from incidents.models import Disaster, MassMessage
from subscriptions.prefectures import Prefecture


class MassMessageForm(forms.Form):
    """What the operator writes and to whom; posted again, hidden, to confirm."""

    audience = forms.ChoiceField(
        label=_("Send to"),
        choices=MassMessage.Audience.choices,
        widget=forms.RadioSelect,
        initial=MassMessage.Audience.DISASTER,
    )
    disaster = forms.ModelChoiceField(
        label=_("Disaster"),
        queryset=Disaster.objects.active(),
        required=False,
        empty_label=_("(choose an active disaster)"),
    )
    prefectures = forms.MultipleChoiceField(
        label=_("Prefectures"),
        choices=Prefecture.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    subject_ja = forms.CharField(label=_("Subject (Japanese)"), max_length=200)
    body_ja = forms.CharField(
        label=_("Message (Japanese)"), max_length=10000, widget=forms.Textarea(attrs={"rows": 6})
    )
    subject_en = forms.CharField(
        label=_("Subject (English, optional)"), max_length=200, required=False
    )
    body_en = forms.CharField(
        label=_("Message (English, optional)"),
        max_length=10000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    # One token per form shown: confirming it twice sends once.
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex
    )

    def clean(self):
        data = super().clean()
        audience = data.get("audience")
        if audience == MassMessage.Audience.DISASTER and not data.get("disaster"):
            self.add_error("disaster", _("Choose an active disaster."))
        if audience == MassMessage.Audience.PREFECTURES and not data.get("prefectures"):
            self.add_error("prefectures", _("Choose at least one prefecture."))
        if bool((data.get("subject_en") or "").strip()) != bool(
            (data.get("body_en") or "").strip()
        ):
            self.add_error(None, _("Give both the English subject and message, or neither."))
        return data
