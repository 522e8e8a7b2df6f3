"""What every contact kind shares: the on-call roster and after-hours alerts."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


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
        return f"{self.staff} {self.starts_at:%Y-%m-%d %H:%M}"


class AfterHoursAlert(models.Model):
    """The notice that an after-hours contact arrived: at most one per contact."""

    contact_kind = models.CharField(_("contact kind"), max_length=50)
    contact_id = models.CharField(_("contact"), max_length=50)
    summary = models.CharField(_("summary"), max_length=300)
    url = models.CharField(_("link"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
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
        return f"{self.contact_kind} {self.contact_id}"
