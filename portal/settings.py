"""Settings for the BCP Portal: one module, configured by environment variables.

Two modes, chosen by ``PORTAL_ENV`` and nothing else:

* ``embedded`` (the default): runs on a machine with nothing but Python. SQLite and a
  Celery broker on the filesystem under ``var/``, console e-mail, DEBUG on, a secret
  key generated once into ``var/secret_key``. ``DATABASE_URL`` and ``CELERY_BROKER_URL``
  may still point at real servers (CI does so).
* ``production``: PostgreSQL, Redis, SMTP, DEBUG off, HTTPS-only cookies and HSTS.
  ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and ``CELERY_BROKER_URL`` are
  required; the process refuses to start without them.

Every variable is listed with its default in README.md, "Configuration".
"""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

PORTAL_ENV = env.str("PORTAL_ENV", default="embedded")
if PORTAL_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured(f"PORTAL_ENV must be 'embedded' or 'production', not {PORTAL_ENV!r}")
PRODUCTION = PORTAL_ENV == "production"

if not PRODUCTION:
    VAR_DIR.mkdir(exist_ok=True)


def _embedded_secret_key() -> str:
    # A fresh machine gets its own key, kept across restarts so sessions survive.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when PORTAL_ENV=production")
    return value


# --- Core -----------------------------------------------------------------------------

