"""Wide-scale disasters and their blanket upgrades (FAQ Q2).

Declaring a disaster upgrades every in-service line in its scope at once; each grant
waits for its customer's confirmation until the deadline; the revert job returns to
normal the ones nobody confirmed. A confirmed grant is never reverted: every transition
is a conditional update on the grant's own state, and the revert job locks the grants it
takes (SKIP LOCKED), so a confirmation and the job meeting at the deadline end with one
winner, and two jobs never take the same grant.

Every path here that touches many lines works in chunks of constant queries.
"""

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, Exists, Max, Min, OuterRef, QuerySet, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.models import Disaster
from incidents.services import check_disaster_scope, close_disaster, open_disaster
from subscriptions.models import Subscription
from subscriptions.prefectures import Prefecture
from support.calendar import is_after_hours
from support.channels import Channel
from support.followups import enqueue_on_commit, keep_alive
from support.models import OutboundEmail
from upgrades.bulk import insert_from_select, refresh_statistics
from upgrades.models import BlanketUpgrade, BlanketUpgradeEvent, CustomerNotice, SpeedGrant
from upgrades.selectors import other_active_blankets
from upgrades.services.notices import hand_over_run, queue_blanket_notices, queue_chunk_notices
from upgrades.services.speeds import (
    enqueue_follow_ups,
    lower_desired_speeds,
    raise_desired_speeds,
)
from upgrades.services.tallies import count_grants, grants_of, with_grants_in

# The longest a blanket upgrade waits for answers, extensions included: beyond that it
# would be a permanent upgrade nobody asked for.
MAX_WINDOW_DAYS = 30


def declare_disaster(
    *,
    operator,
    title: str,
    nationwide: bool,
    prefectures: list[str],
    message: str = "",
    message_en: str = "",
    window_days: int | None = None,
    idempotency_key: str,
    confirm_overlap: bool = False,
    now: datetime,
) -> BlanketUpgrade:
    """Declare a wide-scale disaster and start its blanket upgrade.

    The same ``idempotency_key`` (the form's one-time token, an API client's key)
    returns the blanket upgrade already started, so a double submit declares once; the
    returned blanket's ``created_at`` then differs from ``now``.
    While an active disaster already covers part of the scope (or either is nationwide)
    the declaration is refused (ValidationError on ``confirm_overlap``) unless the
    operator confirms it: a second, overlapping disaster is usually a mistake.
    Granting the lines runs in a Celery task after commit (``apply_blanket_upgrade``).
    """
    window_days = settings.BLANKET_CONFIRMATION_DAYS if window_days is None else window_days
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValidationError({"window_days": _("The confirmation window is 1 to 30 days.")})
    with transaction.atomic():
        already = (
            Disaster.objects.filter(idempotency_key=idempotency_key)
            .select_related("blanket_upgrade__disaster")
            .first()
        )
        if already is not None:
            return _resume_granting(already.blanket_upgrade)
        codes = check_disaster_scope(title=title, nationwide=nationwide, prefectures=prefectures)
        if not confirm_overlap:
            overlaps = overlapping_disasters(nationwide=nationwide, prefectures=codes)
            if overlaps:
                raise ValidationError({"confirm_overlap": _overlap_message(overlaps)})
        disaster, created = open_disaster(
            declared_by=operator,
            title=title,
            nationwide=nationwide,
            prefectures=prefectures,
            message=message,
            message_en=message_en,
            idempotency_key=idempotency_key,
            now=now,
        )
        if not created:
            return _resume_granting(disaster.blanket_upgrade)
        blanket = BlanketUpgrade.objects.create(
            disaster=disaster,
            deadline=now + timedelta(days=window_days),
            in_service_on=timezone.localdate(now),
            created_at=now,
        )
        BlanketUpgradeEvent.objects.create(
            blanket_upgrade=blanket,
            kind=BlanketUpgradeEvent.Kind.DECLARED,
            at=now,
            by=operator,
            detail={
                "nationwide": nationwide,
                "prefectures": disaster.prefectures,
                "window_days": window_days,
            },
        )
        from upgrades import tasks

        enqueue_on_commit(tasks.apply_blanket_upgrade, blanket.pk)
    return blanket


def _resume_granting(blanket: BlanketUpgrade) -> BlanketUpgrade:
    """A replayed declaration (the same token) declares nothing new, but asks again for
    the granting it still waits for: merged with the follow-up already waiting, if any."""
    if blanket.status == BlanketUpgrade.Status.APPLYING:
        from upgrades import tasks

        enqueue_on_commit(tasks.apply_blanket_upgrade, blanket.pk)
    return blanket


