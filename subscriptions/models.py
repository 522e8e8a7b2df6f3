"""Customers, their sites and the 5-year subscriptions of the satellite BCP line."""

import random
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import connections, models, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from subscriptions.phones import to_e164
from subscriptions.prefectures import Prefecture
from support.indexes import UpperPatternIndex

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


def e164_field() -> models.CharField:
    """A phone's E.164 form beside the number as typed, kept by the model's save() and
    indexed: a caller's number (desk/calls.py) and the admin's phone search match it with
    one equality. Empty when there is no phone; a database default for raw inserts."""
    return models.CharField(
        _("contact phone (E.164)"),
        max_length=16,
        blank=True,
        default="",
        db_default="",
        editable=False,
        db_index=True,
    )


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
    phone_e164 = e164_field()
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
        indexes = [
            # The admin's list, in its default order.
            models.Index(fields=["name", "id"], name="subscr_cust_name_id_idx"),
            # The admin's search and the customer pickers: start of the code or name.
            UpperPatternIndex(Upper("code"), name="subscr_cust_code_upper_idx"),
            UpperPatternIndex(Upper("name"), name="subscr_cust_name_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # The matching form always follows the typed number, wherever it is saved.
        self.phone_e164 = to_e164(self.phone) or ""
        if kwargs.get("update_fields") is not None and "phone" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "phone_e164"}
        super().save(*args, **kwargs)


class ContactPhone(models.Model):
    """A phone number a contact gave (a request, an inquiry), beside its E.164 form kept
    by save(): the admin's phone search finds it however either was typed."""

    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    contact_phone_e164 = e164_field()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.contact_phone_e164 = to_e164(self.contact_phone) or ""
        if kwargs.get("update_fields") is not None and "contact_phone" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "contact_phone_e164"}
        super().save(*args, **kwargs)


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
    contact_phone_e164 = e164_field()
    antenna_serial = models.CharField(_("antenna serial number"), max_length=50, blank=True)
    modem_serial = models.CharField(_("modem serial number"), max_length=50, blank=True)
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
            # The admin's list, in its default order.
            models.Index(fields=["customer", "name", "id"], name="subscr_site_order_idx"),
            # The admin's search and the site pickers: start of the name.
            UpperPatternIndex(Upper("name"), name="subscr_site_name_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.contact_phone_e164 = to_e164(self.contact_phone) or ""
        if kwargs.get("update_fields") is not None and "contact_phone" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "contact_phone_e164"}
        super().save(*args, **kwargs)


