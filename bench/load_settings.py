"""portal.settings with Django's own argon2 parameters first (100 MiB, 2 passes, 8 lanes).

Only for ``bench/load.py --hasher django``: the gunicorn it starts for that run reads
these settings, so the logins a second before the portal's own hasher can be measured
beside the ones after it, on the same machine and data.
"""

from portal.settings import *  # noqa: F403

DJANGO_ARGON2 = "django.contrib.auth.hashers.Argon2PasswordHasher"
PASSWORD_HASHERS = [DJANGO_ARGON2, *(h for h in PASSWORD_HASHERS if h != DJANGO_ARGON2)]  # noqa: F405