def overlapping_disasters(
    *, nationwide: bool, prefectures: list[str]
) -> list[tuple[Disaster, list[str] | None]]:
    """Active disasters whose area meets this scope, each with the prefecture codes they
    share (None when both are nationwide). Few disasters are active at once."""
    wanted = set(prefectures)
    found = []
    for disaster in Disaster.objects.active().order_by("declared_at", "pk"):
        if disaster.nationwide and nationwide:
            found.append((disaster, None))
            continue
        shared = (
            wanted
            if disaster.nationwide
            else set(disaster.prefectures)
            if nationwide
            else wanted & set(disaster.prefectures)
        )
        if shared:
            found.append((disaster, sorted(shared)))
    return found


def _overlap_message(overlaps: list[tuple[Disaster, list[str] | None]]) -> str:
    described = [
        _("“%(title)s” (declared %(declared)s): %(area)s")
        % {
            "title": disaster.title,
            "declared": timezone.localtime(disaster.declared_at).strftime("%Y-%m-%d %H:%M"),
            "area": _("nationwide")
            if shared is None
            else ", ".join(str(Prefecture(code).label) for code in shared),
        }
        for disaster, shared in overlaps
    ]
    return _(
        "An active disaster already covers part of this scope: %(disasters)s. "
        "Confirm with “Declare anyway” to declare this one as well."
    ) % {"disasters": "; ".join(described)}


def _lines_in_scope(blanket: BlanketUpgrade):
    """In-service lines of the disaster's area (held by another blanket upgrade or not)."""
    return Subscription.objects.in_service(blanket.in_service_on).filter(blanket.disaster.covers())


def _not_held_elsewhere(lines, *, blanket_id: int):
    """``lines`` but those another blanket upgrade already boosts.

    Overlapping declarations (a regional one, then nationwide) give a line one grant,
    one banner row and one e-mail: the first disaster's. The anti-join is only added
    while another blanket upgrade boosts a line at all (read from the other blankets'
    tally rows): a lone nationwide declaration, the common case, does not
    pay for it, and neither does its chunk bound (``apply_blanket_upgrade``).
    """
    others = with_grants_in(BlanketUpgrade.objects.exclude(pk=blanket_id), SpeedGrant.BOOSTING)
    if not others.exists():
        return lines
    held_elsewhere = SpeedGrant.objects.filter(
        subscription_id=OuterRef("pk"),
        source=SpeedGrant.Source.BLANKET,
        state__in=SpeedGrant.BOOSTING,
    ).exclude(blanket_upgrade_id=blanket_id)
    return lines.exclude(Exists(held_elsewhere))


def _grant_pending(*, blanket_id: int, lines, now: datetime, skip_conflicts: bool = True) -> int:
    """One pending blanket grant for each of ``lines``: one INSERT … SELECT. A line the
    blanket holds already is skipped, so a re-run inserts nothing; with
    ``skip_conflicts=False`` the caller knows none is held, and one would fail the
    statement (insert_from_select)."""
    return insert_from_select(
        SpeedGrant,
        ["subscription", "blanket_upgrade", "source", "state", "starts_at"],
        lines.order_by().values_list(
            "pk",
            Value(blanket_id),
            Value(SpeedGrant.Source.BLANKET),
            Value(SpeedGrant.State.PENDING),
            Value(now, output_field=DateTimeField()),
        ),
        skip_conflicts=skip_conflicts,
    )


