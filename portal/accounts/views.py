"""The account's own pages beside Django's: API access, and the rate-limited password
reset."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import PasswordResetView
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from portal.accounts.forms import OutboxPasswordResetForm
from portal.accounts.throttling import allow_password_reset, client_ip
from portal.accounts.tokens import live_api_tokens, revoke_all_api_tokens, revoke_api_token


class ThrottledPasswordResetView(PasswordResetView):
    """Django's reset page, its e-mails rate-limited per address and per client.

    Over the limit the person is sent to the same "check your mail" page as always: the
    page must not tell whether the address has an account, nor that it was limited.
    """

    form_class = OutboxPasswordResetForm

    def form_valid(self, form):
        if not allow_password_reset(email=form.cleaned_data["email"], ip=client_ip(self.request)):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class ApiTokensView(LoginRequiredMixin, TemplateView):
    """The user's API tokens (client, issued, expiry), each with a button that revokes it.

    Only the owner sees or revokes a token; another user's token id is "not found".
    """

    template_name = "accounts/api_tokens.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            tokens=live_api_tokens(user=self.request.user),
            api_token_ttl_days=settings.API_TOKEN_TTL_DAYS,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if "all" in request.POST:
            count = revoke_all_api_tokens(user=request.user)
            messages.success(request, _("All API tokens revoked: %(count)d.") % {"count": count})
            return redirect("api-tokens")
        token_id = request.POST.get("token", "")
        if not (token_id.isascii() and token_id.isdigit()) or not revoke_api_token(
            user=request.user, token_id=int(token_id)
        ):
            raise Http404
        messages.success(request, _("API token revoked: clients that use it must log in again."))
        return redirect("api-tokens")
