from django.contrib.auth.views import PasswordResetView
from django.http import HttpResponseRedirect

from portal.accounts.forms import OutboxPasswordResetForm
from portal.accounts.throttling import allow_password_reset, client_ip


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