def apply_blanket_upgrade(*, blanket_id: int, now: datetime, chunk_size: int | None = None) -> int:
    """Grant every in-scope line, a chunk of subscription ids at a time.

    Each chunk is one transaction of a constant number of statements (grants inserted
    from a SELECT, wanted speeds raised, notices queued, cursor moved). A run that dies
    resumes after the last committed chunk; a second run at once waits on the blanket
    row and then finds nothing left to insert. Returns the number of grants created.
    """
    chunk_size = chunk_size or settings.BLANKET_CHUNK_SIZE
    blanket = BlanketUpgrade.objects.select_related("disaster__declared_by").get(pk=blanket_id)
    lines = _lines_in_scope(blanket)
    # The audit of every speed change names what caused it and who (ProvisioningChange).
    cause = (
        f"blanket upgrade {blanket.pk}: {blanket.disaster.title}"
        f" (declared by {blanket.disaster.declared_by.email})"
    )
    created = 0
    while True:
        keep_alive()  # a long run keeps its follow-up (support/followups.py)
        with transaction.atomic():
            locked = BlanketUpgrade.objects.select_for_update().get(pk=blanket_id)
            if locked.status != BlanketUpgrade.Status.APPLYING:
                return created
            lower = locked.cursor
            # The chunk is the next chunk_size line ids after the cursor, in scope or not:
            # it reads its own range of the key and no other line, and no grant (the
            # grants other blankets hold are left out of it afterwards). Finding "the
            # chunk_size-th line in scope" instead read every line after the cursor once
            # the table outgrew what the planner would walk in order (135 ms a chunk at
            # 1,000,000 lines). It starts at the first line after the cursor, so a gap in
            # the ids costs nothing; new lines made meanwhile are in the last chunks.
            ahead = Subscription.objects.filter(pk__gt=lower).aggregate(
                first=Min("pk"), last=Max("pk")
            )
            if ahead["first"] is None:
                break
            upper = min(ahead["first"] - 1 + chunk_size, ahead["last"])
            chunk = SpeedGrant.objects.filter(
                blanket_upgrade_id=blanket.pk,
                subscription_id__gt=lower,
                subscription_id__lte=upper,
            )
            granted = _grant_pending(
                blanket_id=blanket.pk,
                lines=_not_held_elsewhere(
                    lines.filter(pk__gt=lower, pk__lte=upper), blanket_id=blanket.pk
                ),
                now=now,
                # Granting moves forward and commits each chunk with the cursor, so a
                # chunk's lines have no grant of this blanket yet: a plain INSERT, without
                # ON CONFLICT's speculative insertion (a check of the unique index before
                # each row and a confirmation after it). Only another disaster's ending
                # can hand lines over ahead of the cursor (_move_to_other_disasters, which
                # waits for this chunk's lock on the blanket); a chunk holding such lines
                # skips them. One look in the (blanket, line) index tells.
                skip_conflicts=chunk.exists(),
            )
            count_grants(blanket_id=blanket.pk, moves={(None, SpeedGrant.State.PENDING): granted})
            created += granted
            raise_desired_speeds(
                subscription_ids=chunk.values("subscription_id"),
                cause=cause,
                line_range=(lower, upper),
            )
            BlanketUpgrade.objects.filter(pk=blanket_id).update(cursor=upper)
            if lower == 0:
                # Start provisioning with the first chunk; it keeps going while later
                # chunks commit, and the beat safety net catches the rest.
                enqueue_follow_ups()
    with transaction.atomic():
        done = BlanketUpgrade.objects.filter(
            pk=blanket_id, status=BlanketUpgrade.Status.APPLYING
        ).update(status=BlanketUpgrade.Status.ACTIVE, applied_at=now)
        if done:
            BlanketUpgradeEvent.objects.create(
                blanket_upgrade_id=blanket_id,
                kind=BlanketUpgradeEvent.Kind.GRANTED,
                at=now,
                detail={"grants": grants_of(blanket_id)},
            )
            # Told once every line is granted: one e-mail per customer, all its lines.
            queue_blanket_notices(
                kind=CustomerNotice.Kind.BLANKET_STARTED,
                grants=SpeedGrant.objects.filter(blanket_upgrade_id=blanket_id),
                now=now,
            )
        enqueue_follow_ups()
    if created:
        # Before the senders read them: statistics that still describe an empty table.
        refresh_statistics(SpeedGrant, CustomerNotice, OutboundEmail)
    return created


def extend_deadline(*, blanket: BlanketUpgrade, new_deadline: datetime, operator, now: datetime):
    """Give customers more time. Grants already reverted stay reverted."""
    with transaction.atomic():
        locked = BlanketUpgrade.objects.select_for_update().get(pk=blanket.pk)
        if locked.status == BlanketUpgrade.Status.ENDED:
            raise ValidationError(_("This disaster has ended."))
        if new_deadline <= max(locked.deadline, now):
            raise ValidationError(
                {"deadline": _("The new deadline must be later than the current one and than now.")}
            )
        latest = locked.created_at + timedelta(days=MAX_WINDOW_DAYS)
        if new_deadline > latest:
            raise ValidationError(
                {
                    "deadline": _(
                        "A blanket upgrade waits %(days)s days at most, until %(latest)s."
                    )
                    % {
                        "days": MAX_WINDOW_DAYS,
                        "latest": timezone.localtime(latest).strftime("%Y-%m-%d %H:%M"),
                    }
                }
            )
        BlanketUpgrade.objects.filter(pk=blanket.pk).update(deadline=new_deadline)
        BlanketUpgradeEvent.objects.create(
            blanket_upgrade=locked,
            kind=BlanketUpgradeEvent.Kind.DEADLINE_EXTENDED,
            at=now,
            by=operator,
            detail={"from": locked.deadline.isoformat(), "to": new_deadline.isoformat()},
        )
    blanket.refresh_from_db()
    return blanket


