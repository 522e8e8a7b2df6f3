"""Customers, their sites and the 5-year subscriptions of the satellite BCP line."""

from datetime import date, timedelta

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from subscriptions.prefectures import Prefecture

TERM_YEARS = 5

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9-]{8,15}$",
    _("Enter a phone number of digits and hyphens, e.g. 03-6279-0933."),
)
postal_code_validator = RegexValidator(
    r"^[0-9]{3}-[0-9]{4}$", _("Enter a postal code such as 368-0033.")
)


def term_end_for(service_start: date) -> date:
    """The first day without service: the fifth anniversary of the start.

    A term that started on 29 February ends on 1 March, so it is never shorter
    than five years.
    """
    try:
        return service_start.replace(year=service_start.year + TERM_YEARS)
    except ValueError:
        return date(service_start.year + TERM_YEARS, 3, 1)


class Customer(models.Model):
    """A customer organisation: a business or a local government."""

    class Kind(models.TextChoices):
        BUSINESS = "business", _("Business")
        LOCAL_GOVERNMENT = "local_government", _("Local government")

    code = models.CharField(_("customer code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.BUSINESS)
    email = models.EmailField(_("contact e-mail"), blank=True)
    phone = models.CharField(
        _("contact phone"), max_length=20, blank=True, validators=[phone_validator]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["business", "local_government"]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """An installation: the antenna and modem at one address."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="sites", verbose_name=_("customer")
    )
    name = models.CharField(_("name"), max_length=200)
    postal_code = models.CharField(
        _("postal code"), max_length=8, blank=True, validators=[postal_code_validator]
    )
    prefecture = models.CharField(_("prefecture"), max_length=2, choices=Prefecture.choices)
    address = models.CharField(_("address"), max_length=300)
    contact_phone = models.CharField(
        _("contact phone"), max_length=20, validators=[phone_validator]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["customer_id", "name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(prefecture__in=Prefecture.values),
                name="%(app_label)s_%(class)s_prefecture_jis_code",
            ),
        ]
        indexes = [
            # Disaster scopes and the admin's prefecture filter select sites by prefecture.
            models.Index(fields=["prefecture"], name="subscr_site_prefecture_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """A speed plan: the normal (slow, standby) and the upgraded (disaster) speed."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    normal_kbps = models.PositiveIntegerField(_("normal speed (kbit/s)"))
    upgraded_kbps = models.PositiveIntegerField(_("upgraded speed (kbit/s)"))

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["normal_kbps", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(normal_kbps__gt=0) & Q(upgraded_kbps__gt=models.F("normal_kbps")),
                name="%(app_label)s_%(class)s_upgrade_is_faster",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SubscriptionQuerySet(models.QuerySet):
    def for_customer(self, customer_id: int | None) -> "SubscriptionQuerySet":
        # None (a staff user) matches nothing rather than everything.
        return self.filter(site__customer_id=customer_id) if customer_id else self.none()

    def in_service(self, on: date) -> "SubscriptionQuerySet":
        return self.filter(status=Subscription.Status.ACTIVE, term_end__gt=on)

    def out_of_sync(self) -> "SubscriptionQuerySet":
        """Lines whose speed on the network is not the one the portal wants."""
        return self.filter(
            Q(desired_upgraded=True, applied_upgraded=False)
            | Q(desired_upgraded=False, applied_upgraded=True)
        )


class Subscription(models.Model):
    """A site's 5-year contract for the BCP line."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    class State(models.TextChoices):
        # What a customer reads; follows from status and dates.
        IN_SERVICE = "in_service", _("In service")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    contract_number = models.CharField(_("contract number"), max_length=30, unique=True)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("site")
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan")
    )
    service_start = models.DateField(_("service start"))
    term_end = models.DateField(
        _("term end"), help_text=_("First day without service: five years after the start.")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    static_ip = models.BooleanField(_("static IP"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    # Speed: what the portal wants (follows the upgrades app's active grants) and what
    # the satellite network last confirmed. A reconcile job moves applied towards desired;
    # desired_version numbers each change so the network can recognise a repeat.
    desired_upgraded = models.BooleanField(_("upgrade wanted"), default=False)
    desired_version = models.PositiveIntegerField(_("speed change number"), default=0)
    desired_cause = models.CharField(_("reason for the speed"), max_length=200, blank=True)
    applied_upgraded = models.BooleanField(_("upgraded on the network"), default=False)
    # A reconcile run holds the line until then while it talks to the network.
    provisioning_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["term_end", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_end__gt=models.F("service_start")),
                name="%(app_label)s_%(class)s_term_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "cancelled"]),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]
        indexes = [
            # in_service(): active subscriptions whose term has not ended, and the admin's
            # status / expiry filters.
            models.Index(fields=["status", "term_end"], name="subscr_sub_status_term_idx"),
            # The reconcile job's "lines whose network speed differs from the wanted one":
            # small while things are calm, whatever the size of the table.
            models.Index(
                fields=["id"],
                condition=Q(desired_upgraded=True, applied_upgraded=False)
                | Q(desired_upgraded=False, applied_upgraded=True),
                name="subscr_sub_out_of_sync_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.contract_number

    def save(self, *args, **kwargs) -> None:
        # The term always follows the start; extensions (issue 4) are kept apart from it.
        if self.service_start is not None:
            self.term_end = term_end_for(self.service_start)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("subscriptions:detail", args=[self.pk])

    def state_on(self, day: date) -> "Subscription.State":
        if self.status == self.Status.CANCELLED:
            return self.State.CANCELLED
        return self.State.IN_SERVICE if day < self.term_end else self.State.EXPIRED

    @property
    def applied_kbps(self) -> int:
        return self.plan.upgraded_kbps if self.applied_upgraded else self.plan.normal_kbps

    @property
    def desired_kbps(self) -> int:
        return self.plan.upgraded_kbps if self.desired_upgraded else self.plan.normal_kbps

    @property
    def last_day(self) -> date:
        """The last day with service: what a customer calls the day the term ends."""
        return self.term_end - timedelta(days=1)

    def days_left(self, day: date) -> int:
        if self.status == self.Status.CANCELLED:
            return 0
        return max((self.term_end - day).days, 0)
