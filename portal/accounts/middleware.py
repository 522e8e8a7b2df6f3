"""Nothing opens for a session that still owes its second factor but the pages to pay it."""

from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse

from portal.accounts import mfa

# Pages a person needs before (or instead of) the second factor: the second factor
# itself, logging out, the language switch and the health check of the load balancer.
OPEN_URL_NAMES = {"mfa-setup", "mfa-verify", "logout", "set_language", "healthz", "login"}


class SecondFactorMiddleware:
    """After django-otp's OTPMiddleware: sends unverified staff to enrol or verify.

    Pages redirect (with ``next``); the API answers as for no session at all, so a session
    without its second factor is no login to the API either. Token-authenticated API
    requests carry no session and are not affected here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not self._open(request)
            and mfa.second_factor_required(request)
        ):
            if request.path.startswith("/api/"):
                request.user = AnonymousUser()
            else:
                return self._second_factor_page(request)
        return self.get_response(request)

    @staticmethod
    def _open(request) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return match.url_name in OPEN_URL_NAMES

    @staticmethod
    def _second_factor_page(request):
        name = "mfa-verify" if mfa.has_second_factor(request.user) else "mfa-setup"
        url = reverse(name)
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return redirect(url)