def end_disaster(*, disaster: Disaster, operator, now: datetime, message: str = "") -> None:
    """End the disaster and its blanket upgrade. Its grants end in a task, in chunks;
    ``message`` is the operator's closing word in the "disaster ended" e-mails."""
    from upgrades import tasks

    with transaction.atomic():
        ended = close_disaster(disaster=disaster, ended_by=operator, now=now, message=message)
        if ended:
            blanket = BlanketUpgrade.objects.select_for_update().get(disaster=disaster)
            BlanketUpgrade.objects.filter(pk=blanket.pk).update(
                status=BlanketUpgrade.Status.ENDED, ended_at=now
            )
            BlanketUpgradeEvent.objects.create(
                blanket_upgrade=blanket, kind=BlanketUpgradeEvent.Kind.ENDED, at=now, by=operator
            )
            enqueue_on_commit(tasks.end_blanket_grants, blanket.pk)
    if not ended:
        # A replay (a second click): the grants still boosting lines are asked for again,
        # merged with the follow-up already waiting, if any. Outside the transaction
        # above, which the refusal would otherwise roll back with the request.
        if SpeedGrant.objects.boosting().filter(blanket_upgrade__disaster=disaster).exists():
            enqueue_on_commit(tasks.end_blanket_grants, disaster.blanket_upgrade.pk)
        raise ValidationError(_("This disaster has already ended."))
    # Equipment may have suffered: beat asks the sites in scope to check it again a day
    # later (incidents.readiness.disasters_due_for_recheck).


def _finish_grants_in_chunks(
    blankets,
    *,
    from_states,
    to_state: str,
    notice: str,
    cause: str,
    now,
    chunk_size,
    before_lowering=None,
) -> dict[int, int]:
    """Move the grants of ``blankets`` still in ``from_states`` to ``to_state``, chunk by
    chunk; lower speeds; tell each customer. Returns the grants moved, per blanket.

    ``blankets`` is checked again at each chunk (an extended deadline stops a revert).
    A chunk is a range of line ids within one blanket upgrade, read in the order of its
    unique (blanket, line) index from where the last chunk ended: it never reads the
    grants earlier chunks moved, and no id list travels through Python — the chunk's
    grants are locked and moved by one UPDATE whose subquery takes them FOR NO KEY UPDATE
    SKIP LOCKED, and the lines and notices are read back from the grants moved now.
    Updated only while still in ``from_states`` (the lock and the condition each guard
    on their own), so two runs at once share the work and each grant moves exactly once.
    Each chunk queues one notice per customer (a customer's second chunk adds to the same
    notice: same event, same ``now``); the run hands them to the outbox at its end, so
    each e-mail lists all of its lines.
    """
    moved: dict[int, int] = {}
    while True:  # passes over the grants, until one moves nothing
        moved_in_pass = 0
        for blanket_id in list(blankets.values_list("pk", flat=True)):
            after = 0
            while True:  # chunks: each starts at the line where the last one ended
                keep_alive()  # a long run keeps its follow-up (support/followups.py)
                with transaction.atomic():
                    if not blankets.filter(pk=blanket_id).exists():
                        break
                    waiting = SpeedGrant.objects.filter(
                        blanket_upgrade_id=blanket_id,
                        state__in=from_states,
                        subscription_id__gt=after,
                    )
                    upper = (
                        waiting.order_by("subscription_id")
                        .values_list("subscription_id", flat=True)[chunk_size - 1 : chunk_size]
                        .first()
                    ) or waiting.aggregate(last=Max("subscription_id"))["last"]
                    if upper is None:
                        break
                    chunk = waiting.filter(subscription_id__lte=upper)
                    # One UPDATE per state it leaves, so the tally knows what moved.
                    moves = {
                        (state, to_state): chunk.filter(
                            # FOR NO KEY UPDATE: a notice being inserted for a grant (a
                            # foreign-key check) does not make the job skip that grant.
                            # The chunk's own range too: the plan reads that range of
                            # the (blanket, line) index, not every grant to meet the ids.
                            pk__in=chunk.filter(state=state)
                            .select_for_update(skip_locked=True, no_key=True)
                            .values("pk"),
                            state=state,
                        ).update(state=to_state, ended_at=now)
                        for state in from_states
                    }
                    count = sum(moves.values())
                    count_grants(blanket_id=blanket_id, moves=moves)
                    # Those this run moved (ended now); noticed, handed over at its end.
                    moved_now = SpeedGrant.objects.filter(
                        blanket_upgrade_id=blanket_id,
                        subscription_id__gt=after,
                        subscription_id__lte=upper,
                        state=to_state,
                        ended_at=now,
                    )
                    first, after = after, upper
                    if not count:
                        continue
                    lines = moved_now.values("subscription_id")
                    if before_lowering is not None:
                        before_lowering(lines)
                    lower_desired_speeds(
                        subscription_ids=lines, cause=cause, line_range=(first, upper)
                    )
                    queue_chunk_notices(kind=notice, grants=moved_now, now=now)
                moved[blanket_id] = moved.get(blanket_id, 0) + count
                moved_in_pass += count
        # A grant another transaction held (skipped) is looked at again in a new pass.
        if not moved_in_pass:
            break
    if moved:
        with transaction.atomic():
            hand_over_run(kind=notice, now=now)
            # Lines another disaster took over are asked to confirm for it.
            hand_over_run(kind=CustomerNotice.Kind.BLANKET_STARTED, now=now)
            enqueue_follow_ups()
    return moved


