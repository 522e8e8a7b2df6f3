"""How django-axes names the account behind a login attempt."""

import hashlib

from django.conf import settings
from django.core.cache import cache

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


PASSWORD_RESET_WINDOW_SECONDS = 60 * 60


def allow_password_reset(*, email: str, ip: str | None) -> bool:
    """Whether a password-reset request may send its e-mail: at most
    ``PASSWORD_RESET_PER_ADDRESS`` an hour for one address (in its canonical form, so
    "Sato@" and its full-width form count together) and ``PASSWORD_RESET_PER_IP`` an hour from one
    client address.

    Every request counts, for an address with an account or without, so the answer
    (and the page the person sees, which is the same either way) tells nothing about
    which addresses have accounts. Counted in the shared cache, in windows of an hour
    from a key's first request.
    """
    address = hashlib.sha256(canonical_email(email).encode()).hexdigest()
    counts = [(_count(f"password-reset:address:{address}"), settings.PASSWORD_RESET_PER_ADDRESS)]
    if ip:
        counts.append((_count(f"password-reset:ip:{ip}"), settings.PASSWORD_RESET_PER_IP))
    return all(count <= limit for count, limit in counts)


def _count(key: str) -> int:
    """One more request under ``key``; returns how many there were in the window."""
    cache.add(key, 0, timeout=PASSWORD_RESET_WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=PASSWORD_RESET_WINDOW_SECONDS)
        return 1
