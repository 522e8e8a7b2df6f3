"""The support desk: customers' inquiries and their conversations, canned replies."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from incidents.models import IncidentContact
from subscriptions.models import ContactPhone, Customer, Site
from support.indexes import UpperPatternIndex
from support.models import ContactQuerySet, OutboundEmail


class InquiryQuerySet(ContactQuerySet):
    def for_customer(self, customer_id: int) -> "InquiryQuerySet":
        return self.filter(customer_id=customer_id)


class Inquiry(ContactPhone, IncidentContact):
    """A general question from a customer: in the portal, the API, or taken by staff.

    new → answered (staff replied) → new again (the customer followed up) … → closed.
    """

    class Status(models.TextChoices):
        NEW = "new", _("New")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    OPEN_STATUSES = frozenset({Status.NEW})

    # Empty only for an e-mail from an unknown sender: staff choose the customer in the
    # admin (the inquiry is in the queue as "unknown sender" until then).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inquiries",
        verbose_name=_("customer"),
    )
    # The address an e-mailed inquiry came from: replies go there too (and only there
    # while the sender is unknown).
    sender_email = models.EmailField(_("sender's e-mail"), blank=True, db_default="")
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inquiries",
        verbose_name=_("site"),
    )
    subject = models.CharField(_("subject"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
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
                condition=Q(status="closed", closed_at__isnull=False) | ~Q(status="closed"),
                name="%(app_label)s_%(class)s_closed_has_time",
            ),
            # Only an e-mail may come from someone we do not know yet.
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | ~Q(sender_email=""),
                name="%(app_label)s_%(class)s_customer_or_sender",
            ),
        ]
        indexes = [
            # The support desk's queue: newest first within a status.
            models.Index(fields=["status", "-received_at"], name="desk_inq_status_recv_idx"),
            # A customer's own inquiries, newest first (portal list and API).
            models.Index(fields=["customer", "-received_at"], name="desk_inq_customer_idx"),
            # The admin's list in its default order, every status.
            models.Index(fields=["received_at", "id"], name="desk_inq_recv_idx"),
            # The admin's search by sender (an e-mail from an unknown address).
            UpperPatternIndex(Upper("sender_email"), name="desk_inq_sender_upper_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def reference(self) -> str:
        """What an e-mail's subject carries so that a reply finds this inquiry."""
        return f"[#INQ-{self.pk}]"


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
        OutboundEmail,
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
            models.Index(fields=["inquiry", "created_at"], name="desk_inqmsg_thread_idx"),
        ]

    def __str__(self) -> str:
        # Shown as the message's title in the admin: Japan time, as every time there.
        return f"{self.inquiry_id} {localtime(self.created_at):%Y-%m-%d %H:%M}"


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


