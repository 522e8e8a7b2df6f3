"""Follow-ups: work a commit makes necessary, recorded in that commit (an outbox of tasks).

``enqueue_on_commit(task, *args)`` writes a ``FollowUp`` row in the caller's transaction
and, once it has committed, sends the task to the broker. Nothing is lost between the
commit and the broker: if the broker cannot take the message, or loses it, or the worker
that took it dies, the row is still there and ``relay_due`` (beat, every
``FOLLOWUP_RELAY_SECONDS``) sends it again. The page or API that made the change never
sees a broker error; it answers what was done.

The rows of one key (task and arguments) are one piece of work:

* while a message for a key is out (sent, not started yet) or the key waits for its
  backoff, new rows of the key wait with it, so 500 commits during an outage are one
  run later, not 500;
* a worker starting the task takes every waiting row of its key (``FollowUpTask``); the
  run reads the database after that, so it covers every change those rows asked for.
  Rows committed during the run wait for the next run;
* a run that succeeds deletes its rows; one that fails gives them back with a bounded,
  jittered backoff; one whose worker died is found by its lease (``due_at``), which long
  runs renew with ``keep_alive()`` between chunks.

Every task is idempotent (design brief), so the rare second run (a message redelivered
after the row was already done) changes nothing.
"""

import json
import logging
import random
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timedelta

from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

logger = logging.getLogger(__name__)

TASK_ID_PREFIX = "followup-"

# The run this worker thread is in: (task id, last keep-alive on the monotonic clock).
_current_run: ContextVar[tuple[str, float] | None] = ContextVar("followup_run", default=None)


def key_of(task_name: str, args) -> str:
    return f"{task_name}:{json.dumps(list(args), separators=(',', ':'))}"[:255]


