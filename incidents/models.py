"""Disasters and (later) ground-station outages, damage reports and field visits."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from subscriptions.prefectures import Prefecture
from support.models import Contact


class DisasterQuerySet(models.QuerySet):
    def active(self) -> "DisasterQuerySet":
        return self.filter(ended_at__isnull=True)


class Disaster(models.Model):
    """A declared wide-scale disaster: nationwide, or a set of prefectures."""

    title = models.CharField(_("title"), max_length=200)
    nationwide = models.BooleanField(_("nationwide"), default=False)
    # JIS codes; a JSON list works the same on PostgreSQL and SQLite.
    prefectures = models.JSONField(_("prefectures"), default=list, blank=True)
    message = models.TextField(_("message to customers"), blank=True)
    message_en = models.TextField(_("message to customers (English)"), blank=True)
    # What the operator tells customers when it ends (the "disaster ended" e-mail); the
    # declaration's message would read wrong by then.
    closing_message = models.TextField(_("closing message to customers"), blank=True)
    # When the sites in scope were asked to check their equipment again (a day after the
    # end, by beat); empty until then.
    recheck_requested_at = models.DateTimeField(
        _("equipment re-check requested"), null=True, blank=True
    )
    declared_at = models.DateTimeField(_("declared"))
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("declared by"),
    )
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ended by"),
    )
    # The declaring form's one-time token: a double submit or a retried API call finds
    # the disaster it already made instead of declaring a second one.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)

    objects = DisasterQuerySet.as_manager()

    class Meta:
        verbose_name = _("disaster")
        verbose_name_plural = _("disasters")
        ordering = ["-declared_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("declared_at")),
                name="%(app_label)s_%(class)s_ends_after_declared",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.ended_at is None

    @property
    def localized_message(self) -> str:
        """The operator's message in the language being shown: English when written and
        the page (or the e-mail's part) is English, else the Japanese one."""
        if self.message_en and (translation.get_language() or "").startswith("en"):
            return self.message_en
        return self.message

    def covers(self, prefecture_field: str = "site__prefecture") -> Q:
        """The filter of what lies in its area, on a queryset reaching a prefecture by
        ``prefecture_field``: everything for a nationwide disaster."""
        if self.nationwide:
            return Q()
        return Q(**{f"{prefecture_field}__in": self.prefectures})

    def prefecture_names(self) -> list[str]:
        return [Prefecture(code).label for code in self.prefectures]


class OutageQuerySet(models.QuerySet):
    def current(self) -> "OutageQuerySet":
        return self.filter(is_current=True)


class Outage(models.Model):
    """The ground station (Chichibu, Saitama) cannot serve the lines (FAQ Q5 (3))."""

    class Cause(models.TextChoices):
        HEAVY_RAIN = "heavy_rain", _("Heavy rain")
        DISASTER = "disaster", _("Disaster")
        MAINTENANCE = "maintenance", _("Maintenance")

    cause = models.CharField(_("cause"), max_length=20, choices=Cause.choices)
    message = models.TextField(_("message to customers"), blank=True)
    started_at = models.DateTimeField(_("started"))
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("declared by"),
    )
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ended by"),
    )
    # True while it lasts, NULL once ended: unique, so there is one current outage at
    # most (NULLs do not collide, on SQLite as on PostgreSQL).
    is_current = models.BooleanField(_("current"), null=True, default=True, editable=False)

    objects = OutageQuerySet.as_manager()

    class Meta:
        verbose_name = _("ground-station outage")
        verbose_name_plural = _("ground-station outages")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One outage of the one ground station at a time.
            models.UniqueConstraint(
                fields=["is_current"], name="%(app_label)s_%(class)s_one_current"
            ),
            models.CheckConstraint(
                condition=Q(is_current=True, ended_at__isnull=True)
                | Q(is_current__isnull=True, ended_at__isnull=False),
                name="%(app_label)s_%(class)s_current_until_ended",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="%(app_label)s_%(class)s_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_cause_display()} {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"


class CheckIn(models.Model):
    """A site's readiness check (FAQ Q1, Q5 (2)): the line works and the equipment is fine."""

    class Equipment(models.TextChoices):
        OK = "ok", _("Equipment looks normal")
        DAMAGED = "damaged", _("Antenna tilted or equipment damaged")
        UNKNOWN = "unknown", _("Not checked")

    class Source(models.TextChoices):
        PORTAL = "portal", _("Portal")
        SITE_LINK = "site_link", _("The site's own link (automatic)")

    site = models.ForeignKey(
        "subscriptions.Site",
        on_delete=models.CASCADE,
        related_name="check_ins",
        verbose_name=_("site"),
    )
    checked_at = models.DateTimeField(_("checked"))
    web_ok = models.BooleanField(_("web reachable"))
    mail_ok = models.BooleanField(_("mail reachable"), null=True)
    equipment = models.CharField(
        _("equipment"), max_length=20, choices=Equipment.choices, default=Equipment.UNKNOWN
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("checked by"),
    )
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("readiness check")
        verbose_name_plural = _("readiness checks")
        ordering = ["-checked_at", "-pk"]
        indexes = [
            # A site's last check, and "sites not checked since …".
            models.Index(fields=["site", "-checked_at"], name="incidents_checkin_site_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.site} {timezone.localtime(self.checked_at):%Y-%m-%d %H:%M}"


class SiteCheckInToken(models.Model):
    """The secret a site's own equipment uses to check in over the satellite link.

    Only a hash is stored; the token is shown once when made.
    """

    site = models.ForeignKey(
        "subscriptions.Site", on_delete=models.CASCADE, related_name="check_in_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("site check-in token")
        verbose_name_plural = _("site check-in tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.site} {timezone.localdate(self.created_at):%Y-%m-%d}"


class ReadinessReminder(models.Model):
    """One e-mail to a customer about its sites to check: monthly, or after a disaster."""

    class Reason(models.TextChoices):
        NOT_CHECKED = "not_checked", _("Not checked for a while")
        AFTER_DISASTER = "after_disaster", _("After a disaster")

    customer = models.ForeignKey(
        "subscriptions.Customer", on_delete=models.CASCADE, related_name="readiness_reminders"
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    # "2026-11" for the monthly reminder, "disaster-12" after disaster 12.
    period = models.CharField(_("period"), max_length=30)
    sites = models.JSONField(_("sites"), default=list)
    recipients = models.JSONField(_("recipients"), default=list)
    sent_at = models.DateTimeField(_("sent"))

    class Meta:
        verbose_name = _("readiness reminder")
        verbose_name_plural = _("readiness reminders")
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period"], name="%(app_label)s_%(class)s_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} {self.period}"


class IncidentContact(Contact):
    """A contact linked to what was going on when it arrived: the declared disaster that
    covers its sites and the ground-station outage in progress (stamped by
    ``incidents.contacts.arrival``)."""

    disaster = models.ForeignKey(
        Disaster,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("disaster"),
        help_text=_("The declared disaster covering the contact's sites when it arrived."),
    )
    outage = models.ForeignKey(
        Outage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("ground-station outage"),
        help_text=_("The outage in progress when the contact arrived."),
    )

    class Meta(Contact.Meta):
        abstract = True


def _private_storage():
    # Photos of customers' premises: never under a public URL; served by a view that
    # checks who asks (incidents.views.DamagePhotoView).
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None)


class DamageReport(IncidentContact):
    """A tilted antenna or broken equipment at a site (FAQ Q5 (1)): best effort, no date.

    Progress is read off the field visits; no date is ever promised to the customer.
    """

    class Status(models.TextChoices):
        NEW = "new", _("Open")
        CLOSED = "closed", _("Closed")

    OPEN_STATUSES = frozenset({Status.NEW})

    site = models.ForeignKey(
        "subscriptions.Site",
        on_delete=models.PROTECT,
        related_name="damage_reports",
        verbose_name=_("site"),
    )
    description = models.TextField(_("what happened"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reported by"),
    )
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("damage report")
        verbose_name_plural = _("damage reports")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["new", "closed"]),
                name="%(app_label)s_%(class)s_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="closed", closed_at__isnull=False) | Q(status="new"),
                name="%(app_label)s_%(class)s_closed_has_time",
            ),
        ]
        indexes = [
            # The support desk's queue: open reports, newest first.
            models.Index(fields=["status", "-received_at"], name="incidents_damage_queue_idx"),
            # The admin's list in its default order, every status.
            models.Index(fields=["received_at", "id"], name="incidents_damage_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.site}"


class DamagePhoto(models.Model):
    report = models.ForeignKey(DamageReport, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(_("photo"), upload_to="damage/%Y/%m/", storage=_private_storage)
    content_type = models.CharField(_("file type"), max_length=50)
    size = models.PositiveIntegerField(_("size (bytes)"))

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["pk"]

    def __str__(self) -> str:
        return _("photo %(number)s") % {"number": self.pk}


class FieldVisit(models.Model):
    """A technician's visit, planned by staff when possible. The date is tentative and
    for staff only: customers are never shown a promised date."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Being arranged")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", pgettext_lazy("field visit", "Called off")

    report = models.ForeignKey(DamageReport, on_delete=models.CASCADE, related_name="visits")
    tentative_date = models.DateField(_("tentative date (staff only)"), null=True, blank=True)
    technician = models.CharField(_("technician"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PLANNED
    )
    outcome = models.TextField(_("outcome"), blank=True)

    class Meta:
        verbose_name = _("field visit")
        verbose_name_plural = _("field visits")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.report} {self.get_status_display()}"


class MassMessage(models.Model):
    """An operator's message to many customer organisations at once (issue 8).

    The audience is fixed when the message is sent: ``nationwide`` or ``prefectures``
    (a disaster's scope is copied from the disaster), and ``service_day``, the day whose
    lines in service decide who is a customer. Queueing its deliveries is resumable from
    ``last_customer_id``; each organisation gets one ``MassMessageDelivery`` and one outbox
    row, both unique, so a retried or doubled run reaches nobody twice.
    """

    class Audience(models.TextChoices):
        DISASTER = "disaster", _("Customers in a disaster's area")
        PREFECTURES = "prefectures", _("Customers in chosen prefectures")
        EVERYONE = "everyone", _("Every customer in service")

    subject_ja = models.CharField(_("subject (Japanese)"), max_length=200)
    body_ja = models.TextField(_("message (Japanese)"))
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    body_en = models.TextField(_("message (English)"), blank=True)
    audience = models.CharField(_("audience"), max_length=20, choices=Audience.choices)
    disaster = models.ForeignKey(
        Disaster,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mass_messages",
        verbose_name=_("disaster"),
    )
    nationwide = models.BooleanField(_("nationwide"), default=False)
    # JIS codes of the sites' prefectures in scope (empty when nationwide).
    prefectures = models.JSONField(_("prefectures"), default=list, blank=True)
    service_day = models.DateField(_("lines in service on"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("sent by"),
    )
    created_at = models.DateTimeField(_("sent"))
    # Counted when the operator confirmed: what the preview promised.
    organisations = models.PositiveIntegerField(_("organisations"), default=0)
    addresses = models.PositiveIntegerField(_("e-mail addresses"), default=0)
    # Progress of the queueing task: organisations handed to the outbox so far, the last
    # customer done (the task resumes after it), and when the last one was queued.
    queued_organisations = models.PositiveIntegerField(_("organisations queued"), default=0)
    last_customer_id = models.BigIntegerField(_("last customer queued"), default=0, editable=False)
    queued_at = models.DateTimeField(_("all queued"), null=True, blank=True)
    webhook_status = models.CharField(_("gateway"), max_length=50, blank=True)
    # The confirmation form's one-time token: a double submit finds the message it sent.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("mass message")
        verbose_name_plural = _("mass messages")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(audience__in=["disaster", "prefectures", "everyone"]),
                name="%(app_label)s_%(class)s_audience_valid",
            ),
            models.CheckConstraint(
                condition=~Q(audience="disaster") | Q(disaster__isnull=False),
                name="%(app_label)s_%(class)s_disaster_audience_has_disaster",
            ),
            models.CheckConstraint(
                condition=~Q(audience="everyone") | Q(nationwide=True),
                name="%(app_label)s_%(class)s_everyone_is_nationwide",
            ),
        ]
        indexes = [
            # The sweeper's "messages whose deliveries are not all queued yet".
            models.Index(
                fields=["created_at"],
                condition=Q(queued_at__isnull=True),
                name="incidents_massmsg_unqueued_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject_ja

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("incidents:mass-message", args=[self.pk])

    @property
    def is_queued(self) -> bool:
        return self.queued_at is not None

    @property
    def percent_queued(self) -> int:
        if not self.organisations:
            return 100 if self.is_queued else 0
        return min(100, self.queued_organisations * 100 // self.organisations)

    def prefecture_names(self) -> list[str]:
        return [Prefecture(code).label for code in self.prefectures]


class MassMessageDelivery(models.Model):
    """One organisation's copy of a mass message: the record of who was told, and what
    the customer's home page lists."""

    message = models.ForeignKey(
        MassMessage, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("message")
    )
    customer = models.ForeignKey(
        "subscriptions.Customer",
        on_delete=models.CASCADE,
        related_name="mass_message_deliveries",
        verbose_name=_("customer"),
    )
    email = models.ForeignKey(
        "support.OutboundEmail",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("e-mail"),
    )
    queued_at = models.DateTimeField(_("queued"))

    class Meta:
        verbose_name = _("mass message delivery")
        verbose_name_plural = _("mass message deliveries")
        ordering = ["message_id", "customer_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "customer"], name="%(app_label)s_%(class)s_once_per_customer"
            ),
        ]
        indexes = [
            # The customer's home page: the latest messages sent to the organisation.
            models.Index(fields=["customer", "message"], name="incidents_massmsg_cust_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.customer_id}"
