"""Follow-ups in tests: what the commits asked a worker to do, and running it as one."""

import uuid

from support.followups import TASK_ID_PREFIX
from support.models import FollowUp


def asked_for(task) -> list[tuple]:
    """The work of ``task`` waiting for a worker: the arguments of each, oldest first.
    Rows asking for the same work (same arguments) are one piece of work: it runs once."""
    rows = FollowUp.objects.filter(task=task.name, started_at__isnull=True).order_by("pk")
    return list(dict.fromkeys(tuple(args) for args in rows.values_list("args", flat=True)))


def run_follow_ups(task) -> int:
    """Run each waiting follow-up of ``task`` in this process, as a worker taking its
    message would (the run takes the rows of its key and deletes them when it succeeds);
    returns how many runs there were."""
    runs = 0
    for args in asked_for(task):
        task.apply(args=args, task_id=f"{TASK_ID_PREFIX}{uuid.uuid4().hex}").get()
        runs += 1
    return runs
