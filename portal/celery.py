"""The Celery application: configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Every task is a FollowUpTask: a message relayed from the follow-up outbox takes its
# rows before the run and settles them after (support/followups.py).
app = Celery("portal", task_cls="support.followups:FollowUpTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
