"""The second-factor pages: set up an authenticator, verify at login, recovery codes."""

from collections.abc import Callable
from typing import TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.cache import never_cache

from portal.accounts import mfa

T = TypeVar("T")


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


def _next_url(request) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return "/"


def _try_code(form: CodeForm, *, wait: int, attempt: Callable[[str], T], wrong: str) -> T | None:
    """Run ``attempt`` with the posted code unless the throttle still holds; None on failure.

    ``attempt`` raises ``SecondFactorError`` for a wrong code; the form then says ``wrong``.
    """
    if not form.is_valid():
        return None
    if wait:
        message = ngettext(
            "Too many wrong codes. Try again in %(seconds)d second.",
            "Too many wrong codes. Try again in %(seconds)d seconds.",
            wait,
        ) % {"seconds": wait}
        form.add_error("code", message)
        return None
    try:
        return attempt(form.cleaned_data["code"])
    except mfa.SecondFactorError:
        form.add_error("code", wrong)
        return None


@method_decorator(never_cache, name="dispatch")
class SetupView(LoginRequiredMixin, View):
    """First login of staff, or a customer opting in: scan or type the key, confirm a code."""

    template_name = "registration/mfa_setup.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and mfa.has_second_factor(request.user):
            # Replacing an authenticator goes through a reset, never past the current one.
            return redirect("mfa-account" if request.user.is_verified() else "mfa-verify")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self._render(request, CodeForm())

    def post(self, request):
        form = CodeForm(request.POST)
        codes = _try_code(
            form,
            wait=mfa.seconds_to_wait_for_pending(user=request.user),
            attempt=lambda code: mfa.confirm_authenticator(request=request, token=code),
            wrong=_("That code is not right. Enter the code your app shows now."),
        )
        if codes:
            context = {"codes": codes, "next": _next_url(request)}
            return render(request, "registration/mfa_recovery_codes.html", context)
        return self._render(request, form, status=400)

    def _render(self, request, form, status=200):
        device = mfa.pending_authenticator(user=request.user)
        context = {
            "form": form,
            "qr_code": mfa.qr_code_data_uri(device),
            "manual_key": mfa.manual_entry_key(device),
            "next": _next_url(request),
        }
        return render(request, self.template_name, context, status=status)


@method_decorator(never_cache, name="dispatch")
class VerifyView(LoginRequiredMixin, View):
    """At each login: a code from the authenticator app, or one of the recovery codes."""

    template_name = "registration/mfa_verify.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            if request.user.is_verified():
                return redirect(_next_url(request))
            if not mfa.has_second_factor(request.user):
                return redirect("mfa-setup")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return render(request, self.template_name, {"form": CodeForm(), "next": _next_url(request)})

    def post(self, request):
        form = CodeForm(request.POST)
        verified = _try_code(
            form,
            wait=mfa.seconds_to_wait(user=request.user),
            attempt=lambda code: mfa.verify_second_factor(request=request, token=code),
            wrong=_("That code is not right."),
        )
        if verified:
            return redirect(_next_url(request))
        context = {"form": form, "next": _next_url(request)}
        return render(request, self.template_name, context, status=400)


@method_decorator(never_cache, name="dispatch")
class AccountView(LoginRequiredMixin, View):
    """One's own second factor: turn it on (customers), or get new recovery codes."""

    template_name = "registration/mfa_account.html"

    def get(self, request):
        return self._render(request, CodeForm())

    def post(self, request):
        """Turning it off (customers only), confirmed with a current code."""
        form = CodeForm(request.POST)
        turned_off = _try_code(
            form,
            wait=mfa.seconds_to_wait(user=request.user),
            attempt=lambda code: mfa.turn_off_second_factor(request=request, token=code),
            wrong=_("That code is not right."),
        )
        if turned_off:
            messages.success(request, _("The second factor is off."))
            return redirect("mfa-account")
        return self._render(request, form, status=400)

    def _render(self, request, form, status=200):
        context = {
            "enrolled": mfa.has_second_factor(request.user),
            "may_turn_off": not mfa.must_enrol(request.user),
            "recovery_codes_left": mfa.remaining_recovery_codes(user=request.user),
            "form": form,
        }
        return render(request, self.template_name, context, status=status)


@method_decorator(never_cache, name="dispatch")
class RecoveryCodesView(LoginRequiredMixin, View):
    """New recovery codes (the old ones stop working), shown once."""

    def post(self, request):
        if not request.user.is_verified():
            # A session from before the user enrolled elsewhere: prove it first.
            return redirect("mfa-verify")
        try:
            codes = mfa.regenerate_recovery_codes(user=request.user)
        except mfa.SecondFactorError:
            return redirect("mfa-setup")
        return render(
            request, "registration/mfa_recovery_codes.html", {"codes": codes, "next": "/"}
        )
