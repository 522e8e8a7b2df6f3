"""What customers are told about their upgrades: one e-mail per organisation per event.

Transitions queue a ``CustomerNotice`` per customer organisation (set-based, from the
grants they moved) and hand it to the outbox, which asks ``compose_notices`` for its
text just before sending. The text of every line is decided then, from the line's state
at that moment: a line another grant keeps fast reads "remains upgraded (request #N /
disaster X)", never "returned to normal"; a notice none of whose lines still needs it
(a reminder to a customer who answered meanwhile) is not sent.

Paths that move lines in chunks (the revert job, ending a disaster) queue notices per
chunk but hand them to the outbox at the end of the run, so a customer whose lines fall
in several chunks gets one e-mail listing them all. A run that died before its end
leaves notices the beat sweeper hands over later (``queue_stranded_notices``).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from subscriptions.models import Subscription
from support.mail import bilingual_from_templates, recipients_by_customer
from support.models import OutboundEmail
from support.outbox import Composed, request_sending
from upgrades.bulk import insert_from_select, int_array
from upgrades.models import CustomerNotice, SpeedGrant, UpgradeRequest

COMPOSER = "upgrades.notice"
RESPONSE_SALT = "upgrades.grant-response"
# Notices a run has not handed over after this long belong to a run that died.
STRANDED_AFTER = timedelta(minutes=10)

Kind = CustomerNotice.Kind


# --- Links: answer one line, or all of a customer's lines in a blanket upgrade --------


def grant_response_token(grant_id: int, keep: bool | None) -> str:
    """A link for one line: to keep, to decline, or (None) to choose on the page."""
    return signing.dumps({"g": grant_id, "keep": keep}, salt=RESPONSE_SALT, compress=True)


def blanket_response_token(blanket_id: int, customer_id: int, keep: bool) -> str:
    return signing.dumps(
        {"b": blanket_id, "c": customer_id, "keep": keep}, salt=RESPONSE_SALT, compress=True
    )


def read_response_token(token: str, *, max_age: timedelta) -> tuple[QuerySet, bool | None]:
    """The grants a link answers, and whether it keeps them (None: the page asks).
    Raises signing.BadSignature (or SignatureExpired) for a forged or old link."""
    data = signing.loads(token, salt=RESPONSE_SALT, max_age=max_age)
    keep = None if data.get("keep") is None else bool(data["keep"])
    if "g" in data:
        return SpeedGrant.objects.filter(pk=int(data["g"])), keep
    return (
        SpeedGrant.objects.filter(
            blanket_upgrade_id=int(data["b"]), subscription__site__customer_id=int(data["c"])
        ),
        keep,
    )


def _url(token: str) -> str:
    # Resolved once: a notice of 2,000 lines has 2,000 links, a batch many more.
    return settings.PORTAL_BASE_URL + _answer_path_prefix() + token + "/"


@lru_cache(maxsize=1)
def _answer_path_prefix() -> str:
    path = reverse("upgrades:respond-by-link", args=["TOKEN"])
    return path.removesuffix("TOKEN/")


# --- Queueing ---------------------------------------------------------------------------


def queue_chunk_notices(*, kind: str, grants: QuerySet, now: datetime) -> int:
    """One notice per (blanket upgrade, customer) of ``grants``, at ``now``; not handed
    to the outbox yet (``hand_to_outbox`` / ``hand_over_run`` do, once the event is whole)."""
    return insert_from_select(
        CustomerNotice,
        ["kind", "customer", "blanket_upgrade", "created_at"],
        grants.order_by()
        .values_list(
            Value(kind),
            "subscription__site__customer_id",
            "blanket_upgrade_id",
            Value(now, output_field=DateTimeField()),
        )
        .distinct(),
    )


def hand_to_outbox(notices: QuerySet, *, now: datetime) -> int:
    """Queue the e-mails of ``notices`` not handed over yet: two statements in all.

    ``now`` is the event's time; the e-mails are due from the clock's now (the same in
    production; a test that replays an event at another time still sends them).
    """
    notices = notices.filter(queued_at__isnull=True)
    queued = Value(timezone.now(), output_field=DateTimeField())
    insert_from_select(
        OutboundEmail,
        ["key", "composer", "composer_ref", "created_at", "send_after"],
        notices.order_by().values_list(
            Concat(Value(f"{COMPOSER}:"), Cast("pk", CharField())),
            Value(COMPOSER),
            "pk",
            queued,
            queued,
        ),
    )
    handed = notices.update(queued_at=now)
    if handed:
        many = handed > settings.OUTBOX_BATCH_SIZE
        request_sending(senders=settings.OUTBOX_PARALLEL_SENDERS if many else 1)
    return handed


def queue_blanket_notices(*, kind: str, grants: QuerySet, now: datetime) -> int:
    """Queue and hand over at once: the event is complete (a declaration's last step)."""
    created = queue_chunk_notices(kind=kind, grants=grants, now=now)
    hand_to_outbox(CustomerNotice.objects.filter(kind=kind, created_at=now), now=now)
    return created


def hand_over_run(*, kind: str, now: datetime) -> int:
    with transaction.atomic():
        return hand_to_outbox(CustomerNotice.objects.filter(kind=kind, created_at=now), now=now)


def queue_request_notice(*, kind: str, upgrade_request: UpgradeRequest, now: datetime) -> None:
    notice, created = CustomerNotice.objects.get_or_create(
        kind=kind,
        upgrade_request=upgrade_request,
        defaults={"customer_id": upgrade_request.customer_id, "created_at": now},
    )
    if created:
        hand_to_outbox(CustomerNotice.objects.filter(pk=notice.pk), now=now)


def queue_deadline_reminders(*, now: datetime) -> int:
    """One reminder per customer per blanket upgrade whose deadline is near, while some
    of its lines wait for an answer. Set-based, idempotent."""
    soon = now + timedelta(hours=settings.BLANKET_REMINDER_HOURS)
    reminded = CustomerNotice.objects.filter(
        kind=Kind.DEADLINE_REMINDER,
        blanket_upgrade_id=OuterRef("blanket_upgrade_id"),
        customer_id=OuterRef("subscription__site__customer_id"),
    )
    with transaction.atomic():
        return queue_blanket_notices(
            kind=Kind.DEADLINE_REMINDER,
            grants=SpeedGrant.objects.filter(
                state=SpeedGrant.State.PENDING,
                blanket_upgrade__deadline__gt=now,
                blanket_upgrade__deadline__lte=soon,
            ).exclude(Exists(reminded)),
            now=now,
        )


def queue_stranded_notices(*, now: datetime) -> int:
    """Hand over the notices of a run that died before its end (beat)."""
    with transaction.atomic():
        return hand_to_outbox(
            CustomerNotice.objects.filter(created_at__lt=now - STRANDED_AFTER), now=now
        )


# --- Composing, at send time ------------------------------------------------------------


@dataclass(slots=True)
class GrantRow:
    """What composing reads of a grant told about and of its line: a tuple's worth, not
    three model objects (a batch of customers with thousands of lines each is a hundred
    thousand grants; their model objects were most of the time spent composing)."""

    pk: int
    subscription_id: int
    state: str
    ended_at: datetime | None
    upgrade_request_id: int | None
    blanket_upgrade_id: int | None
    contract_number: str
    site_name: str
    customer_id: int


@dataclass(frozen=True, slots=True)
class KeptBy:
    """Another grant that keeps a line upgraded: a request, or another disaster."""

    pk: int
    upgrade_request_id: int | None
    disaster_title: str | None


@dataclass
class Line:
    """One line of a notice, as it stands when the notice is sent."""

    grant: GrantRow
    other: KeptBy | None  # another grant that keeps the line upgraded
    answer_url: str = ""  # a page with both answers, for a line still waiting

    @property
    def contract_number(self) -> str:
        return self.grant.contract_number

    @property
    def site(self) -> str:
        return self.grant.site_name

    @property
    def status(self) -> str:
        # Read while the template renders: in Japanese, then again in English.
        return _line_status(self.grant, self.other)


class LinesText:
    """A notice's lines as its e-mail lists them (``upgrades/email/_lines.txt``), written
    when the template prints them, in the language active then: the e-mail is rendered
    in Japanese, then in English. Plain string building: a template loop over the lines
    was most of the time spent rendering a notice that lists thousands of them."""

    def __init__(self, lines: list[Line]):
        self.lines = lines

    def __str__(self) -> str:
        answer = _("Answer for this line")
        # A line's sentence depends on its grant's state and source and on what keeps
        # it fast, if anything (_line_status): written once for each in this language.
        statuses: dict[tuple, str] = {}
        parts = []
        for line in self.lines:
            grant, other = line.grant, line.other
            sentence_key = (
                grant.state,
                bool(grant.blanket_upgrade_id),
                other and (other.upgrade_request_id, other.disaster_title),
            )
            if (status := statuses.get(sentence_key)) is None:
                status = statuses[sentence_key] = line.status
            parts.append(f"\n- {line.contract_number}  {line.site}\n  {status}")
            if line.answer_url:
                parts.append(f"\n  {answer}: {line.answer_url}")
        return "".join(parts)


def _kept_by(other: KeptBy) -> str:
    if other.upgrade_request_id:
        return _("upgrade request #%(number)s") % {"number": other.upgrade_request_id}
    return _("disaster “%(title)s”") % {"title": other.disaster_title}


def _line_status(grant: GrantRow, other: KeptBy | None) -> str:
    """One sentence of truth about a line, from its grant and any other grant boosting it."""
    State = SpeedGrant.State
    if grant.state == State.PENDING:
        if other is not None:
            return _(
                "Upgraded: waiting for your answer; it stays upgraded whatever you answer (%(by)s)"
            ) % {"by": _kept_by(other)}
        return _("Upgraded: waiting for your answer")
    if grant.state == State.ACTIVE:
        return _("Upgraded (you confirmed)") if grant.blanket_upgrade_id else _("Upgraded")
    if other is not None:
        return _("Remains upgraded (%(by)s)") % {"by": _kept_by(other)}
    if grant.state == State.DECLINED:
        return _("You declined: back to normal speed")
    return pgettext("line status", "Returned to normal speed")


def _told_about(grants: QuerySet) -> list[GrantRow]:
    """The grants a batch tells about, with their lines' numbers and sites."""
    rows = grants.order_by().values(
        "pk",
        "subscription_id",
        "state",
        "ended_at",
        "upgrade_request_id",
        "blanket_upgrade_id",
        contract_number=F("subscription__contract_number"),
        site_name=F("subscription__site__name"),
        customer_id=F("subscription__site__customer_id"),
    )
    return [GrantRow(**row) for row in rows]


def _with_line_in(grants: QuerySet, line_ids: Iterable[int]) -> QuerySet:
    """``grants`` of these lines. On PostgreSQL the ids go as one array parameter in its
    text form (``int_array``): a batch of big customers names a hundred thousand lines,
    and Django's ``IN`` list compiles a placeholder for each. The condition names the
    grants' table: for a top-level query, not a subquery (whose table Django aliases)."""
    if connection.vendor == "postgresql":
        return grants.filter(
            RawSQL(  # noqa: S611 (the grants' own table name; the ids are a parameter)
                f'"{SpeedGrant._meta.db_table}"."subscription_id" = ANY(%s::bigint[])',
                (int_array(line_ids),),
                output_field=BooleanField(),
            )
        )
    return grants.filter(subscription_id__in=line_ids)


def _lines_by_notice(notices: list[CustomerNotice]) -> dict[int, list[GrantRow]]:
    """Each notice's grants: at most three queries for the batch, each driven by an index
    from the batch's own customers and requests.

    Not "the blanket upgrade's grants of these customers" in one join: for a nationwide
    blanket the planner would walk every grant of the blanket (1,000,000) for each batch
    of 200 customers. Their lines first (site.customer, then subscription.site), then the
    grants of those lines (the grants' line index).
    """
    blanket_ids = {n.blanket_upgrade_id for n in notices if n.blanket_upgrade_id}
    request_ids = {n.upgrade_request_id for n in notices if n.upgrade_request_id}
    customer_ids = {n.customer_id for n in notices if n.blanket_upgrade_id}
    grants: list[GrantRow] = []
    if blanket_ids:
        line_ids = list(
            Subscription.objects.filter(site__customer_id__in=customer_ids).values_list(
                "pk", flat=True
            )
        )
        grants += _told_about(
            _with_line_in(SpeedGrant.objects.filter(blanket_upgrade_id__in=blanket_ids), line_ids)
        )
    if request_ids:
        grants += _told_about(SpeedGrant.objects.filter(upgrade_request_id__in=request_ids))
    grants.sort(key=lambda g: (g.site_name, g.contract_number))
    by_subject = defaultdict(list)
    for grant in grants:
        customer_id = grant.customer_id
        if grant.blanket_upgrade_id:
            by_subject[("b", grant.blanket_upgrade_id, customer_id)].append(grant)
        else:
            by_subject[("r", grant.upgrade_request_id)].append(grant)
    lines = {}
    for notice in notices:
        if notice.blanket_upgrade_id:
            lines[notice.pk] = by_subject[("b", notice.blanket_upgrade_id, notice.customer_id)]
        else:
            lines[notice.pk] = by_subject[("r", notice.upgrade_request_id)]
    return lines


def _concerns(notice: CustomerNotice, grant: GrantRow) -> bool:
    """Whether a grant is one this notice tells about, given what has happened since."""
    State = SpeedGrant.State
    if notice.kind == Kind.BLANKET_STARTED:
        return True
    if notice.kind == Kind.DEADLINE_REMINDER:
        return grant.state == State.PENDING
    if notice.kind == Kind.REVERTED:
        return grant.state == State.REVERTED and grant.ended_at == notice.created_at
    if notice.kind == Kind.DISASTER_ENDED:
        return grant.state == State.ENDED and grant.ended_at == notice.created_at
    return True  # a request's decision: all its lines


def _needed(notice: CustomerNotice, grants: list[GrantRow]) -> bool:
    if notice.kind == Kind.BLANKET_STARTED:
        # Nobody needs "please confirm" about lines all answered before it went out.
        return any(g.state in SpeedGrant.BOOSTING for g in grants)
    if notice.kind == Kind.REQUEST_REJECTED:
        return True
    return bool(grants)


def compose_notices(notice_ids: list[int]) -> dict[int, Composed | None]:
    """The outbox's composer: each notice's e-mail from the state of its lines now.

    A constant number of queries for the batch, whatever its size or its lines'.
    """
    notices = list(
        CustomerNotice.objects.filter(pk__in=notice_ids).select_related(
            "customer", "blanket_upgrade__disaster", "upgrade_request"
        )
    )
    grants_of = _lines_by_notice(notices)
    all_grants = [g for grants in grants_of.values() for g in grants]
    # The grants boosting these lines now (each line's own grant among them, if it
    # still boosts): another one is what keeps a line fast. One read, as rows.
    boosting: dict[int, list[KeptBy]] = defaultdict(list)
    for line_id, grant_id, request_id, title in (
        _with_line_in(SpeedGrant.objects.boosting(), {g.subscription_id for g in all_grants})
        .order_by("pk")
        .values_list(
            "subscription_id", "pk", "upgrade_request_id", "blanket_upgrade__disaster__title"
        )
    ):
        boosting[line_id].append(KeptBy(grant_id, request_id, title))
    addresses = recipients_by_customer({(n.customer_id, n.customer.email) for n in notices})

    composed: dict[int, Composed | None] = {}
    for notice in notices:
        grants = [g for g in grants_of[notice.pk] if _concerns(notice, g)]
        if not _needed(notice, grants):
            composed[notice.pk] = None
            continue
        lines = []
        for grant in grants:
            other = next((o for o in boosting[grant.subscription_id] if o.pk != grant.pk), None)
            line = Line(grant=grant, other=other)
            if grant.state == SpeedGrant.State.PENDING:
                line.answer_url = _url(grant_response_token(grant.pk, None))
            lines.append(line)
        composed[notice.pk] = _render(notice, lines, addresses[notice.customer_id])
    return composed


def _render(notice: CustomerNotice, lines: list[Line], recipients: list[str]) -> Composed:
    blanket = notice.blanket_upgrade
    customer = notice.customer
    pending = [line for line in lines if line.answer_url]
    context = {
        "notice": notice,
        "customer": customer,
        "lines_text": LinesText(lines),
        "pending_count": len(pending),
        "upgrade_request": notice.upgrade_request,
        "portal_url": settings.PORTAL_BASE_URL + "/",
        "upgrades_url": settings.PORTAL_BASE_URL + reverse("upgrades:index"),
        "support_phone": settings.SUPPORT_PHONE,
        "support_email": settings.SUPPORT_EMAIL,
    }
    if blanket is not None:
        context["disaster"] = blanket.disaster
        context["deadline"] = blanket.deadline
        if pending:
            context["keep_all_url"] = _url(blanket_response_token(blanket.pk, customer.pk, True))
            context["decline_all_url"] = _url(
                blanket_response_token(blanket.pk, customer.pk, False)
            )
    subject, body = bilingual_from_templates(f"upgrades/email/{notice.kind}", context)
    return Composed(to=recipients, subject=subject, body=body)