def revert_expired_grants(*, now: datetime, chunk_size: int | None = None) -> int:
    """Return to normal every blanket grant still unconfirmed at its deadline.

    Each run that reverts something leaves one REVERTED event per blanket upgrade it
    touched, with the number of grants: the operator's history shows every run.
    """
    reverted = _finish_grants_in_chunks(
        with_grants_in(
            BlanketUpgrade.objects.filter(deadline__lte=now), [SpeedGrant.State.PENDING]
        ),
        from_states=[SpeedGrant.State.PENDING],
        to_state=SpeedGrant.State.REVERTED,
        notice=CustomerNotice.Kind.REVERTED,
        cause="not confirmed before the deadline",
        now=now,
        chunk_size=chunk_size or settings.REVERT_CHUNK_SIZE,
    )
    BlanketUpgradeEvent.objects.bulk_create(
        BlanketUpgradeEvent(
            blanket_upgrade_id=blanket_id,
            kind=BlanketUpgradeEvent.Kind.REVERTED,
            at=now,
            detail={"grants": grants},
        )
        for blanket_id, grants in reverted.items()
        if grants
    )
    return sum(reverted.values())


def _move_to_other_disasters(*, blanket_id: int, subscription_ids: QuerySet, now: datetime):
    """Lines of an ending disaster that another active disaster covers are granted by that
    one (waiting for the customer's answer before its deadline), so ending the main shock
    does not slow down lines in the aftershock's area: a line is held by one disaster at a
    time (``_not_held_elsewhere``), and this hands it over. Statements: a constant few per
    other active disaster, for the chunk (one more, the lock, while it is still granting)."""
    for other in other_active_blankets(blanket_id=blanket_id, now=now):
        if other.status == BlanketUpgrade.Status.APPLYING and not _wait_for_granting_chunk(
            other, now=now
        ):
            continue
        lines = (
            Subscription.objects.in_service(timezone.localdate(now))
            .filter(pk__in=subscription_ids)
            .filter(other.disaster.covers())
        )
        granted = _grant_pending(blanket_id=other.pk, lines=lines, now=now)
        count_grants(blanket_id=other.pk, moves={(None, SpeedGrant.State.PENDING): granted})
        queue_chunk_notices(
            kind=CustomerNotice.Kind.BLANKET_STARTED,
            grants=SpeedGrant.objects.filter(
                blanket_upgrade_id=other.pk, subscription_id__in=subscription_ids, starts_at=now
            ),
            now=now,
        )


def _wait_for_granting_chunk(blanket: BlanketUpgrade, *, now: datetime) -> bool:
    """Wait for the chunk ``blanket``'s declaration is granting, if any (a chunk holds
    its blanket's row FOR UPDATE): that chunk looked for grants of its blanket among its
    lines before inserting its own without a conflict check (apply_blanket_upgrade), so
    lines must not be handed over to it meanwhile. FOR NO KEY UPDATE: the foreign-key
    checks of other transactions' notices and events (FOR KEY SHARE) do not wait for it.
    False when the blanket stopped taking lines while this waited."""
    return (
        BlanketUpgrade.objects.select_for_update(no_key=True)
        .filter(
            pk=blanket.pk,
            status__in=[BlanketUpgrade.Status.APPLYING, BlanketUpgrade.Status.ACTIVE],
            deadline__gt=now,
        )
        .exists()
    )