DEBUG = not PRODUCTION
SECRET_KEY = _required("SECRET_KEY") if PRODUCTION else _embedded_secret_key()
ALLOWED_HOSTS = (
    env.list("ALLOWED_HOSTS", default=[])
    if PRODUCTION
    else env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when PORTAL_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "drf_standardized_errors",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Ours, top of the dependency direction first.
    "portal",
    "portal.accounts",
    "desk",
    "upgrades",
    "incidents",
    "subscriptions",
    "support",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # HTML and JSON compressed for the slow satellite line. Django pads each compressed
    # answer with random bytes against BREACH-style attacks, and CSRF tokens are masked
    # per response; static files come precompressed from WhiteNoise.
    "django.middleware.gzip.GZipMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body (CSRF reads the form): a body too large is refused
    # unread (413), in the visitor's language.
    "portal.request_limits.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks the session's user verified by a second factor (request.user.is_verified()),
    # then ours sends staff (and customers who opted in) to enrol or verify before any page.
    "django_otp.middleware.OTPMiddleware",
    "portal.accounts.middleware.SecondFactorMiddleware",
    "portal.private_pages.PrivateCacheControlMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the backend into a page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------

DATABASES = {
    "default": (
        env.db_url("DATABASE_URL")
        if PRODUCTION or env.str("DATABASE_URL", default="")
        else {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "portal.sqlite3"}
    )
}
if PRODUCTION and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL when PORTAL_ENV=production")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No parallel workers for the portal's queries by default: its pages read a page of
    # rows by an index, and on a small server serving many requests a parallel plan
    # takes cores from the others and was slower (the lines filtered by prefecture at
    # 1,000,000 lines, bench/pages.py: 0.24 s parallel, 0.06 s not).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "options",
        "-c max_parallel_workers_per_gather="
        + str(env.int("DATABASE_PARALLEL_WORKERS_PER_QUERY", default=0)),
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker started by a test sees the test database;
    # one per test run, so two runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts, passwords, login throttling ---------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out address never reaches the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

PASSWORD_HASHERS = [
    # argon2id at OWASP's 19 MiB, 2 passes, 1 lane instead of Django's 100 MiB and 8 lanes:
    # a fraction of the CPU per login on a disaster morning (why: portal/accounts/hashers.py).
    "portal.accounts.hashers.OwaspArgon2PasswordHasher",
    # Kept so hashes made before a change of default still verify; a hash whose hasher or
    # parameters differ from the first one's is re-made at the user's next login.
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule: Django's hook for a changed password, which revokes the API tokens.
    {"NAME": "portal.accounts.tokens.RevokeApiTokensOnPasswordChange"},
]

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
# Lock the pair, so one attacker cannot lock every user of a town hall's shared address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Django's login form and DRF's token view both post the e-mail as "username".
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "portal.accounts.throttling.login_username"
# Behind reverse proxies every login comes from the proxy's address; with the number of
# proxies set, the client's own address is read from X-Forwarded-For instead.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "portal.accounts.throttling.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Password-reset e-mails an hour, per address and per client address (see
# portal.accounts.throttling.allow_password_reset); further requests see the same page.
PASSWORD_RESET_PER_ADDRESS = env.int("PASSWORD_RESET_PER_ADDRESS", default=3)
PASSWORD_RESET_PER_IP = env.int("PASSWORD_RESET_PER_IP", default=10)

# Second factor (django-otp): TOTP apps, with single-use recovery codes as the fallback.
OTP_TOTP_ISSUER = "BCP Portal"
# Each wrong code doubles the wait before the next attempt on that device (1, 2, 4 … s).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# The admin never shows TOTP secrets or recovery codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
MFA_RECOVERY_CODES = 10

# --- Internationalisation and time ----------------------------------------------------

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Tokyo"  # shown to people; stored values are UTC (USE_TZ)
USE_TZ = True

# --- Static files ---------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Collected (production, and `make run`, which runs collectstatic first): hashed names,
# brotli and gzip copies, cached for a year by browsers. Not collected (tests, a bare
# runserver): served straight from the app folders, no collectstatic needed.
STATIC_COLLECTED = env.bool("STATIC_COLLECTED", default=PRODUCTION)
if not PRODUCTION:
    STATIC_ROOT = VAR_DIR / "staticfiles"
    STATIC_ROOT.mkdir(exist_ok=True)
if not STATIC_COLLECTED:
    WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
# Every URL the portal writes has the hash in it, so only the hashed copies are kept and
# compressed; source maps are for developers' tools and are not compressed either. That
# halves collectstatic's time (most of `make run`'s start on a fresh machine).
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "portal.storage.CollectedStaticFilesStorage"
            if STATIC_COLLECTED
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Customers' photos (damage reports): stored outside any public URL.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private")
DAMAGE_PHOTO_MAX_BYTES = env.int("DAMAGE_PHOTO_MAX_BYTES", default=5 * 1024 * 1024)
DAMAGE_PHOTO_MAX_COUNT = 5
# Well below Pillow's decompression-bomb limit (89 MP warns, 179 MP refuses); a phone's
# camera takes 12 to 50 MP.
DAMAGE_PHOTO_MAX_PIXELS = env.int("DAMAGE_PHOTO_MAX_PIXELS", default=50_000_000)
# The largest request body read at all: a damage report's photos and its text. Larger
# bodies are refused with 413 before they are read (portal/request_limits.py); the
# reverse proxy should refuse them even earlier (README, "Production deployment").
MAX_REQUEST_BODY_BYTES = env.int(
    "MAX_REQUEST_BODY_BYTES", default=DAMAGE_PHOTO_MAX_BYTES * DAMAGE_PHOTO_MAX_COUNT + 1024 * 1024
)
# Form fields (everything but files) of one request; the longest text anyone sends is a
# 10,000-character mass message.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# Files up to this size stay in memory, larger ones go to a temporary file on disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "portal.request_limits.BodyLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- E-mail ---------------------------------------------------------------------------

# EMAIL_URL carries backend, host, port, user and password in one value, e.g.
# smtp+tls://user:password@smtp.example.jp:587
globals().update(
    env.email_url("EMAIL_URL", default="smtp://localhost:25" if PRODUCTION else "consolemail://")
)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="BCP Portal <noreply@bcp-portal.example>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# A mail server that hangs must not hold a sender for ever (seconds per SMTP operation).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# The outbox (support/outbox.py): every e-mail is a row, sent by Celery in batches over
# one SMTP connection; a failed attempt is retried after OUTBOX_RETRY_SECONDS, doubling
# up to an hour, and shown to staff as failed after OUTBOX_MAX_ATTEMPTS.
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=200)
# Renewed every 30 s while a batch is sent: a sender that dies leaves its batch's rest
# for at most this long.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=120)
OUTBOX_RETRY_SECONDS = env.int("OUTBOX_RETRY_SECONDS", default=30)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=12)
# One sender run sends for at most this long, then hands over to the next run.
OUTBOX_TASK_SECONDS = env.int("OUTBOX_TASK_SECONDS", default=240)
# How many workers send at once when many e-mails are queued together (a disaster).
OUTBOX_PARALLEL_SENDERS = env.int("OUTBOX_PARALLEL_SENDERS", default=2)

