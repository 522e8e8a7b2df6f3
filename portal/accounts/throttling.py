"""How django-axes names the account behind a login attempt."""

from django.conf import settings

from portal.accounts.models import canonical_email

# django-axes stores the name in a column of this length (AccessAttempt.username); a
# longer one made PostgreSQL refuse the row and every login view answer 500.
AXES_USERNAME_MAX_LENGTH = 255


def login_username(request, credentials: dict | None) -> str | None:
    """The e-mail address as the login form and the token API send it, in the one
    canonical form the account lookup uses (``canonical_email``).

    Whatever reaches an account must count against that account's quota: otherwise
    "Sato@", "sato@", its full-width form and "sato@" with a long s (U+017F) would each
    get their own quota of guesses. A name longer than any address (254) names no account;
    it is cut to what axes can store, so every view that posts credentials answers with
    its usual "wrong e-mail or password" instead of a database error.
    """
    data = credentials or getattr(request, "data", None) or request.POST
    username = data.get("username")
    if not isinstance(username, str):
        return None
    return canonical_email(username)[:AXES_USERNAME_MAX_LENGTH]


def client_ip(request) -> str | None:
    """The client's address for login throttling.

    Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, each appending to X-Forwarded-For,
    the client is that many entries from the right; entries further left were written
    by the client itself and are not trusted. Without proxies: the socket's address.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