def enqueue_on_commit(task, *args) -> None:
    """Record ``task(*args)`` in the current transaction; send it once that commits.

    Outside a transaction the row is written at once and sent at once."""
    from support.models import FollowUp

    now = timezone.now()
    key = key_of(task.name, args)
    FollowUp.objects.create(task=task.name, args=list(args), key=key, created_at=now, due_at=now)
    transaction.on_commit(lambda: relay_due(keys=[key]))


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed run: doubling from the base, capped, and jittered
    ("equal jitter": half the delay plus a random part of the other half) so work that
    failed together does not come back at the same instant."""
    delay = min(
        settings.FOLLOWUP_BACKOFF_MAX_SECONDS,
        settings.FOLLOWUP_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0),
    )
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311


def relay_due(*, keys: list[str] | None = None, now: datetime | None = None) -> int:
    """Send to the broker one message per key whose work is due; returns how many.

    A broker error stops the round quietly: the rows stay due, the next round sends them.
    """
    from celery import current_app as app

    from support.models import FollowUp

    now = now or timezone.now()
    waiting = FollowUp.objects.filter(started_at__isnull=True)
    if keys is None:
        # Runs whose worker died: their lease passed without a keep-alive or an end.
        FollowUp.objects.filter(started_at__isnull=False, due_at__lte=now).update(
            started_at=None,
            run_id="",
            due_at=now,
            attempts=F("attempts") + 1,
            last_error="the run stopped before it finished (worker lost)",
        )
    due = waiting.filter(due_at__lte=now)
    if keys is not None:
        due = due.filter(key__in=keys)
    sent = 0
    for key in due.order_by().values_list("key", flat=True).distinct()[:1000]:
        # A message already out, or a backoff running: the due rows join it.
        later = waiting.filter(key=key, due_at__gt=now).aggregate(
            at=Min("due_at"), hold=Max("hold_until")
        )
        if later["at"] is not None:
            waiting.filter(key=key, due_at__lte=now).update(
                due_at=later["at"], hold_until=later["hold"]
            )
            continue
        row = waiting.filter(key=key).order_by("pk").first()
        if row is None:
            continue
        task = app.tasks.get(row.task)
        if task is None:  # renamed or removed by a deployment: shown, not retried hot
            waiting.filter(key=key).update(
                due_at=now + timedelta(days=1), last_error=f"no task named {row.task}"
            )
            logger.error("follow-up %s names no task; it waits for staff", key)
            continue
        out_until = now + timedelta(seconds=settings.FOLLOWUP_REDELIVER_SECONDS)
        # Conditional: of two relays at once, one sends.
        if not waiting.filter(key=key, due_at__lte=now).update(
            due_at=out_until, relays=F("relays") + 1
        ):
            continue
        try:
            task.apply_async(args=row.args, task_id=f"{TASK_ID_PREFIX}{uuid.uuid4().hex}")
        except Exception:  # kombu/redis errors vary by transport
            waiting.filter(key=key, due_at=out_until).update(due_at=now)
            logger.warning("broker unavailable: %s waits in the database", key, exc_info=True)
            break
        sent += 1
    return sent


def keep_alive() -> None:
    """Renew the lease of the follow-up this worker runs (call between chunks)."""
    from support.models import FollowUp

    run = _current_run.get()
    if run is None:
        return
    run_id, last = run
    if time.monotonic() - last < settings.FOLLOWUP_LEASE_SECONDS / 4:
        return  # renewed a quarter of a lease ago at most: still well inside it
    FollowUp.objects.filter(run_id=run_id).update(due_at=timezone.now() + _lease())
    _current_run.set((run_id, time.monotonic()))


def _lease() -> timedelta:
    return timedelta(seconds=settings.FOLLOWUP_LEASE_SECONDS)


def _drop_broken_connection() -> None:
    """A run that failed because its database connection broke (a failover, a cut) gives
    its rows back over a new connection: on the broken one the give-back fails too, and
    the work would wait for its lease instead of its backoff."""
    if (
        connection.connection is not None
        and connection.errors_occurred
        and not connection.in_atomic_block
        and not connection.is_usable()
    ):
        connection.close()


class FollowUpTask(DjangoTask):
    """The portal's task class: a message sent by ``relay_due`` takes its key's rows
    before the run and settles them after it. Other calls (beat, tests) just run."""

    def __call__(self, *args, **kwargs):
        task_id = getattr(self.request, "id", None) or ""
        if not task_id.startswith(TASK_ID_PREFIX):
            return super().__call__(*args, **kwargs)
        from support.models import FollowUp

        now = timezone.now()
        # Not rows waiting out a failed run's backoff: the retry timed for its end (or
        # the relay after it) takes them. One second of slack for the clocks of workers.
        waiting = FollowUp.objects.filter(key=key_of(self.name, args), started_at__isnull=True)
        free = Q(hold_until__isnull=True) | Q(hold_until__lte=now + timedelta(seconds=1))
        if not waiting.filter(free).update(started_at=now, run_id=task_id, due_at=now + _lease()):
            # Done by an earlier message, running under another one, or backing off.
            logger.info("%s%s: nothing waits, already done", self.name, args)
            return None
        token = _current_run.set((task_id, time.monotonic()))
        try:
            result = super().__call__(*args, **kwargs)
        except Exception as error:
            _drop_broken_connection()
            self._give_back(task_id, args, error)
            raise
        except BaseException:
            # The worker is stopping: the work is due again at once.
            FollowUp.objects.filter(run_id=task_id).update(
                started_at=None, run_id="", due_at=timezone.now()
            )
            raise
        finally:
            _current_run.reset(token)
        FollowUp.objects.filter(run_id=task_id).delete()
        return result

    def _give_back(self, task_id: str, args, error: Exception) -> None:
        """A failed run: its rows wait for the backoff, and a message timed for its end
        is sent now (the relay sends one only if that message is lost)."""
        from support.models import FollowUp

        rows = FollowUp.objects.filter(run_id=task_id)
        attempts = (rows.aggregate(most=Max("attempts"))["most"] or 0) + 1
        wait = backoff(attempts)
        now = timezone.now()
        held = now + wait
        redeliver = timedelta(seconds=settings.FOLLOWUP_REDELIVER_SECONDS)
        rows.update(
            started_at=None,
            run_id="",
            attempts=attempts,
            relays=F("relays") + 1,
            last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        # With the work asked for during the run (its message may be out already): one
        # retry after the backoff, however many commits asked meanwhile.
        FollowUp.objects.filter(key=key_of(self.name, args), started_at__isnull=True).update(
            hold_until=held, due_at=held + redeliver
        )
        try:
            self.apply_async(
                args=args,
                countdown=wait.total_seconds(),
                task_id=f"{TASK_ID_PREFIX}{uuid.uuid4().hex}",
            )
        except Exception:  # the broker is down too: the relay sends it when due
            FollowUp.objects.filter(key=key_of(self.name, args), started_at=None).update(
                due_at=now + wait
            )