# --- Security (production) ------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from the portal's own files, never
# inline, so injected markup cannot run. Inline styles stay allowed: the progress bars'
# widths, the admin's widgets and Swagger UI's page set them, and a style runs no code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading is hard to undo: on by default only because check --deploy asks for it;
    # turn it off until the domain is really meant for the browsers' preload lists.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
        # Only behind a proxy that sets this header itself; otherwise clients could forge it.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz is polled by load balancers over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- REST API -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: DRF answers a missing or bad credential with the first class's
        # WWW-Authenticate challenge (401); with the session class first it was a 403.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # One error envelope for every API error, documented per operation in the schema
    # (drf-standardized-errors); portal.api's handler class adds the domain's errors.
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    # The client's address for the API throttles, read as for logins (TRUSTED_PROXY_COUNT);
    # unset, DRF would take a client's own X-Forwarded-For and one client could rotate it.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "portal.api.DomainExceptionHandler",
    # The 4xx a client can cause; a 500 is a defect, not part of the contract.
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "415", "429"],
    "ERROR_SCHEMAS": {"400": "portal.api.ErrorResponse400Serializer"},
}
_ERRORS = "drf_standardized_errors.openapi_serializers"
# API tokens (django-rest-knox, portal/accounts/tokens.py): one per client, stored as a
# digest, valid API_TOKEN_TTL_DAYS from issue; the owner lists and revokes them, and a
# password change or reset revokes them all.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
if API_TOKEN_TTL_DAYS < 1:
    raise ImproperlyConfigured("API_TOKEN_TTL_DAYS must be at least 1")
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 (a model name, not a secret)
# knox's migrations would make a table for knox's own token model, which ApiToken
# replaces: without them Django makes none (it never creates a swapped-out model).
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",  # the scheme clients already send
}
# A user may hold this many live tokens: a script that logs in on every run must not
# fill the table (and each API call looks at all of the caller's tokens).
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=20)
SPECTACULAR_SETTINGS = {
    "TITLE": "BCP Portal API",
    "DESCRIPTION": "Customer and operator API of the satellite BCP line portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Self-hosted Swagger UI: no CDN, it has to load over the slow satellite line too.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "PrefectureEnum": "subscriptions.prefectures.Prefecture",
        "SubscriptionStatusEnum": "subscriptions.models.Subscription.Status",
        "InvoiceStatusEnum": "subscriptions.models.Invoice.Status",
        "UpgradeRequestStatusEnum": "upgrades.models.UpgradeRequest.Status",
        "BlanketUpgradeStatusEnum": "upgrades.models.BlanketUpgrade.Status",
        # The error envelope's enums (drf-standardized-errors' documented setup).
        "ValidationErrorEnum": f"{_ERRORS}.ValidationErrorEnum.choices",
        "ClientErrorEnum": f"{_ERRORS}.ClientErrorEnum.choices",
        "ServerErrorEnum": f"{_ERRORS}.ServerErrorEnum.choices",
        "ErrorCode401Enum": f"{_ERRORS}.ErrorCode401Enum.choices",
        "ErrorCode403Enum": f"{_ERRORS}.ErrorCode403Enum.choices",
        "ErrorCode404Enum": f"{_ERRORS}.ErrorCode404Enum.choices",
        "ErrorCode405Enum": f"{_ERRORS}.ErrorCode405Enum.choices",
        "ErrorCode406Enum": f"{_ERRORS}.ErrorCode406Enum.choices",
        "ErrorCode415Enum": f"{_ERRORS}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_ERRORS}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_ERRORS}.ErrorCode500Enum.choices",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# --- The service ----------------------------------------------------------------------

# Where links in e-mails point (the signed confirm / decline links).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Subscriptions and extensions (FAQ Q4).
EXPIRING_SOON_DAYS = env.int("EXPIRING_SOON_DAYS", default=90)
RENEWAL_REMINDER_DAYS = env.int("RENEWAL_REMINDER_DAYS", default=90)
# The issuer printed on invoices (Japan's qualified-invoice system: name and the
# registration number "T" + 13 digits).
# Issued invoices never change, so production refuses to start with the placeholders.
INVOICE_ISSUER_NAME = (
    _required("INVOICE_ISSUER_NAME")
    if PRODUCTION
    else env.str("INVOICE_ISSUER_NAME", default="BCP衛星通信株式会社")
)
INVOICE_REGISTRATION_NUMBER = (
    _required("INVOICE_REGISTRATION_NUMBER")
    if PRODUCTION
    else env.str("INVOICE_REGISTRATION_NUMBER", default="T1234567890123")
)
if not re.fullmatch(r"T\d{13}", INVOICE_REGISTRATION_NUMBER):
    raise ImproperlyConfigured("INVOICE_REGISTRATION_NUMBER is 'T' and 13 digits")
INVOICE_ISSUER_ADDRESS = env.str("INVOICE_ISSUER_ADDRESS", default="東京都千代田区")
INVOICE_PDF_FONT = env.str(
    "INVOICE_PDF_FONT", default="/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"
)
INVOICE_BANK_ACCOUNT = env.str(
    "INVOICE_BANK_ACCOUNT", default="○○銀行 本店営業部 普通 1234567 ビーシーピーエイセイツウシン(カ"
)

# Blanket disaster upgrades (FAQ Q2): customers who do not confirm within this many days
# are returned to normal speed.
BLANKET_CONFIRMATION_DAYS = env.int("BLANKET_CONFIRMATION_DAYS", default=3)
BLANKET_REMINDER_HOURS = env.int("BLANKET_REMINDER_HOURS", default=24)
BLANKET_CHUNK_SIZE = env.int("BLANKET_CHUNK_SIZE", default=5000)
REVERT_CHUNK_SIZE = env.int("REVERT_CHUNK_SIZE", default=5000)
REVERT_INTERVAL_SECONDS = env.int("REVERT_INTERVAL_SECONDS", default=120)
# The disaster page counts a disaster's lines still waiting for the network exactly while
# at most this many lines wait anywhere; above it, it shows an estimate ("about").
PROGRESS_EXACT_UP_TO = env.int("PROGRESS_EXACT_UP_TO", default=5000)

# Provisioning: how wanted speeds reach the satellite network's management system.
# "recording" only records the change (embedded mode, demos); "http" posts batches to
# PROVISIONING_URL and retries with backoff until the network answers.
PROVISIONING_BACKEND = env.str("PROVISIONING_BACKEND", default="recording")
PROVISIONING_URL = env.str("PROVISIONING_URL", default="")
PROVISIONING_TOKEN = env.str("PROVISIONING_TOKEN", default="")
PROVISIONING_TIMEOUT_SECONDS = env.float("PROVISIONING_TIMEOUT_SECONDS", default=10.0)
PROVISIONING_BATCH_SIZE = env.int("PROVISIONING_BATCH_SIZE", default=500)
PROVISIONING_LEASE_SECONDS = env.int("PROVISIONING_LEASE_SECONDS", default=120)
# A batch the network fails or times out is set aside for a backoff that doubles with each
# failure in a row, from BASE up to MAX, of which a random part up to half is taken off
# (so batches set aside together do not all come back at once): an outage costs each
# batch one POST per backoff, however many commits ask for a reconcile. A run gives up
# after MAX_FAILED_BATCHES failed batches (the network is then likely down for all) and
# claims no new batch after RUN_SECONDS, well inside the worker's 540 s soft time limit.
PROVISIONING_BACKOFF_BASE_SECONDS = env.int("PROVISIONING_BACKOFF_BASE_SECONDS", default=15)
PROVISIONING_BACKOFF_MAX_SECONDS = env.int("PROVISIONING_BACKOFF_MAX_SECONDS", default=600)
PROVISIONING_MAX_FAILED_BATCHES = env.int("PROVISIONING_MAX_FAILED_BATCHES", default=2)
PROVISIONING_RUN_SECONDS = env.int("PROVISIONING_RUN_SECONDS", default=240)
RECONCILE_INTERVAL_SECONDS = env.int("RECONCILE_INTERVAL_SECONDS", default=60)
if not 0 < PROVISIONING_BACKOFF_BASE_SECONDS <= PROVISIONING_BACKOFF_MAX_SECONDS:
    raise ImproperlyConfigured("PROVISIONING_BACKOFF_BASE_SECONDS must be > 0 and <= MAX")
if PROVISIONING_MAX_FAILED_BATCHES < 1:
    raise ImproperlyConfigured("PROVISIONING_MAX_FAILED_BATCHES must be at least 1")
if PROVISIONING_BACKEND not in {"recording", "http"}:
    raise ImproperlyConfigured("PROVISIONING_BACKEND must be 'recording' or 'http'")
if PROVISIONING_BACKEND == "http" and not PROVISIONING_URL:
    raise ImproperlyConfigured("PROVISIONING_URL must be set for PROVISIONING_BACKEND=http")

# How often the disaster page refreshes its counts.
DASHBOARD_REFRESH_SECONDS = env.int("DASHBOARD_REFRESH_SECONDS", default=10)

SUPPORT_PHONE = env.str("SUPPORT_PHONE", default="03-6279-0933")
# The business calendar (support/calendar.py): working hours in Japan time, weekdays
# (1 = Monday … 7 = Sunday), and the year-end closure as (month, day) pairs.
SUPPORT_HOURS = tuple(env.list("SUPPORT_HOURS", default=["09:00", "18:00"]))
SUPPORT_WORKDAYS = frozenset(
    int(d) for d in env.list("SUPPORT_WORKDAYS", default=["1", "2", "3", "4", "5"])
)
SUPPORT_YEAR_END_CLOSURE = ((12, 29), (1, 3))
# Optional: after-hours alerts are also POSTed as JSON {"text": …} to a chat/SMS gateway.
SUPPORT_ONCALL_WEBHOOK_URL = env.str("SUPPORT_ONCALL_WEBHOOK_URL", default="")
# The phone system's shared secret for POST /api/v1/cti/events/ (desk/cti_api.py), sent
# as "Authorization: Token <CTI_TOKEN>". Empty: the endpoint refuses every call (403).
CTI_TOKEN = env.str("CTI_TOKEN", default="")
# First-response targets (support/sla.py), in minutes: business time for a contact
# received in working hours, clock time after hours.
SUPPORT_FIRST_RESPONSE_MINUTES = {
    "high": env.int("SUPPORT_FIRST_RESPONSE_HIGH_MINUTES", default=30),
    "normal": env.int("SUPPORT_FIRST_RESPONSE_NORMAL_MINUTES", default=240),
}
# An after-hours contact with no assignee and no response after this many minutes
# reminds the staff on call, then after the second number tells the whole support group
# (desk/escalation.py).
SUPPORT_ESCALATE_ONCALL_MINUTES = env.int("SUPPORT_ESCALATE_ONCALL_MINUTES", default=15)
SUPPORT_ESCALATE_GROUP_MINUTES = env.int("SUPPORT_ESCALATE_GROUP_MINUTES", default=30)
# An SMS / chat gateway that also receives every mass message (JSON POST), once; empty: none.
MASS_MESSAGE_WEBHOOK_URL = env.str("MASS_MESSAGE_WEBHOOK_URL", default="")
# Readiness checks (FAQ Q1): a site not checked for this many days is asked to, monthly.
READINESS_STALE_DAYS = env.int("READINESS_STALE_DAYS", default=90)
# After a disaster ends, its sites are asked to check their equipment this much later.
READINESS_RECHECK_AFTER_HOURS = env.int("READINESS_RECHECK_AFTER_HOURS", default=24)
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@ipstar.ne.jp")
# The support mailbox (issue 12): fetched over IMAP by beat's "fetch-support-mailbox"
# and turned into inquiries (desk/mailbox.py). An empty host turns the fetch off.
SUPPORT_MAILBOX_HOST = env.str("SUPPORT_MAILBOX_HOST", default="")
SUPPORT_MAILBOX_PORT = env.int("SUPPORT_MAILBOX_PORT", default=993)
SUPPORT_MAILBOX_USER = env.str("SUPPORT_MAILBOX_USER", default="")
SUPPORT_MAILBOX_PASSWORD = env.str("SUPPORT_MAILBOX_PASSWORD", default="")
SUPPORT_MAILBOX_FOLDER = env.str("SUPPORT_MAILBOX_FOLDER", default="INBOX")
SUPPORT_MAILBOX_PROCESSED_FOLDER = env.str(
    "SUPPORT_MAILBOX_PROCESSED_FOLDER", default="INBOX/Processed"
)
# True: IMAPS (TLS from the first byte, port 993); False: STARTTLS on port 143. TLS
# either way, the server's certificate verified (against SUPPORT_MAILBOX_CA_FILE when
# set, e.g. a company CA; else the system's).
SUPPORT_MAILBOX_SSL = env.bool("SUPPORT_MAILBOX_SSL", default=True)
SUPPORT_MAILBOX_CA_FILE = env.str("SUPPORT_MAILBOX_CA_FILE", default="")
SUPPORT_MAILBOX_TIMEOUT = env.int("SUPPORT_MAILBOX_TIMEOUT", default=30)
# At most this many messages per run (the next run, a minute later, takes the rest).
SUPPORT_MAILBOX_BATCH = env.int("SUPPORT_MAILBOX_BATCH", default=50)
# An e-mail's attachments: images by the damage-photo rules, PDFs up to this size each.
SUPPORT_MAILBOX_ATTACHMENT_MAX_BYTES = env.int(
    "SUPPORT_MAILBOX_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024
)

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_URL = (
    _required("CELERY_BROKER_URL")
    if PRODUCTION
    else env.str("CELERY_BROKER_URL", default="filesystem://")
)
# No task runs for ever: a stuck one is stopped (soft: an exception it can clean up
# after; hard: the process is replaced). Every long job works in chunks and resumes where
# it stopped (a 1,000,000-line declaration takes about 80 s), and the e-mail senders hand
# over after OUTBOX_TASK_SECONDS, below these limits.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=9 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=10 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message a worker took and did not acknowledge (acks_late: it died) goes back to
    # the queue after this long. Longer than the hard time limit, so a running task is
    # never handed to a second worker; short enough that it comes back in minutes, not
    # kombu's default hour (the beat sweepers usually catch up sooner still).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int(
            "CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 5 * 60
        )
    }
