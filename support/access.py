"""Who may use the customer pages and API (users of a customer organisation) and the
operator pages. Here, in support, because every app's pages use it.

Every customer query is scoped with ``request.user.customer_id``; an object of another
organisation is simply not found (404), never "forbidden", so ids reveal nothing.
"""

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

CUSTOMER_PORTAL_PERMISSION = "accounts.access_customer_portal"


def is_customer_user(user) -> bool:
    return bool(
        user.is_authenticated
        and user.customer_id is not None
        and user.has_perm(CUSTOMER_PORTAL_PERMISSION)
    )


class CustomerRequiredMixin(LoginRequiredMixin):
    """Anonymous visitors go to the login page; staff and unlinked users get 403."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not is_customer_user(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class IsCustomerUser(BasePermission):
    message = _("This is for users of a customer organisation.")

    def has_permission(self, request, view) -> bool:
        return is_customer_user(request.user)


class OperatorRequiredMixin(PermissionRequiredMixin):
    """Operators only: anonymous visitors log in first, other users get 403."""

    permission_required = "accounts.access_operator_dashboard"


# DRF's own message repeats the value sent; a lone surrogate ("\ud800" in JSON) cannot
# be encoded in the answer, so a bad choice became a 500. This message repeats nothing.
CHOICE_ERRORS = {"invalid_choice": _("This is not one of the allowed values.")}