def end_blanket_grants(*, blanket_id: int, now: datetime, chunk_size: int | None = None) -> int:
    """End every grant of an ended disaster's blanket upgrade, confirmed ones included.

    A line another active disaster covers stays upgraded, granted by that disaster.
    """
    ended = _finish_grants_in_chunks(
        BlanketUpgrade.objects.filter(pk=blanket_id, status=BlanketUpgrade.Status.ENDED),
        from_states=SpeedGrant.BOOSTING,
        to_state=SpeedGrant.State.ENDED,
        notice=CustomerNotice.Kind.DISASTER_ENDED,
        cause=f"blanket upgrade {blanket_id} ended (disaster ended by an operator)",
        now=now,
        chunk_size=chunk_size or settings.REVERT_CHUNK_SIZE,
        before_lowering=lambda subscription_ids: _move_to_other_disasters(
            blanket_id=blanket_id, subscription_ids=subscription_ids, now=now
        ),
    )
    return sum(ended.values())


def respond_to_grants(
    *, grants, keep: bool, by, channel: Channel | str, now: datetime
) -> list[SpeedGrant]:
    """A customer confirms (``keep``) or declines blanket grants, one or all of theirs.

    Only grants still pending before their deadline can be answered. The update is
    conditional on the pending state alone, so it and the revert job cannot both win.
    Raises ValidationError when none could be answered.
    """
    candidates = list(
        grants.filter(
            state=SpeedGrant.State.PENDING, blanket_upgrade__deadline__gt=now
        ).values_list("pk", "subscription_id")
    )
    if not candidates:
        raise ValidationError(
            _(
                "There is no upgrade waiting for your answer: it was already answered, "
                "or its deadline has passed. Please call customer support."
            )
        )
    ids = [pk for pk, _ in candidates]
    response = {
        "responded_at": now,
        "responded_by": by,
        "response_channel": channel,
        "response_after_hours": is_after_hours(now),
    }
    to_state = SpeedGrant.State.ACTIVE if keep else SpeedGrant.State.DECLINED
    with transaction.atomic():
        if keep:
            SpeedGrant.objects.filter(pk__in=ids, state=SpeedGrant.State.PENDING).update(
                state=SpeedGrant.State.ACTIVE, **response
            )
        else:
            SpeedGrant.objects.filter(pk__in=ids, state=SpeedGrant.State.PENDING).update(
                state=SpeedGrant.State.DECLINED, ended_at=now, **response
            )
        # Exactly those this call moved: answered now, by this caller.
        answered = list(
            SpeedGrant.objects.filter(pk__in=ids, responded_at=now, responded_by=by)
            .select_related("subscription__site", "blanket_upgrade__disaster")
            .order_by("pk")
        )
        # Grants, then their tallies, then the lines' speeds: the order every transition
        # takes them in (the revert job's chunks too), so two never wait on each other.
        for blanket_id, count in Counter(grant.blanket_upgrade_id for grant in answered).items():
            count_grants(blanket_id=blanket_id, moves={(SpeedGrant.State.PENDING, to_state): count})
        if not keep:
            lower_desired_speeds(
                subscription_ids=[sub for _, sub in candidates],
                cause=f"declined via {channel}" + (f" by {by.email}" if by else ""),
            )
            enqueue_follow_ups()
    if not answered:
        raise ValidationError(_("This upgrade was answered or returned to normal meanwhile."))
    return answered


def unfinished_blanket_upgrades(*, now: datetime, grace: timedelta = timedelta(minutes=5)):
    """Blanket upgrades still granting lines some minutes after they were declared."""
    return list(
        BlanketUpgrade.objects.filter(
            status=BlanketUpgrade.Status.APPLYING, created_at__lt=now - grace
        ).values_list("pk", flat=True)
    )


def ended_blankets_with_boosting_grants():
    """Ended blanket upgrades whose grants did not all end (a lost or failed task)."""
    return list(
        with_grants_in(
            BlanketUpgrade.objects.filter(status=BlanketUpgrade.Status.ENDED), SpeedGrant.BOOSTING
        ).values_list("pk", flat=True)
    )