class UserPhone(models.Model):
    """A number a customer user calls from: a user may register several (desk, mobile).
    Staff keep them in the admin; a call from one is that user's organisation's."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="phones",
        verbose_name=_("user"),
        limit_choices_to={"customer__isnull": False},
    )
    number = models.CharField(_("phone number"), max_length=20, validators=[phone_validator])
    label = models.CharField(
        _("label"), max_length=50, blank=True, help_text=_("e.g. mobile, office")
    )
    # Kept by save(), as Customer.phone_e164.
    number_e164 = models.CharField(
        _("phone number (E.164)"), max_length=16, editable=False, db_index=True
    )

    class Meta:
        verbose_name = _("customer user's phone")
        verbose_name_plural = _("customer users' phones")
        ordering = ["user_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "number_e164"], name="%(app_label)s_%(class)s_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, **kwargs) -> None:
        self.number_e164 = to_e164(self.number) or ""
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.number_e164 = to_e164(self.number) or ""
        if not self.number_e164:
            raise ValidationError({"number": _("Enter a phone number that can be dialled.")})
        twin = UserPhone.objects.filter(user_id=self.user_id, number_e164=self.number_e164)
        if self.user_id and twin.exclude(pk=self.pk).exists():
            raise ValidationError({"number": _("This user already has this number.")})


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
        """Lines with service on ``on``: started, and within the term or a paid extension.

        A line signed for a later start is not in service yet: a disaster declared
        today neither upgrades it nor asks it to check in.
        """
        return self.filter(
            Q(term_end__gt=on) | Q(extended_until__gte=on),
            status=Subscription.Status.ACTIVE,
            service_start__lte=on,
        )

    def out_of_sync(self) -> "SubscriptionQuerySet":
        """Lines whose speed on the network is not the one the portal wants."""
        return self.filter(
            Q(speed__desired_upgraded=True, speed__applied_upgraded=False)
            | Q(speed__desired_upgraded=False, speed__applied_upgraded=True)
        )

    def bulk_create(self, objs, *args, **kwargs):
        """Every line has its speed row (LineSpeed), also when made in bulk."""
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            speeds = [LineSpeed(subscription=line) for line in created if line.pk is not None]
            if len(speeds) < len(created):
                # Conflicts ignored or updated: those lines' ids are only in the database.
                speeds += [
                    LineSpeed(subscription_id=pk)
                    for pk in self.filter(
                        contract_number__in=[line.contract_number for line in created],
                        speed__isnull=True,
                    ).values_list("pk", flat=True)
                ]
            LineSpeed.objects.using(self.db).bulk_create(speeds, ignore_conflicts=True)
        return created


class Subscription(models.Model):
    """A site's 5-year contract for the BCP line."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    class State(models.TextChoices):
        # What a customer reads; follows from status, dates and paid extensions.
        ACTIVE = "active", _("In service")
        EXPIRING_SOON = "expiring_soon", _("Expiring soon")
        EXTENDED = "extended", _("Extended")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    IN_SERVICE_STATES = (State.ACTIVE, State.EXPIRING_SOON, State.EXTENDED)

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
    # The last day of service bought by a paid extension (set only by a payment).
    extended_until = models.DateField(_("extended until"), null=True, blank=True)
    static_ip = models.BooleanField(_("static IP"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    # Its speed, wanted and applied, is kept apart: LineSpeed (``speed``).

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
            # The admin's list, in its default order, and its term-end year filter.
            models.Index(fields=["term_end", "id"], name="subscr_sub_term_end_idx"),
            # The admin's search: start of the contract number.
            UpperPatternIndex(Upper("contract_number"), name="subscr_sub_contract_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.contract_number

    def save(self, *args, **kwargs) -> None:
        # The term always follows the start; extensions (issue 4) are kept apart from it.
        if self.service_start is not None:
            self.term_end = term_end_for(self.service_start)
        if not self._state.adding:
            super().save(*args, **kwargs)
            return
        # A new line starts at normal speed, wanted and applied: its speed row with it.
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
            LineSpeed.objects.using(self._state.db).create(subscription=self)

    def get_absolute_url(self) -> str:
        return reverse("subscriptions:detail", args=[self.pk])

    @property
    def service_end(self) -> date:
        """The first day without service, extensions included."""
        if self.extended_until and self.extended_until >= self.term_end:
            return self.extended_until + timedelta(days=1)
        return self.term_end

    def state_on(self, day: date) -> "Subscription.State":
        if self.status == self.Status.CANCELLED:
            return self.State.CANCELLED
        if day >= self.service_end:
            return self.State.EXPIRED
        if day >= self.term_end:
            return self.State.EXTENDED
        if (self.service_end - day).days <= settings.EXPIRING_SOON_DAYS:
            return self.State.EXPIRING_SOON
        return self.State.ACTIVE

    @property
    def applied_kbps(self) -> int:
        return self.plan.upgraded_kbps if self.speed.applied_upgraded else self.plan.normal_kbps

    @property
    def desired_kbps(self) -> int:
        return self.plan.upgraded_kbps if self.speed.desired_upgraded else self.plan.normal_kbps

    @property
    def last_day(self) -> date:
        """The last day with service: what a customer calls the day the term ends."""
        return self.service_end - timedelta(days=1)

    @property
    def term_last_day(self) -> date:
        return self.term_end - timedelta(days=1)

    def days_left(self, day: date) -> int:
        if self.status == self.Status.CANCELLED:
            return 0
        return max((self.service_end - day).days, 0)


MAX_ANNUAL_YEN = 10_000_000


class LineSpeedQuerySet(models.QuerySet):
    def out_of_sync(self) -> "LineSpeedQuerySet":
        """Lines whose speed on the network is not the one the portal wants."""
        return self.filter(
            Q(desired_upgraded=True, applied_upgraded=False)
            | Q(desired_upgraded=False, applied_upgraded=True)
        )

    def due_for_provisioning(self, now: datetime) -> "LineSpeedQuerySet":
        """Out-of-sync lines no reconcile run holds and no backoff sets aside at ``now``."""
        return self.out_of_sync().filter(
            Q(provisioning_lease_until__isnull=True) | Q(provisioning_lease_until__lt=now)
        )


class LineSpeed(models.Model):
    """A line's speed: the one the portal wants and the one the network last confirmed.

    One row per line, made with it (``Subscription.save``, ``bulk_create``). Kept apart
    from the wide subscription row for the disaster path: a nationwide declaration, its
    reconcile and its revert each change a million speeds. Here an update writes this
    narrow row and at most two small index entries (the key, and the out-of-sync index
    when the line leaves sync); on the subscription it wrote a new entry in each of that
    table's seven indexes. The table keeps free room in its pages (``fillfactor``, set by
    its migration on PostgreSQL) so that updates which touch no indexed column (a
    reconcile run's lease) stay on their page.

    What the portal wants follows the upgrades app's grants: upgraded while any grant
    boosts the line (``upgrades.services.speeds``). A reconcile job moves applied towards
    desired; desired_version numbers each change so the network can recognise a repeat.
    """

    subscription = models.OneToOneField(
        Subscription,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="speed",
        verbose_name=_("subscription"),
    )
    # Database defaults too: a line inserted by SQL (a data load) needs only its id here.
    desired_upgraded = models.BooleanField(_("upgrade wanted"), default=False, db_default=False)
    desired_version = models.PositiveIntegerField(_("speed change number"), default=0, db_default=0)
    desired_cause = models.CharField(
        _("reason for the speed"), max_length=200, blank=True, default="", db_default=""
    )
    applied_upgraded = models.BooleanField(
        _("upgraded on the network"), default=False, db_default=False
    )
    # Until then no reconcile run claims the line: one run holds it while it talks to the
    # network, or the network failed it and it waits out its backoff.
    provisioning_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Attempts the network failed in a row (0 once applied); the backoff grows with it.
    provisioning_failures = models.PositiveSmallIntegerField(
        default=0, db_default=0, editable=False
    )

    objects = LineSpeedQuerySet.as_manager()

    class Meta:
        verbose_name = _("line speed")
        verbose_name_plural = _("line speeds")
        indexes = [
            # The reconcile job's "lines whose network speed differs from the wanted one",
            # claimed in this order (lines the network failed least first): small while
            # things are calm, whatever the number of lines.
            models.Index(
                fields=["provisioning_failures", "subscription"],
                condition=Q(desired_upgraded=True, applied_upgraded=False)
                | Q(desired_upgraded=False, applied_upgraded=True),
                name="subscr_speed_out_of_sync_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.subscription_id)


class OutOfSyncTallyQuerySet(models.QuerySet):
    def add(self, lines: int) -> None:
        """Count ``lines`` more (or fewer) lines out of sync, in the caller's transaction:
        one statement on one of the rows, picked at random, made if missing."""
        if not lines:
            return
        table = self.model._meta.db_table
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (slot, lines) VALUES (%s, %s)"  # noqa: S608 (our table)
                f" ON CONFLICT (slot) DO UPDATE SET lines = {table}.lines + excluded.lines",
                [random.randrange(self.model.SLOTS), lines],  # noqa: S311 (spreads, not secret)
            )

    def total(self) -> int:
        return self.aggregate(total=Sum("lines"))["total"] or 0


class OutOfSyncTally(models.Model):
    """How many lines wait for the network (their LineSpeed out of sync), kept by every
    statement that changes a wanted or an applied speed, in the same transaction
    (``upgrades.services.speeds`` and ``upgrades.services.provisioning``): the operator's
    pages read a sum of a few rows instead of counting a million. Spread over ``SLOTS``
    rows so that a declaration and several reconcile workers seldom wait on one row."""

    SLOTS = 8

    slot = models.PositiveSmallIntegerField(primary_key=True)
    lines = models.BigIntegerField(default=0)

    objects = OutOfSyncTallyQuerySet.as_manager()

    class Meta:
        verbose_name = _("lines waiting for the network")
        verbose_name_plural = _("lines waiting for the network")

    def __str__(self) -> str:
        return f"{self.slot}: {self.lines}"


class ExtensionOfferQuerySet(models.QuerySet):
    def open_on(self, day: date) -> "ExtensionOfferQuerySet":
        return self.filter(opens_on__lte=day, closes_on__gte=day)


class ExtensionOffer(models.Model):
    """An offer to extend expired or expiring lines until a date, prepaid in bulk (FAQ Q4).

    Operators edit offers in the admin; the seed's offer (until 31 December 2021) is
    loaded by a data migration.
    """

    name = models.CharField(_("name"), max_length=200)
    extends_until = models.DateField(
        _("extends service until"), help_text=_("The last day of service it buys.")
    )
    # Capped so a typo cannot make a quote overflow: ten million yen a year is far above
    # any real price.
    annual_price_yen = models.PositiveIntegerField(
        _("annual price (yen, before tax)"), validators=[MaxValueValidator(MAX_ANNUAL_YEN)]
    )
    static_ip_annual_price_yen = models.PositiveIntegerField(
        _("static IP annual price (yen, before tax)"),
        validators=[MaxValueValidator(MAX_ANNUAL_YEN)],
    )
    tax_rate_percent = models.PositiveSmallIntegerField(_("consumption tax rate (%)"))
    opens_on = models.DateField(_("open from"))
    closes_on = models.DateField(_("open until"), help_text=_("The last day it can be taken."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ExtensionOfferQuerySet.as_manager()

    class Meta:
        verbose_name = _("extension offer")
        verbose_name_plural = _("extension offers")
        ordering = ["-extends_until", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_on__gte=models.F("opens_on"))
                & Q(extends_until__gte=models.F("closes_on")),
                name="%(app_label)s_%(class)s_dates_in_order",
            ),
            models.CheckConstraint(
                condition=Q(tax_rate_percent__lte=100),
                name="%(app_label)s_%(class)s_tax_rate_percent",
            ),
            models.CheckConstraint(
                condition=Q(annual_price_yen__lte=MAX_ANNUAL_YEN)
                & Q(static_ip_annual_price_yen__lte=MAX_ANNUAL_YEN),
                name="%(app_label)s_%(class)s_price_cap",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def is_open_on(self, day: date) -> bool:
        return self.opens_on <= day <= self.closes_on


class Quote(models.Model):
    """What extending one subscription under one offer costs: a snapshot, not a bill."""

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="quotes",
        verbose_name=_("subscription"),
    )
    offer = models.ForeignKey(
        ExtensionOffer, on_delete=models.PROTECT, related_name="quotes", verbose_name=_("offer")
    )
    first_day = models.DateField(_("first day"))
    last_day = models.DateField(_("last day"))
    months = models.PositiveSmallIntegerField(_("months"))
    days = models.PositiveSmallIntegerField(_("days"))
    service_yen = models.PositiveBigIntegerField(_("service (yen)"))
    static_ip_yen = models.PositiveBigIntegerField(_("static IP (yen)"))
    tax_rate_percent = models.PositiveSmallIntegerField(_("tax rate (%)"))
    tax_yen = models.PositiveBigIntegerField(_("tax (yen)"))
    total_yen = models.PositiveBigIntegerField(_("total (yen)"))
    created_at = models.DateTimeField(_("created"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    total_yen=models.F("service_yen")
                    + models.F("static_ip_yen")
                    + models.F("tax_yen")
                ),
                name="%(app_label)s_%(class)s_total_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.first_day}..{self.last_day}"

    @property
    def subtotal_yen(self) -> int:
        return self.service_yen + self.static_ip_yen


class InvoiceSequence(models.Model):
    """The next invoice number, taken under a row lock so numbers have no gaps."""

    name = models.CharField(max_length=20, unique=True)
    next_number = models.PositiveBigIntegerField(default=1)

    class Meta:
        verbose_name = _("invoice number sequence")
        verbose_name_plural = _("invoice number sequences")

    def __str__(self) -> str:
        return f"{self.name}: {self.next_number}"


class Invoice(models.Model):
    """A prepaid invoice for a whole extension, or the credit note that cancels one.

    Issued documents never change: the amounts, lines and issuer are written once; only
    the payment state moves, and a cancellation is a credit note of its own.
    """

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", pgettext_lazy("invoice", "Cancelled")

    number = models.PositiveBigIntegerField(_("number"), unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("subscription"),
    )
    quote = models.OneToOneField(
        Quote,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoice",
        verbose_name=_("quote"),
    )
    credits = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_note",
        verbose_name=_("cancels invoice"),
    )
    extends_until = models.DateField(_("extends service until"), null=True, blank=True)
    issued_on = models.DateField(_("issued on"))
    due_on = models.DateField(_("due on"))
    issuer_name = models.CharField(_("issuer"), max_length=200)
    issuer_registration_number = models.CharField(_("registration number"), max_length=14)
    subtotal_yen = models.BigIntegerField(_("subtotal (yen)"))
    tax_rate_percent = models.PositiveSmallIntegerField(_("tax rate (%)"))
    tax_yen = models.BigIntegerField(_("tax (yen)"))
    total_yen = models.BigIntegerField(_("total (yen)"))
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_yen=models.F("subtotal_yen") + models.F("tax_yen")),
                name="%(app_label)s_%(class)s_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credits__isnull=True, total_yen__gte=0)
                | Q(kind="credit_note", credits__isnull=False, total_yen__lte=0),
                name="%(app_label)s_%(class)s_credit_note_credits_an_invoice",
            ),
            models.CheckConstraint(
                condition=Q(status="paid", paid_at__isnull=False) | ~Q(status="paid"),
                name="%(app_label)s_%(class)s_paid_has_date",
            ),
        ]
        indexes = [
            # A customer's invoice list.
            models.Index(fields=["customer", "-number"], name="subscr_invoice_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.display_number

    def get_absolute_url(self) -> str:
        return reverse("subscriptions:invoice", args=[self.pk])

    @property
    def display_number(self) -> str:
        prefix = "CN" if self.kind == self.Kind.CREDIT_NOTE else "INV"
        return f"{prefix}-{self.number:06d}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    description = models.CharField(_("description"), max_length=300)
    amount_yen = models.BigIntegerField(_("amount (yen, before tax)"))
    tax_rate_percent = models.PositiveSmallIntegerField(_("tax rate (%)"))

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.description


class Payment(models.Model):
    """Money received for an invoice (a bank transfer), recorded by staff."""

    invoice = models.OneToOneField(
        Invoice, on_delete=models.PROTECT, related_name="payment", verbose_name=_("invoice")
    )
    amount_yen = models.PositiveBigIntegerField(_("amount (yen)"))
    paid_on = models.DateField(_("paid on"))
    reference = models.CharField(_("bank-transfer reference"), max_length=100)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded"))

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.invoice}: ¥{self.amount_yen:,}"


class RenewalReminder(models.Model):
    """The e-mail sent before a term ends, at most once per subscription and term end."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="renewal_reminders"
    )
    service_end = models.DateField(_("service end"))
    offer = models.ForeignKey(ExtensionOffer, on_delete=models.PROTECT, null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"))
    recipients = models.JSONField(_("recipients"), default=list)

    class Meta:
        verbose_name = _("renewal reminder")
        verbose_name_plural = _("renewal reminders")
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "service_end"],
                name="%(app_label)s_%(class)s_once_per_term",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.service_end}"
