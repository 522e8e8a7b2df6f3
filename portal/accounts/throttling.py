"""How django-axes names the account behind a login attempt."""


def login_username(request, credentials: dict | None) -> str | None:
    """The e-mail address as the login form and the token API send it, lower-cased.

    Logins ignore case, so the lockout must too: otherwise "Tanaka@" and "tanaka@"
    would each get their own quota of guesses.
    """
    data = credentials or getattr(request, "data", None) or request.POST
    username = data.get("username")
    return username.strip().lower() if isinstance(username, str) else None
