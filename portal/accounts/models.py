"""Login users: customer users belong to one organisation; staff belong to none."""

import unicodedata

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

from support.indexes import UpperPatternIndex


class Role(models.TextChoices):
    """The three roles, each a group whose permissions a data migration sets."""

    CUSTOMER = "customer", _("Customer")
    SUPPORT = "support", _("Support")
    OPERATOR = "operator", _("Operator")


def canonical_email(email: str) -> str:
    """The one form of an e-mail address that logins, lockouts and storage compare.

    Unicode's NFKC then case folding: full-width letters, the Kelvin sign and the long s
    become the ASCII letters they stand for, and case stops mattering. Everything that
    decides "is this the same account" must use this and only this; a comparison of its
    own (PostgreSQL's UPPER() maps the dotless i, U+0131, to I, Python's lower() does not) lets an
    attacker reach one account under names the lockout counts apart.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).casefold())


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> "User":
        # People type their address as they remember it; the login must not care. Lower()
        # of a stored (canonical) address is that address, and it is what the unique
        # index holds, so the lookup uses it; the database's case-insensitive comparison
        # would match the dotless i (U+0131) to i and reach another address than the lockout's.
        return self.alias(email_lower=Lower("email")).get(email_lower=canonical_email(email))

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        if not email:
            raise ValueError("A user needs an e-mail address.")
        user = self.model(email=self.model.normalize_username(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    customer = models.ForeignKey(
        "subscriptions.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("customer organisation"),
        help_text=_("Set for customer users; empty for support staff and operators."),
    )
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("Whether the user can log into the support admin."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]
        permissions = [
            ("access_customer_portal", _("Can use the customer portal")),
            ("access_operator_dashboard", _("Can use the operator dashboard")),
            ("reset_second_factor", _("Can reset a colleague's second factor")),
        ]
        indexes = [
            # The admin's search: start of the address.
            UpperPatternIndex(Upper("email"), name="accounts_user_email_upper_idx"),
        ]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="%(app_label)s_%(class)s_email_ci_unique"),
            # A customer's login never opens the staff admin.
            models.CheckConstraint(
                condition=Q(customer__isnull=True) | Q(is_staff=False),
                name="%(app_label)s_%(class)s_customer_not_staff",
                violation_error_message=_(
                    "A user of a customer organisation cannot have staff status."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @classmethod
    def normalize_username(cls, username: str) -> str:
        # Called by clean() (admin forms) and create_user(): stored as logins compare it.
        return canonical_email(username) if isinstance(username, str) else username

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name or self.email

    @property
    def is_operator(self) -> bool:
        return self.has_perm("accounts.access_operator_dashboard")


class ApiToken(AbstractAuthToken):
    """A login to the REST API, for one client of one user (django-rest-knox's token).

    Only a digest of the secret is stored (the client sees the secret once, when it gets
    it). Knox keys the row by that digest; here a plain id names a token in the owner's
    list and revoke links instead, so the digest never leaves the database.
    """

    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    client = models.CharField(
        _("client"),
        max_length=100,
        blank=True,
        help_text=_("The device or program that uses the token, as its owner named it."),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} ({self.client or self.pk})"


class SecondFactorReset(models.Model):
    """Who removed whose second factor, and when (the owner enrols again at next login)."""

    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="second_factor_resets",
        verbose_name=_("user"),
    )
    reset_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reset by"),
    )
    reset_at = models.DateTimeField(_("reset at"), default=timezone.now)
    devices_removed = models.PositiveSmallIntegerField(_("devices removed"), default=0)

    class Meta:
        verbose_name = _("second-factor reset")
        verbose_name_plural = _("second-factor resets")
        ordering = ["-reset_at"]

    def __str__(self) -> str:
        return f"{self.user} ({timezone.localtime(self.reset_at):%Y-%m-%d %H:%M})"
