"""The shared bottom layer's data: what every contact kind shares, the on-call roster,
after-hours alerts, the outbox and follow-ups. No key here names a customer: the apps
above hold those."""

from typing import ClassVar

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from support.channels import Channel
from support.indexes import UpperPatternIndex


class ContactPriority(models.TextChoices):
    """Triage priority of any contact kind: high after hours or in a declared disaster."""

    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class ContactQuerySet(models.QuerySet):
    def open(self) -> "ContactQuerySet":
        return self.filter(status__in=self.model.OPEN_STATUSES)

    def past_target(self, now) -> "ContactQuerySet":
        """Open, nobody has responded, and the first-response target has passed."""
        return self.open().filter(first_response_at__isnull=True, respond_by__lt=now)


class Contact(models.Model):
    """What every contact kind shares, whatever it is about: upgrade requests, damage
    reports, inquiries (and calls and e-mails). One shape lets the desk's queue, SLA,
    assignment and merging treat them alike.

    ``status`` is each kind's own (its ``Status`` choices); ``OPEN_STATUSES`` says which
    of them still need the desk. Priority and the first-response target are stamped when
    the contact arrives, by one rule for every kind (``incidents.contacts``).
    """

    OPEN_STATUSES: ClassVar[frozenset[str]] = frozenset()

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    received_at = models.DateTimeField(_("received"))
    # Stamped from the business calendar when received (support/calendar.py).
    after_hours = models.BooleanField(_("received after hours"), default=False)
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=ContactPriority.choices,
        default=ContactPriority.NORMAL,
    )
    status = models.CharField(_("status"), max_length=20)
    # Staff only: a customer user is never offered, and the service refuses one.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    # The first-response target (support/sla.py): business time for a contact received
    # in working hours, clock time after hours.
    respond_by = models.DateTimeField(_("first response due"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    # The same matter, already in the desk as that contact: this one is closed into it.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged into"),
    )

    objects = ContactQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_past_target(self, now) -> bool:
        """The row's side of ``ContactQuerySet.past_target``."""
        return (
            self.is_open
            and self.first_response_at is None
            and self.respond_by is not None
            and self.respond_by < now
        )


class ContactEvent(models.Model):
    """What staff did to a contact of any kind: assigned it, took it over from a
    colleague, changed its priority (and why), or noted something internally. Written by
    the services of support/contacts.py only; shown to staff on the contact's page,
    never to the customer.

    The contact is named by a generic key (content type and id): this bottom layer
    never names the kinds above it."""

    class Action(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        UNASSIGNED = "unassigned", _("Unassigned")
        TOOK_OVER = "took_over", _("Took over")
        PRIORITY = "priority", _("Priority changed")
        NOTE = "note", _("Internal note")

    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("contact kind")
    )
    object_id = models.PositiveBigIntegerField(_("contact"))
    contact = GenericForeignKey("content_type", "object_id")
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("by"),
        limit_choices_to={"is_staff": True},
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    # Names as they were then (a staff member's name, a priority): the record stays true
    # when people or labels change later.
    from_value = models.CharField(_("before"), max_length=200, blank=True)
    to_value = models.CharField(_("after"), max_length=200, blank=True)
    # The note, or the reason for a priority change.
    text = models.TextField(_("text"), blank=True)

    class Meta:
        verbose_name = _("contact event")
        verbose_name_plural = _("contact events")
        ordering = ["-at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["assigned", "unassigned", "took_over", "priority", "note"]),
                name="%(app_label)s_%(class)s_action_valid",
            ),
            models.CheckConstraint(
                condition=~Q(action__in=["priority", "note"]) | ~Q(text=""),
                name="%(app_label)s_%(class)s_note_and_reason_have_text",
            ),
        ]
        indexes = [
            # One contact's history on its page, newest first.
            models.Index(
                fields=["content_type", "object_id", "at"], name="support_contact_event_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"

    def describe(self) -> str:
        """The event in words staff read on the contact's page."""
        values = {"from": self.from_value, "to": self.to_value, "text": self.text}
        if self.action == self.Action.TOOK_OVER:
            return _("took over from %(from)s") % values
        if self.action == self.Action.ASSIGNED:
            if self.from_value:
                return _("assigned to %(to)s (was %(from)s)") % values
            return _("assigned to %(to)s") % values
        if self.action == self.Action.UNASSIGNED:
            return _("unassigned (was %(from)s)") % values
        if self.action == self.Action.PRIORITY:
            return _("priority %(from)s → %(to)s: %(text)s") % {
                **values,
                "from": _label(ContactPriority, self.from_value),
                "to": _label(ContactPriority, self.to_value),
            }
        return _("note: %(text)s") % values


def _label(choices: type[models.TextChoices], value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


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
    """The notice that an after-hours contact arrived, and, while nobody picks it up, the
    reminder to the on-call staff and the escalation to the support group: each at most
    once per contact."""

    class Stage(models.TextChoices):
        FIRST = "first", _("First alert")
        REMINDER = "reminder", _("Reminder to the on-call staff")
        ESCALATION = "escalation", _("Escalation to the support group")

    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices, default=Stage.FIRST)

    class ContactKind(models.TextChoices):
        INQUIRY = "inquiry", _("Inquiry")
        UPGRADE_REQUEST = "upgrade_request", _("Speed-upgrade request")
        DAMAGE_REPORT = "damage_report", _("Damage report")
        INQUIRY_FOLLOW_UP = "inquiry_follow_up", _("Customer's follow-up to an inquiry")
        CALL = "call", _("Phone call")

    contact_kind = models.CharField(_("contact kind"), max_length=50, choices=ContactKind)
    contact_id = models.CharField(_("contact"), max_length=50)
    summary = models.CharField(_("summary"), max_length=300)
    # What the on-call person needs to know at once, beyond the summary: for a call, who
    # is calling (their sites, lines' speed, pending grants, the disaster covering them).
    details = models.TextField(_("details"), blank=True, db_default="")
    url = models.CharField(_("link"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received"))
    # When this stage was sent: how long the contact had waited then.
    alerted_at = models.DateTimeField(_("alerted"), null=True, blank=True)
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
                fields=["contact_kind", "contact_id", "stage"],
                name="%(app_label)s_%(class)s_once_per_stage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_contact_kind_display()} {self.contact_id} ({self.get_stage_display()})"


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
    # Extra headers sent with the message, e.g. In-Reply-To and References so that the
    # customer's mail program threads a reply under their e-mail.
    headers = models.JSONField(_("extra headers"), default=dict, blank=True, db_default={})

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
            # The admin's list, newest first (one e-mail per customer and event).
            models.Index(fields=["created_at", "id"], name="support_outbox_created_idx"),
            # The admin's search by key: the link from a notice to its e-mail.
            UpperPatternIndex(Upper("key"), name="support_outbox_key_upper_idx"),
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
