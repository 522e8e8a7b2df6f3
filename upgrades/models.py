"""Speed upgrades: requests, grants, blanket disaster upgrades, provisioning, notices.

A *grant* is the one thing that makes a line fast: a subscription's wanted speed is
"upgraded" while any of its grants is pending or active. Grants come from an approved
upgrade request or from a blanket upgrade that a disaster declaration starts.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from incidents.models import IncidentContact
from subscriptions.models import ContactPhone
from support.channels import Channel


class UpgradeRequest(ContactPhone, IncidentContact):
    """A customer asked for speed: in the portal, through the API, or by calling us."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        APPROVED = "approved", _("Approved")
        APPLIED = "applied", _("Applied")
        ENDED = "ended", _("Ended")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", pgettext_lazy("upgrade request", "Withdrawn")

    # In the desk's queue until decided and applied; an applied request is running.
    OPEN_STATUSES = frozenset({Status.NEW, Status.APPROVED})

    class Reason(models.TextChoices):
        DISASTER = "disaster", _("Disaster: the ground network is down")
        OUTAGE = "outage", _("Ground network outage (no disaster)")
        TEST = "test", _("Drill or test")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        "subscriptions.Customer",
        on_delete=models.PROTECT,
        related_name="upgrade_requests",
        verbose_name=_("customer"),
    )
    sites = models.ManyToManyField(
        "subscriptions.Site", related_name="upgrade_requests", verbose_name=_("sites")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("note"), blank=True)
    contact_name = models.CharField(_("contact name"), max_length=150, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decision_note = models.TextField(_("reason for the decision"), blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("upgrade request")
        verbose_name_plural = _("upgrade requests")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["new", "approved", "applied", "ended", "rejected", "cancelled"]
                ),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]
        indexes = [
            # The support desk's queue: newest first within a status.
            models.Index(fields=["status", "-received_at"], name="upg_req_status_recv_idx"),
            # The admin's list in its default order, every status.
            models.Index(fields=["received_at", "id"], name="upg_req_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer}"


class UpgradeRequestEvent(models.Model):
    """The request's history, shown to the customer (internal notes excepted)."""

    upgrade_request = models.ForeignKey(
        UpgradeRequest, on_delete=models.CASCADE, related_name="events"
    )
    status = models.CharField(_("status"), max_length=20, choices=UpgradeRequest.Status.choices)
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("upgrade request event")
        verbose_name_plural = _("upgrade request events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.upgrade_request_id}: {self.get_status_display()}"


class BlanketUpgrade(models.Model):
    """Every in-service line in a disaster's scope, upgraded until its owner answers."""

    class Status(models.TextChoices):
        APPLYING = "applying", _("Upgrading lines")
        ACTIVE = "active", _("Waiting for confirmations")
        ENDED = "ended", _("Ended")

    class Stage(models.TextChoices):
        # What operators read: the stored status, and past its deadline an active
        # upgrade waits for nobody (derived from the clock, so never stale).
        APPLYING = "applying", _("Upgrading lines")
        WAITING = "active", _("Waiting for confirmations")
        DEADLINE_PASSED = "deadline_passed", _("Deadline passed")
        ENDED = "ended", _("Ended")

    disaster = models.OneToOneField(
        "incidents.Disaster",
        on_delete=models.PROTECT,
        related_name="blanket_upgrade",
        verbose_name=_("disaster"),
    )
    deadline = models.DateTimeField(_("confirmation deadline"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.APPLYING
    )
    # Subscriptions "in service" on this day are in scope; fixed at declaration so a run
    # resumed the next day grants to the same set.
    in_service_on = models.DateField(_("in service on"))
    # The highest subscription id already granted: a run that died resumes after it.
    cursor = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created"))
    applied_at = models.DateTimeField(_("all lines granted"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("blanket upgrade")
        verbose_name_plural = _("blanket upgrades")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline__gt=models.F("created_at")),
                name="%(app_label)s_%(class)s_deadline_after_start",
            ),
        ]

    def __str__(self) -> str:
        return str(self.disaster)

    def stage_on(self, now) -> "BlanketUpgrade.Stage":
        if self.status == self.Status.ACTIVE and self.deadline <= now:
            return self.Stage.DEADLINE_PASSED
        return self.Stage(self.status)


class BlanketUpgradeEvent(models.Model):
    """What operators and jobs did to a blanket upgrade: declared, extended, ended…"""

    class Kind(models.TextChoices):
        DECLARED = "declared", _("Declared")
        GRANTED = "granted", _("All lines granted")
        DEADLINE_EXTENDED = "deadline_extended", _("Deadline extended")
        REVERTED = "reverted", _("Unconfirmed lines returned to normal")
        ENDED = "ended", _("Ended")

    blanket_upgrade = models.ForeignKey(
        BlanketUpgrade, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("blanket upgrade event")
        verbose_name_plural = _("blanket upgrade events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.blanket_upgrade_id}: {self.get_kind_display()}"

    def describe(self) -> str:
        """The history line an operator reads (the detail's numbers in words)."""
        grants = self.detail.get("grants") if isinstance(self.detail, dict) else None
        if grants is None:
            return self.get_kind_display()
        if self.kind == self.Kind.REVERTED:
            return _("Unconfirmed lines returned to normal: %(count)s") % {"count": grants}
        if self.kind == self.Kind.GRANTED:
            return _("All lines granted: %(count)s") % {"count": grants}
        return self.get_kind_display()


class BlanketUpgradeTally(models.Model):
    """A blanket upgrade's grants by state, kept by the transitions themselves.

    The operator's disaster page and its progress.json (polled every 10 s per open tab)
    read these few rows instead of counting a million grants. Every service that moves a
    blanket grant adds its change to one row in the same transaction
    (``upgrades.services.tallies.count_grants``), so the sums always equal the grants.
    Each blanket has SLOTS rows and a transaction adds to one picked at random: customers
    answering at the same moment seldom wait for the same row. One slot may go below zero
    (a grant counted pending in one slot, answered in another); the sums cannot.
    """

    SLOTS = 8
    STATES = ("pending", "confirmed", "declined", "reverted", "ended")

    # The unique (blanket, slot) index serves the key.
    blanket_upgrade = models.ForeignKey(
        BlanketUpgrade, on_delete=models.CASCADE, related_name="tallies", db_index=False
    )
    slot = models.PositiveSmallIntegerField()
    pending = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    declined = models.IntegerField(default=0)
    reverted = models.IntegerField(default=0)
    ended = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("blanket upgrade tally")
        verbose_name_plural = _("blanket upgrade tallies")
        ordering = ["blanket_upgrade", "slot"]
        constraints = [
            models.UniqueConstraint(
                fields=["blanket_upgrade", "slot"], name="%(app_label)s_%(class)s_one_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blanket_upgrade_id}/{self.slot}"


class SpeedGrantQuerySet(models.QuerySet):
    def boosting(self) -> "SpeedGrantQuerySet":
        """Grants that keep a line upgraded."""
        return self.filter(state__in=SpeedGrant.BOOSTING)

    def due_for_revert(self, now) -> "SpeedGrantQuerySet":
        return self.filter(
            state=SpeedGrant.State.PENDING,
            blanket_upgrade__deadline__lte=now,
        )

    def for_customer(self, customer_id: int | None) -> "SpeedGrantQuerySet":
        if not customer_id:
            return self.none()
        return self.filter(subscription__site__customer_id=customer_id)


class SpeedGrant(models.Model):
    """ "This subscription should be upgraded", from a request or a blanket upgrade."""

    class Source(models.TextChoices):
        REQUEST = "request", _("Upgrade request")
        BLANKET = "blanket", _("Blanket disaster upgrade")

    class State(models.TextChoices):
        PENDING = "pending", _("Upgraded, waiting for your confirmation")
        ACTIVE = "active", _("Upgraded")
        # Not "back to normal": another grant may keep the line upgraded (the pages show
        # the line's own speed beside the grant).
        DECLINED = "declined", _("Declined")
        REVERTED = "reverted", _("Not confirmed in time")
        ENDED = "ended", _("Ended")

    BOOSTING = (State.PENDING, State.ACTIVE)

    # db_index=False on these keys: the composite indexes below start with them, and a
    # nationwide declaration writes one row per line, so every index costs.
    # No foreign key in the database on any of the grant's keys (db_constraint=False): a
    # nationwide declaration appends a million grants, and PostgreSQL queues and fires
    # each key's check trigger for every one of them at commit, NULL or not (a quarter of
    # a raw declaration's time). Integrity by construction instead: a grant is inserted
    # only by a service, from a SELECT of the lines it grants (the declaration, under its
    # blanket upgrade's row lock) or of a request it has just locked; the answering user
    # is set only by respond_to_grants, to the user answering; lines, blanket upgrades
    # and disasters are never deleted (the admin offers no delete for them: a line is
    # cancelled, not removed); and deleting anything a grant names is refused by Django
    # (PROTECT), which needs no database key (tests/upgrades/test_storage.py,
    # test_grant_keys_without_a_database_constraint_still_protect_what_they_name).
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        related_name="speed_grants",
        verbose_name=_("subscription"),
        db_index=False,
        db_constraint=False,
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    # The request is set only by approve_upgrade_request, to the request its own
    # conditional UPDATE has just locked; a blanket grant leaves it NULL (see above).
    upgrade_request = models.ForeignKey(
        UpgradeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("upgrade request"),
        db_index=False,
        db_constraint=False,
    )
    blanket_upgrade = models.ForeignKey(
        BlanketUpgrade,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("blanket upgrade"),
        db_index=False,
        db_constraint=False,
    )
    state = models.CharField(_("state"), max_length=20, choices=State.choices)
    starts_at = models.DateTimeField(_("starts"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # The customer's answer to a blanket upgrade (confirm or decline), however it came.
    responded_at = models.DateTimeField(_("answered"), null=True, blank=True)
    # No index either: nothing looks grants up by who answered them, and the index
    # held a NULL entry for every blanket grant.
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
        db_index=False,
        db_constraint=False,
    )
    # db_default: blanket grants are inserted by INSERT … SELECT, which names no column
    # it does not need.
    response_channel = models.CharField(
        _("answered through"), max_length=20, choices=Channel.choices, blank=True, db_default=""
    )
    # Stamped by the business calendar: an answer by phone at night is an after-hours contact.
    response_after_hours = models.BooleanField(
        _("answered after hours"), null=True, blank=True, db_default=None
    )

    objects = SpeedGrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("speed grant")
        verbose_name_plural = _("speed grants")
        ordering = ["-starts_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(source="request", upgrade_request__isnull=False, blanket_upgrade__isnull=True)
                    | Q(
                        source="blanket",
                        blanket_upgrade__isnull=False,
                        upgrade_request__isnull=True,
                    )
                ),
                name="%(app_label)s_%(class)s_source_matches",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "active", "declined", "reverted", "ended"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            # Only a blanket grant waits for confirmation.
            models.CheckConstraint(
                condition=~Q(state="pending") | Q(source="blanket"),
                name="%(app_label)s_%(class)s_pending_only_blanket",
            ),
            # Declaring, re-running or resuming never grants a line twice.
            models.UniqueConstraint(
                fields=["blanket_upgrade", "subscription"],
                condition=Q(blanket_upgrade__isnull=False),
                name="%(app_label)s_%(class)s_once_per_blanket",
            ),
            models.UniqueConstraint(
                fields=["upgrade_request", "subscription"],
                condition=Q(upgrade_request__isnull=False),
                name="%(app_label)s_%(class)s_once_per_request",
            ),
        ]
        # No (blanket, state) index: which blankets have grants in a state is read from
        # their tallies (BlanketUpgradeTally), and the revert and the ending walk a
        # blanket's grants by line on the unique (blanket, line) index. It would cost a
        # write at every grant declared and every state moved.
        # Nor the state in the line's index: a state move (an answer, the revert, the
        # ending) then changes no indexed column and, with the room its migration leaves
        # in each page (fillfactor 50 on PostgreSQL), rewrites the row in place without a
        # new entry in any index (a HOT update); it wrote three before.
        indexes = [
            # "Does this line still have a boosting grant?" and the customer's banner: a
            # line's few grants, their state read from the rows.
            models.Index(fields=["subscription"], name="upg_grant_sub_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} → {self.subscription_id}"

    @property
    def is_boosting(self) -> bool:
        return self.state in self.BOOSTING


class ProvisioningChange(models.Model):
    """One speed change the satellite network confirmed: the audit trail of speeds."""

    # A disaster appends one row per line: no index of its own on the key, which the
    # unique (subscription, version) index below starts with, and no foreign key in the
    # database (a check trigger per row at commit, as for SpeedGrant's keys): a change is
    # recorded only for a line the reconcile has just claimed, lines are never deleted,
    # and Django's PROTECT refuses deleting a line an audit row names.
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        related_name="provisioning_changes",
        verbose_name=_("subscription"),
        db_index=False,
        db_constraint=False,
    )
    version = models.PositiveIntegerField(_("speed change number"))
    upgraded = models.BooleanField(_("upgraded"))
    from_kbps = models.PositiveIntegerField(_("from (kbit/s)"))
    to_kbps = models.PositiveIntegerField(_("to (kbit/s)"))
    cause = models.CharField(_("cause"), max_length=200)
    batch = models.UUIDField(_("batch"))
    applied_at = models.DateTimeField(_("applied"))

    class Meta:
        verbose_name = _("provisioning change")
        verbose_name_plural = _("provisioning changes")
        ordering = ["-applied_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "version"],
                name="%(app_label)s_%(class)s_once_per_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} v{self.version}: {self.from_kbps} → {self.to_kbps}"


class CustomerNotice(models.Model):
    """One e-mail to one customer organisation about one event, listing its lines.

    What it says of each line is decided when it is sent, from the line's state then
    (upgrades/services/notices.py): a line another grant keeps fast is never told it is
    back to normal, and a notice none of whose lines still needs it is not sent.
    """

    class Kind(models.TextChoices):
        BLANKET_STARTED = "blanket_started", _("Blanket upgrade started")
        DEADLINE_REMINDER = "deadline_reminder", _("Confirmation deadline reminder")
        REVERTED = "reverted", _("Returned to normal speed")
        DISASTER_ENDED = "disaster_ended", _("Disaster ended")
        REQUEST_APPROVED = "request_approved", _("Upgrade request approved")
        REQUEST_REJECTED = "request_rejected", _("Upgrade request rejected")

    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    # Indexed by the unique constraints below, which start with these keys.
    customer = models.ForeignKey(
        "subscriptions.Customer",
        on_delete=models.PROTECT,
        related_name="upgrade_notices",
        verbose_name=_("customer"),
        db_index=False,
    )
    blanket_upgrade = models.ForeignKey(
        BlanketUpgrade,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notices",
        verbose_name=_("blanket upgrade"),
        db_index=False,
    )
    upgrade_request = models.ForeignKey(
        UpgradeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notices",
        verbose_name=_("upgrade request"),
        db_index=False,
    )
    # The event's time: a revert run's or an ending's lines are the grants it ended then.
    created_at = models.DateTimeField(_("created"))
    # When its e-mail was handed to the outbox. A run that moves lines in chunks hands
    # its notices over at its end, so that each lists all of its customer's lines.
    queued_at = models.DateTimeField(_("e-mail queued"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer notice")
        verbose_name_plural = _("customer notices")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(blanket_upgrade__isnull=False) ^ Q(upgrade_request__isnull=False),
                name="%(app_label)s_%(class)s_one_subject",
            ),
            # One notice per customer per event: a blanket's kind at one moment…
            models.UniqueConstraint(
                fields=["blanket_upgrade", "customer", "kind", "created_at"],
                condition=Q(blanket_upgrade__isnull=False),
                name="%(app_label)s_%(class)s_once_per_blanket_event",
            ),
            # … or a request's decision.
            models.UniqueConstraint(
                fields=["upgrade_request", "kind"],
                condition=Q(upgrade_request__isnull=False),
                name="%(app_label)s_%(class)s_once_per_request_kind",
            ),
        ]
        indexes = [
            # The sweeper's "notices a dead run never handed to the outbox".
            models.Index(
                fields=["created_at"],
                condition=Q(queued_at__isnull=True),
                name="upg_notice_unqueued_idx",
            ),
            # A customer's notices, newest first (portal).
            models.Index(fields=["customer", "-created_at"], name="upg_notice_customer_idx"),
            # The admin's list, newest first (one row per customer and event, not per line).
            models.Index(fields=["created_at", "id"], name="upg_notice_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.customer_id}"