elif CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: messages are files, so web, worker and beat share
    # them without a server. The folders must exist before any of them starts, and the
    # control folder must be absolute (its default is relative to the working directory).
    _broker_dir = env.path("CELERY_FILESYSTEM_DIR", default=VAR_DIR / "celery")
    for _sub in ("queue", "processed", "control"):
        Path(_broker_dir, _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(Path(_broker_dir, "queue")),
        "data_folder_out": str(Path(_broker_dir, "queue")),
        "processed_folder": str(Path(_broker_dir, "processed")),
        "control_folder": str(Path(_broker_dir, "control")),
        "store_processed": False,
        "polling_interval": 0.1,
    }
# A web request publishing after its commit gives up on a dead broker within about a
# second (the follow-up waits in the database, support/followups.py), not after minutes.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Follow-ups (support/followups.py): the work a commit asks for is a row of that commit,
# sent to the broker after it and again by beat every FOLLOWUP_RELAY_SECONDS while it
# waits. A message out for longer than FOLLOWUP_REDELIVER_SECONDS without starting (lost
# with a broker's restart) is sent again; a run holds its rows FOLLOWUP_LEASE_SECONDS at
# a time (long runs renew it between chunks), so a dead worker's work starts again about
# that long after it died. A failed run waits FOLLOWUP_BACKOFF_BASE_SECONDS, doubling to
# FOLLOWUP_BACKOFF_MAX_SECONDS, with jitter.
FOLLOWUP_RELAY_SECONDS = env.int("FOLLOWUP_RELAY_SECONDS", default=20)
FOLLOWUP_REDELIVER_SECONDS = env.int("FOLLOWUP_REDELIVER_SECONDS", default=90)
FOLLOWUP_LEASE_SECONDS = env.int("FOLLOWUP_LEASE_SECONDS", default=120)
FOLLOWUP_BACKOFF_BASE_SECONDS = env.int("FOLLOWUP_BACKOFF_BASE_SECONDS", default=10)
FOLLOWUP_BACKOFF_MAX_SECONDS = env.int("FOLLOWUP_BACKOFF_MAX_SECONDS", default=300)
# One queue for everything; a test names its own so that no other worker takes its tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True  # tasks leave rows behind, not results
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message to redo
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks must not hoard messages
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Every minute: proves beat and a worker are alive (shown on /healthz and the
    # operator dashboard). A missing heartbeat means scheduled jobs are not running.
    "heartbeat": {"task": "portal.tasks.record_heartbeat", "schedule": 60.0},
    # Every 20 s: send to the broker the follow-ups it has not taken yet (it was down,
    # lost them, or their worker died); README, "Reliability".
    "relay-follow-ups": {
        "task": "support.tasks.relay_follow_ups",
        "schedule": float(FOLLOWUP_RELAY_SECONDS),
    },
    # Every few minutes: return to normal the blanket grants nobody confirmed in time.
    "revert-expired-grants": {
        "task": "upgrades.tasks.revert_expired_grants",
        "schedule": float(REVERT_INTERVAL_SECONDS),
    },
    # Every five minutes: finish blanket upgrades a lost message or a crash left half
    # done (granting lines, or ending the grants of an ended disaster).
    "resume-blanket-upgrades": {
        "task": "upgrades.tasks.resume_blanket_upgrades",
        "schedule": 300.0,
    },
    # Every few minutes: remind customers whose confirmation deadline is near.
    "remind-pending-grants": {
        "task": "upgrades.tasks.remind_pending_grants",
        "schedule": 300.0,
    },
    # Every five minutes: e-mail the notices of a revert or ending run that died before
    # handing them to the outbox.
    "queue-stranded-notices": {
        "task": "upgrades.tasks.queue_stranded_notices",
        "schedule": 300.0,
    },
    # Every minute: the safety net of provisioning. Changes are pushed on commit; this
    # catches whatever a network outage or a lost message left behind.
    "reconcile-speeds": {
        "task": "upgrades.tasks.reconcile_speeds",
        "schedule": float(RECONCILE_INTERVAL_SECONDS),
    },
    # Every minute: the outbox's safety net. Senders are asked for after every commit
    # that queues e-mails; this sends what a lost message, a broker outage or a mail
    # server's backoff left queued.
    "send-queued-emails": {"task": "support.tasks.send_queued_emails", "schedule": 60.0},
    # Every five minutes: finish queueing the mass messages a lost task message or a dead
    # worker left half queued (queueing resumes after the last organisation done).
    "resume-mass-messages": {
        "task": "incidents.tasks.resume_mass_messages",
        "schedule": 300.0,
    },
    # Every minute: an after-hours contact nobody picked up reminds the staff on call
    # after 15 minutes and reaches the whole support group after 30 (each once); a
    # minute's delay on those is what the minute schedule costs.
    "escalate-unpicked-contacts": {
        "task": "desk.tasks.escalate_unpicked_contacts",
        "schedule": 60.0,
    },
    # Every minute: the support mailbox's new e-mails become inquiries or follow-ups
    # (desk/mailbox.py); does nothing while SUPPORT_MAILBOX_HOST is empty.
    "fetch-support-mailbox": {"task": "desk.tasks.fetch_support_mailbox", "schedule": 60.0},
    # On the 1st of every month at 10:00 Japan time: ask customers to check the sites
    # that have not checked their line lately (FAQ Q1, Q5).
    "readiness-reminders": {
        "task": "incidents.tasks.remind_unchecked_sites",
        "schedule": crontab(day_of_month=1, hour=10, minute=0),
    },
    # Every hour: a day after a disaster ended, ask the sites in its scope to check their
    # equipment again (FAQ Q5 (2)); derived from the disaster, so nothing is lost.
    "recheck-after-disasters": {
        "task": "incidents.tasks.ask_to_recheck_after_disasters",
        "schedule": 3600.0,
    },
    # Every morning at 9:00 Japan time: tell customers whose term ends soon (FAQ Q4).
    "renewal-reminders": {
        "task": "subscriptions.tasks.send_renewal_reminders",
        "schedule": crontab(hour=9, minute=0),
    },
}
# --- Cache ----------------------------------------------------------------------------

# The API throttles count here, so the cache is shared by every web process (per-process
# memory would give each of 4 workers its own quota). Production: Redis, by default the
# broker's; embedded: a table of the database, so `make run` needs no server.
CACHE_URL = env.str(
    "CACHE_URL",
    default=CELERY_BROKER_URL
    if PRODUCTION and CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else "",
)
if PRODUCTION and not CACHE_URL:
    raise ImproperlyConfigured("CACHE_URL (Redis) must be set when the broker is not Redis")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "portal",
        }
        if CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
        }
    )
}

# Beyond this age the heartbeat counts as missing.
HEARTBEAT_STALE_AFTER = timedelta(minutes=env.int("HEARTBEAT_STALE_MINUTES", default=5))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
