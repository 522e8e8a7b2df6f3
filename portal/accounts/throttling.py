"""How django-axes names the account behind a login attempt."""


def login_username(request, credentials: dict | None) -> str | None:
    """The e-mail address as the login form and the token API send it, lower-cased.

    Logins ignore case, so the lockout must too: otherwise "Tanaka@" and "tanaka@"
    would each get their own quota of guesses.
    """
    data = credentials or getattr(request, "data", None) or request.POST
    username = data.get("username")
    return username.strip().lower() if isinstance(username, str) else None


def client_ip(request) -> str | None:
    """The client's address for login throttling.

    Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, each appending to X-Forwarded-For,
    the client is that many entries from the right; entries further left were written
    by the client itself and are not trusted. Without proxies: the socket's address.
    """
    from django.conf import settings

    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
