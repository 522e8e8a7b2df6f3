"""Handing work to Celery after a commit, without letting a broker outage break the page.

A follow-up (push speeds, grant a declaration's lines, send e-mail…) is sent to the broker
once the transaction that made it necessary has committed. If the broker cannot take
the message, the change is still committed and its follow-up is still due: each one is
found again by a beat sweeper from the database's state (README, "Reliability"), so the
page or API answers what was done instead of a 500.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    """``task.delay(*args)`` after commit; a broker error is logged, never raised."""

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:  # kombu/redis errors vary by transport; the sweeper catches up
            logger.warning("could not enqueue %s%s; beat will catch up", task.name, args)

    transaction.on_commit(send)
