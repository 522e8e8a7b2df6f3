"""What every contact kind shares: the on-call roster, after-hours alerts, the outbox."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from support.channels import Channel


class ContactPriority(models.TextChoices):
    """Triage priority of any contact kind: high after hours or in a declared disaster."""

    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class OnCallShiftQuerySet(models.QuerySet):
    def covering(self, at) -> "OnCallShiftQuerySet":
        return self.filter(starts_at__lte=at, ends_at__gt=at)


class OnCallShift(models.Model):
    """A staff member on call for after-hours contacts, from … to."""

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="on_call_shifts",
        verbose_name=_("staff"),
        limit_choices_to={"is_staff": True},
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("to"))

    objects = OnCallShiftQuerySet.as_manager()

    class Meta:
        verbose_name = _("on-call shift")
        verbose_name_plural = _("on-call shifts")
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="%(app_label)s_%(class)s_ends_after_start",
            ),
        ]
        indexes = [
            # "Who is on call now": shifts ending after now, checked for their start.
            models.Index(fields=["ends_at", "starts_at"], name="support_oncall_window_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.staff} {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"


class AfterHoursAlert(models.Model):
    """The notice that an after-hours contact arrived: at most one per contact."""

    class ContactKind(models.TextChoices):
        INQUIRY = "inquiry", _("Inquiry")
        UPGRADE_REQUEST = "upgrade_request", _("Speed-upgrade request")
        DAMAGE_REPORT = "damage_report", _("Damage report")

    contact_kind = models.CharField(_("contact kind"), max_length=50, choices=ContactKind)
    contact_id = models.CharField(_("contact"), max_length=50)
    summary = models.CharField(_("summary"), max_length=300)
    url = models.CharField(_("link"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received"))
    # Queued with the alert, in the same transaction: the outbox sends it (and retries).
    email = models.OneToOneField(
        "OutboundEmail",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("e-mail"),
    )
    recipients = models.JSONField(_("recipients"), default=list, blank=True)
    nobody_on_call = models.BooleanField(_("nobody was on call"), default=False)
    webhook_status = models.CharField(_("webhook"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("after-hours alert")
        verbose_name_plural = _("after-hours alerts")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_kind", "contact_id"], name="%(app_label)s_%(class)s_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_contact_kind_display()} {self.contact_id}"


class InquiryQuerySet(models.QuerySet):
    def for_customer(self, customer_id: int) -> "InquiryQuerySet":
        return self.filter(customer_id=customer_id)


class Inquiry(models.Model):
    """A general question from a customer: in the portal, the API, or taken by staff.

    new → answered (staff replied) → new again (the customer followed up) … → closed.
    """

    class Status(models.TextChoices):
        NEW = "new", _("New")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    class Priority(models.TextChoices):
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")

    # String references: support sits below every app and imports none of them.
    customer = models.ForeignKey(
        "subscriptions.Customer",
        on_delete=models.PROTECT,
        related_name="inquiries",
        verbose_name=_("customer"),
    )
    site = models.ForeignKey(
        "subscriptions.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inquiries",
        verbose_name=_("site"),
    )
    subject = models.CharField(_("subject"), max_length=200)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    received_at = models.DateTimeField(_("received"))
    # Stamped from the business calendar when received (support/calendar.py).
    after_hours = models.BooleanField(_("received after hours"), default=False)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_inquiries",
        verbose_name=_("assignee"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("asked by"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    objects = InquiryQuerySet.as_manager()

    class Meta:
        verbose_name = _("inquiry")
        verbose_name_plural = _("inquiries")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["new", "answered", "closed"]),
                name="%(app_label)s_%(class)s_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["normal", "high"]),
                name="%(app_label)s_%(class)s_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="closed", closed_at__isnull=False) | ~Q(status="closed"),
                name="%(app_label)s_%(class)s_closed_has_time",
            ),
        ]
        indexes = [
            # The support desk's queue: newest first within a status.
            models.Index(fields=["status", "-received_at"], name="support_inq_status_recv_idx"),
            # A customer's own inquiries, newest first (portal list and API).
            models.Index(fields=["customer", "-received_at"], name="support_inq_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class InquiryMessage(models.Model):
    """One message of an inquiry's conversation; ``internal`` ones are staff-only notes."""

    inquiry = models.ForeignKey(
        Inquiry, on_delete=models.CASCADE, related_name="messages", verbose_name=_("inquiry")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    body = models.TextField(_("message"))
    internal = models.BooleanField(
        _("internal note"),
        default=False,
        help_text=_("Seen by staff only: never shown or sent to the customer."),
    )
    from_staff = models.BooleanField(_("from support"), default=False)
    created_at = models.DateTimeField(_("written"))
    # A staff reply's e-mail to the customer, queued with it: its state (sent, failed
    # with the error) is shown on the reply in the admin.
    email = models.OneToOneField(
        "OutboundEmail",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("e-mail"),
    )

    class Meta:
        verbose_name = _("inquiry message")
        verbose_name_plural = _("inquiry messages")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(body=""), name="%(app_label)s_%(class)s_body_not_empty"
            ),
            # A customer cannot write a staff-only note.
            models.CheckConstraint(
                condition=Q(internal=False) | Q(from_staff=True),
                name="%(app_label)s_%(class)s_internal_from_staff",
            ),
        ]
        indexes = [
            # An inquiry's conversation in order (the customer's page reads it at once).
            models.Index(fields=["inquiry", "created_at"], name="support_inqmsg_thread_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.inquiry_id} {self.created_at:%Y-%m-%d %H:%M}"


class CannedReply(models.Model):
    """A reply support sends often (e.g. "the ground station is back"), ready to pick."""

    title = models.CharField(_("title"), max_length=200, unique=True)
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class OutboundEmail(models.Model):
    """One e-mail the portal sends. Every e-mail goes through this outbox.

    A row is written in the transaction of the change it tells about, so an e-mail is
    never lost to a crash or a broker outage, and never sent from a web request. ``key``
    says what the e-mail is ("inquiry-reply:42", "upgrades.notice:7"): one row per key,
    so queueing again, or from two workers at once, queues once.

    A row is either ready (``subject``, ``body``, ``to`` written when queued) or composed
    by the app that queued it (``composer``, ``composer_ref``) just before it is sent, so
    that what it says is true when it goes out (support/outbox.py).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not needed any more")

    key = models.CharField(_("key"), max_length=200, unique=True)
    composer = models.CharField(_("composed by"), max_length=50, blank=True, db_default="")
    composer_ref = models.BigIntegerField(_("composed from"), null=True, blank=True)
    to = models.JSONField(_("recipients"), default=list, blank=True, db_default=[])
    subject = models.CharField(_("subject"), max_length=300, blank=True, db_default="")
    body = models.TextField(_("message"), blank=True, db_default="")
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.QUEUED,
        db_default=Status.QUEUED,
    )
    created_at = models.DateTimeField(_("queued"))
    # Not before: a failed attempt waits longer each time (backoff).
    send_after = models.DateTimeField(_("next attempt"))
    # A sender holds the row until then while it talks to the mail server.
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0, db_default=0)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, db_default="")

    class Meta:
        verbose_name = _("outgoing e-mail")
        verbose_name_plural = _("outgoing e-mails")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sent", "failed", "skipped"]),
                name="%(app_label)s_%(class)s_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(composer="") | Q(composer_ref__isnull=False),
                name="%(app_label)s_%(class)s_composer_has_ref",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="%(app_label)s_%(class)s_sent_has_time",
            ),
        ]
        indexes = [
            # The senders' queue: queued rows by id (claimed oldest first).
            models.Index(
                fields=["id"], condition=Q(status="queued"), name="support_outbox_queued_idx"
            ),
            # Staff's view of what needs attention and the sweeper's due rows.
            models.Index(fields=["status", "send_after"], name="support_outbox_status_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or self.key


class FollowUp(models.Model):
    """Work a commit made necessary, recorded in that commit: a transactional outbox of
    Celery tasks (support/followups.py).

    The row is written in the transaction of the change; after commit it is sent to the
    broker, and a beat job sends again whatever the broker did not take, lost, or a dead
    worker left unfinished. The task removes the row when it has run. ``key`` (the task
    and its arguments) merges the same work asked for many times while it waits: 500
    declines while the network is down are one reconcile waiting, not 500. No unique
    constraint on it: a transaction asking for work never waits on another's lock.
    """

    class Task(models.TextChoices):
        # What a worker does, as staff read it; a task not listed shows its name.
        APPLY_BLANKET_UPGRADE = "upgrades.tasks.apply_blanket_upgrade", _("Grant a blanket upgrade")
        END_BLANKET_GRANTS = "upgrades.tasks.end_blanket_grants", _("End a blanket upgrade")
        RECONCILE_SPEEDS = "upgrades.tasks.reconcile_speeds", _("Send speed changes to the network")
        QUEUE_MASS_MESSAGE = "incidents.tasks.queue_mass_message", _("Queue a mass message")
        POST_MASS_MESSAGE_WEBHOOK = (
            "incidents.tasks.post_mass_message_webhook",
            _("Post a mass message to the webhook"),
        )
        ASK_TO_RECHECK = (
            "incidents.tasks.ask_to_recheck_after_disaster",
            _("Ask sites to check their equipment again"),
        )
        POST_AFTER_HOURS_WEBHOOK = (
            "support.tasks.post_after_hours_webhook",
            _("Post an after-hours alert to the webhook"),
        )
        SEND_QUEUED_EMAILS = "support.tasks.send_queued_emails", _("Send queued e-mails")

    task = models.CharField(_("task"), max_length=200, choices=Task)
    args = models.JSONField(_("arguments"), default=list, blank=True)
    # The task and its arguments. Rows of one key are one piece of work: a run takes
    # every row of its key that waits, and only one message per key is out at a time.
    key = models.CharField(_("key"), max_length=255)
    created_at = models.DateTimeField(_("asked for"))
    # Sent to the broker (again) from then on: now for new work, later while a message
    # is out or a worker runs it (its lease), later still after a failure (backoff).
    due_at = models.DateTimeField(_("due"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    # After a failed run: no run takes the row before then (its backoff), whatever
    # message comes; the retry timed for then does.
    hold_until = models.DateTimeField(_("backing off until"), null=True, blank=True)
    # The Celery task id of the run that holds the row (its lease is ``due_at``).
    run_id = models.CharField(_("run"), max_length=64, blank=True, default="")
    relays = models.PositiveIntegerField(_("messages sent"), default=0)
    attempts = models.PositiveIntegerField(_("failed runs"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["due_at"], name="support_followup_due_idx"),
            models.Index(fields=["key"], name="support_followup_key_idx"),
            models.Index(fields=["run_id"], name="support_followup_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_task_display()} {tuple(self.args)}"
