"""The support desk: customers' inquiries and their conversations, canned replies."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from incidents.models import IncidentContact
from subscriptions.models import Customer, Site
from support.models import ContactQuerySet, OutboundEmail


class InquiryQuerySet(ContactQuerySet):
    def for_customer(self, customer_id: int) -> "InquiryQuerySet":
        return self.filter(customer_id=customer_id)


class Inquiry(IncidentContact):
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