class InboundEmail(models.Model):
    """One e-mail fetched from the support mailbox (desk/mailbox.py), recorded before it
    is processed: its Message-ID is unique, so a message is taken once however many
    fetches see it, and its raw bytes are kept, so nothing is lost to a message that
    cannot be read (it stays here, *failed*, with the error, for staff)."""

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Could not be read")

    message_id = models.CharField(_("Message-ID"), max_length=500, unique=True)
    folder = models.CharField(_("IMAP folder"), max_length=200)
    uid = models.CharField(_("IMAP UID"), max_length=20)
    raw = models.BinaryField(_("raw message"))
    sender = models.CharField(_("from"), max_length=300, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.RECEIVED
    )
    error = models.TextField(_("error"), blank=True)
    fetched_at = models.DateTimeField(_("fetched"))
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    # When a fetch took the move to the processed folder upon itself: two fetches that
    # both saw the message done would otherwise both move it (the IMAP server copies a
    # message another session has just moved, so it would be in the folder twice).
    move_claimed_at = models.DateTimeField(_("move claimed"), null=True, blank=True)
    inquiry = models.ForeignKey(
        Inquiry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="emails",
        verbose_name=_("inquiry"),
    )
    # The conversation's message this e-mail became (the first one, or a follow-up).
    inquiry_message = models.OneToOneField(
        InquiryMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_email",
        verbose_name=_("message"),
    )
    acknowledgement = models.OneToOneField(
        OutboundEmail,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledgement"),
    )

    class Meta:
        verbose_name = _("received e-mail")
        verbose_name_plural = _("received e-mails")
        ordering = ["-fetched_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["received", "processed", "failed"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
        ]
        indexes = [
            # The admin's list of e-mails that could not be read.
            models.Index(fields=["state", "-fetched_at"], name="desk_inbound_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sender} {self.subject}"[:100]


def _private_storage():
    # Customers' files: never under a public URL; served by desk.views.AttachmentView,
    # which checks who asks.
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None)


class InquiryAttachment(models.Model):
    """A file that came with an inquiry's e-mail, checked by its content (JPEG, PNG, PDF)
    and stored privately under a name of ours."""

    inquiry = models.ForeignKey(
        Inquiry, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("inquiry")
    )
    message = models.ForeignKey(
        InquiryMessage,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("message"),
    )
    file = models.FileField(_("file"), upload_to="inquiries/%Y/%m/", storage=_private_storage)
    filename = models.CharField(_("file name"), max_length=200, blank=True)
    content_type = models.CharField(_("file type"), max_length=50)
    size = models.PositiveIntegerField(_("size (bytes)"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.filename or _("attachment %(number)s") % {"number": self.pk}


class Call(IncidentContact):
    """A phone call the phone system (PBX) told us about (desk/calls.py): who called,
    which customer that is, who answered, and, for a missed call, the callback.

    ringing → answered → ended, or ringing → missed → called back. A missed call stays
    on the callback list (the desk's queue) until a staff member records the callback.
    """

    class Status(models.TextChoices):
        RINGING = "ringing", _("Ringing")
        ANSWERED = "answered", _("Answered")
        MISSED = "missed", _("Missed")
        ENDED = "ended", _("Ended")
        CALLED_BACK = "called_back", _("Called back")

    class Direction(models.TextChoices):
        IN = "in", _("Incoming")
        OUT = "out", _("Outgoing")

    OPEN_STATUSES = frozenset({Status.RINGING, Status.MISSED})

    # The phone system's id of the call: its events name it.
    call_id = models.CharField(_("call id"), max_length=100, unique=True)
    direction = models.CharField(
        _("direction"), max_length=3, choices=Direction.choices, default=Direction.IN
    )
    from_number = models.CharField(_("caller number"), max_length=100, blank=True)
    from_e164 = models.CharField(_("caller number (E.164)"), max_length=16, blank=True)
    to_number = models.CharField(_("called number"), max_length=100, blank=True)
    # The customer on the other end: empty for an unknown caller, or until staff choose
    # among several customers who have the number (``candidates``).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("customer"),
    )
    candidates = models.ManyToManyField(
        Customer, blank=True, related_name="+", verbose_name=_("customers with this number")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RINGING
    )
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # Seconds talked (answer to hang-up); empty for a call nobody answered.
    duration = models.PositiveIntegerField(_("duration (seconds)"), null=True, blank=True)
    # The staff who took it, as the phone system named them (e-mail or extension), and
    # those names that are a staff member's e-mail.
    answered_by_names = models.JSONField(_("answered by (as sent)"), default=list, blank=True)
    answered_by = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("answered by")
    )
    answering_number = models.CharField(_("answering number"), max_length=100, blank=True)
    end_cause = models.CharField(_("end cause"), max_length=50, blank=True)
    callback_at = models.DateTimeField(_("called back"), null=True, blank=True)
    callback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("called back by"),
    )
    callback_note = models.TextField(_("callback note"), blank=True)
    # The customer's answer to the blanket upgrade, given on this call (every pending
    # line of theirs at once, as the portal's "keep all" / "decline all").
    blanket_answer = models.CharField(
        _("answer to the blanket upgrade"),
        max_length=10,
        choices=[("kept", _("Kept fast")), ("declined", _("Back to normal"))],
        blank=True,
    )
    blanket_answer_lines = models.PositiveIntegerField(_("lines answered"), default=0)
    # What the customer asked, recorded from the call (desk/calls.py), one of each.
    inquiry = models.ForeignKey(
        Inquiry,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("inquiry"),
    )
    upgrade_request = models.ForeignKey(
        "upgrades.UpgradeRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("upgrade request"),
    )
    damage_report = models.ForeignKey(
        "incidents.DamageReport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("damage report"),
    )

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["ringing", "answered", "missed", "ended", "called_back"]),
                name="%(app_label)s_%(class)s_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(direction__in=["in", "out"]),
                name="%(app_label)s_%(class)s_direction_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="called_back") | Q(callback_at__isnull=False),
                name="%(app_label)s_%(class)s_called_back_has_time",
            ),
        ]
        indexes = [
            # The caller log, newest first, and its callback list (missed, not called back).
            models.Index(fields=["status", "-received_at"], name="desk_call_status_recv_idx"),
            # A customer's calls on the desk's customer page.
            models.Index(fields=["customer", "-received_at"], name="desk_call_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_number or '—'} {localtime(self.received_at):%Y-%m-%d %H:%M}"

    @property
    def missed(self) -> bool:
        """An incoming call that ended without an answer (still so after the callback)."""
        return (
            self.direction == self.Direction.IN
            and self.ended_at is not None
            and self.answered_at is None
        )

    @property
    def duration_text(self) -> str:
        """Talk time as minutes:seconds ("" when nobody answered)."""
        if self.duration is None:
            return ""
        return f"{self.duration // 60}:{self.duration % 60:02d}"


class CallEvent(models.Model):
    """One event the phone system posted, as it came: once per call and event, so a
    replay changes nothing."""

    class Event(models.TextChoices):
        NEW_CALL = "newCall", _("New call")
        ANSWER = "answer", _("Answered")
        HANGUP = "hangup", _("Hung up")

    call = models.ForeignKey(
        Call, on_delete=models.CASCADE, related_name="events", verbose_name=_("call")
    )
    event = models.CharField(_("event"), max_length=10, choices=Event.choices)
    payload = models.JSONField(_("as posted"), default=dict)
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("call event")
        verbose_name_plural = _("call events")
        ordering = ["received_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "event"], name="%(app_label)s_%(class)s_once_per_call"
            ),
            models.CheckConstraint(
                condition=Q(event__in=["newCall", "answer", "hangup"]),
                name="%(app_label)s_%(class)s_event_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} {self.event}"
