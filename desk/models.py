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

    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="inquiries",
        verbose_name=_("customer"),
    )
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
        ]
        indexes = [
            # The support desk's queue: newest first within a status.
            models.Index(fields=["status", "-received_at"], name="desk_inq_status_recv_idx"),
            # A customer's own inquiries, newest first (portal list and API).
            models.Index(fields=["customer", "-received_at"], name="desk_inq_customer_idx"),
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
