"""Rows the portal itself keeps: the scheduler's heartbeat."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """The last time a periodic job ran through beat and a worker, by job name.

    One row per name, overwritten: the point is "is the scheduler alive", not a history.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    beat_at = models.DateTimeField(_("last beat"))
    count = models.PositiveBigIntegerField(_("beats"), default=0)
    # The beats of the last few minutes: twice as many as scheduled means a second beat
    # process is running (every periodic job then runs twice).
    recent = models.JSONField(_("recent beats"), default=list, blank=True)

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")
        ordering = ["name"]

    def __str__(self) -> str:
        return str(self.label)

    @property
    def label(self) -> str:
        # "beat" is the scheduler's own heartbeat (portal/tasks.py, HEARTBEAT_NAME).
        return _("Scheduler (periodic jobs)") if self.name == "beat" else self.name
