"""API tokens: issued per client with an expiry, listed and revoked by their owner.

The tokens are django-rest-knox's (``knox.auth.TokenAuthentication`` checks them); the
model is ``ApiToken`` in this app, which adds the client's name. A token is a login, so
nobody but its owner sees even its list, and a new password revokes them all.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import ApiToken, User


def issue_api_token(*, user: User, client: str = "") -> tuple[ApiToken, str]:
    """A new token for ``client``, valid ``API_TOKEN_TTL_DAYS``; returns it and its secret.

    The secret is returned here only: the database keeps its digest. A user holds at
    most ``API_TOKENS_PER_USER`` live tokens, so a script that logs in on every run
    fills no table (and every API call, which looks at the caller's tokens, stays cheap).
    """
    with transaction.atomic():
        # Serialise one user's logins, so two at once cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        ApiToken.objects.filter(user=user, expiry__lte=now).delete()
        if ApiToken.objects.filter(user=user).count() >= settings.API_TOKENS_PER_USER:
            raise ValidationError(
                _(
                    "This account already has %(limit)d API tokens: revoke one it no "
                    "longer needs (API access page) before getting a new one."
                ),
                code="too_many_tokens",
                params={"limit": settings.API_TOKENS_PER_USER},
            )
        return ApiToken.objects.create(user=user, client=client.strip())


def live_api_tokens(*, user: User):
    """The user's tokens that still work, newest first."""
    return ApiToken.objects.filter(
        Q(expiry__gt=timezone.now()) | Q(expiry__isnull=True), user=user
    ).order_by("-created", "-pk")


def revoke_api_token(*, user: User, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if the user has no such token."""
    deleted, _by_model = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return bool(deleted)


def revoke_all_api_tokens(*, user: User) -> int:
    """Log the user out of the API everywhere; returns how many tokens were revoked."""
    deleted, _by_model = ApiToken.objects.filter(user=user).delete()
    return deleted


class RevokeApiTokensOnPasswordChange:
    """Not a rule for passwords: Django's hook for "this user's password was changed".

    Django calls ``password_changed`` on every configured password validator when a user
    is saved after ``set_password`` — the password change and reset forms, the admin's
    password form, ``changepassword`` — and not when a login merely re-hashes the same
    password. Whoever knew the old password may hold tokens made with it: revoke them.
    """

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            revoke_all_api_tokens(user=user)

    def get_help_text(self) -> str:
        return _("A new password revokes every API token of the account.")
