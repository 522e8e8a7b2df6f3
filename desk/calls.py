"""Phone calls from the phone system (CTI): caller identification, the call's life from
its events, the after-hours alert that says who is calling, and the callback.

The phone system (PBX) posts three events per call — newCall, answer, hangup — named by
its call id (desk/cti_api.py). Each event is recorded once (CallEvent's unique call and
event): a replay changes nothing. Events may come out of order (a hangup before its
newCall, an answer after the hangup): whichever comes first creates the call, and each
only moves the call forward.
"""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from desk.models import Call, CallEvent, Inquiry
from desk.services import open_inquiry
from incidents.contacts import arrival
from incidents.models import DamageReport
from incidents.services import report_damage
from subscriptions.models import Customer, Site, Subscription, UserPhone
from subscriptions.phones import to_e164
from support.channels import Channel
from support.services import alert_on_call
from upgrades.models import SpeedGrant, UpgradeRequest
from upgrades.services.blanket import respond_to_grants
from upgrades.services.requests import request_upgrade

Status = Call.Status
Event = CallEvent.Event


def customers_with_number(e164: str | None) -> list[Customer]:
    """Every customer the number is known for: a site's contact phone, the customer's
    phone or one of its users' phones (one query over the indexed E.164 columns)."""
    if not e164:
        return []
    return list(
        Customer.objects.filter(
            Q(phone_e164=e164)
            | Q(pk__in=Site.objects.filter(contact_phone_e164=e164).values("customer_id"))
            | Q(pk__in=UserPhone.objects.filter(number_e164=e164).values("user__customer_id"))
        ).order_by("name", "pk")
    )


def record_call_event(
    *,
    event: str,
    call_id: str,
    from_number: str = "",
    to_number: str = "",
    direction: str = Call.Direction.IN,
    users: Iterable[str] = (),
    cause: str = "",
    answering_number: str = "",
    payload: dict,
    now: datetime,
) -> tuple[Call, bool]:
    """Record one event of a call; returns the call and whether this event was new.

    The same event of the same call again (the phone system retrying) changes nothing.
    All of it in one transaction: the event row, the call and the alert are saved
    together or not at all.
    """
    with transaction.atomic():
        call, created = _call_for_event(
            call_id=call_id,
            from_number=from_number,
            to_number=to_number,
            direction=direction,
            now=now,
        )
        try:
            with transaction.atomic():
                CallEvent.objects.create(call=call, event=event, payload=payload, received_at=now)
        except IntegrityError:
            return call, False  # a replay
        call = Call.objects.select_for_update().get(pk=call.pk)
        _fill_numbers(call, from_number=from_number, to_number=to_number, direction=direction)
        if event == Event.ANSWER:
            _answered(call, users=users, answering_number=answering_number, now=now)
        elif event == Event.HANGUP:
            _hung_up(call, cause=cause, now=now)
        call.save()
        if created and call.after_hours and call.direction == Call.Direction.IN:
            alert_on_call(
                contact_kind="call",
                contact_id=call.pk,
                summary=call_summary(call),
                details=caller_details(call),
                url=reverse("desk:call", args=[call.pk]),
                received_at=call.received_at,
            )
    return call, True


def _call_for_event(
    *, call_id: str, from_number: str, to_number: str, direction: str, now: datetime
) -> tuple[Call, bool]:
    """The call of this id, created (with its customer, when the number tells) by
    whichever of its events comes first."""
    call = Call.objects.filter(call_id=call_id).first()
    if call is not None:
        return call, False
    # The customer's number is the caller's on an incoming call, the called one on ours.
    customer_number = to_number if direction == Call.Direction.OUT else from_number
    candidates = customers_with_number(to_e164(customer_number))
    customer = candidates[0] if len(candidates) == 1 else None
    prefectures = (
        Site.objects.filter(customer=customer).values_list("prefecture", flat=True).distinct()
        if customer is not None
        else []
    )
    try:
        with transaction.atomic():
            call = Call.objects.create(
                call_id=call_id,
                direction=direction,
                from_number=from_number,
                from_e164=to_e164(from_number) or "",
                to_number=to_number,
                customer=customer,
                channel=Channel.PHONE,
                status=Status.RINGING,
                **arrival(prefectures=prefectures, now=now),
            )
    except IntegrityError:
        # The same call's other event created it at the same moment.
        return Call.objects.get(call_id=call_id), False
    if len(candidates) > 1:
        call.candidates.set(candidates)
    return call, True


def _fill_numbers(call: Call, *, from_number: str, to_number: str, direction: str) -> None:
    # A call created by a hangup that carried no numbers learns them from later events.
    if from_number and not call.from_number:
        call.from_number = from_number
        call.from_e164 = to_e164(from_number) or ""
    if to_number and not call.to_number:
        call.to_number = to_number


def _answered(call: Call, *, users: Iterable[str], answering_number: str, now: datetime) -> None:
    names = [name.strip() for name in users if name and name.strip()]
    call.answered_by_names = names
    call.answering_number = answering_number[:100]
    staff = get_user_model().objects.filter(
        is_staff=True, email__in=[name for name in names if "@" in name]
    )
    call.answered_by.set(staff)
    if call.answered_at is None:
        # An answer that comes after the hang-up: answered, but we cannot tell when, so
        # no talk time is made up.
        call.answered_at = min(now, call.ended_at) if call.ended_at else now
    if call.status == Status.RINGING:
        call.status = Status.ANSWERED
    elif call.status == Status.MISSED:
        call.status = Status.ENDED
    if call.ended_at is not None:
        call.duration = 0 if call.duration is None else call.duration


def _hung_up(call: Call, *, cause: str, now: datetime) -> None:
    call.end_cause = cause[:50]
    call.ended_at = now
    if call.answered_at is not None:
        call.duration = int((now - call.answered_at).total_seconds())
        call.status = Status.ENDED if call.status != Status.CALLED_BACK else call.status
        return
    # Nobody answered: an incoming call is missed (the callback list); one of ours the
    # customer did not pick up is simply over.
    if call.direction == Call.Direction.IN:
        if call.status != Status.CALLED_BACK:
            call.status = Status.MISSED
    else:
        call.status = Status.ENDED


def record_callback(*, call: Call, by, note: str, now: datetime) -> Call:
    """Staff called a missed caller back: the call leaves the callback list, with who did
    it, when and what came of it. Only a missed call is called back."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Write what came of the callback.")})
    moved = Call.objects.filter(pk=call.pk, status=Status.MISSED).update(
        status=Status.CALLED_BACK, callback_at=now, callback_by=by, callback_note=note
    )
    if not moved:
        call.refresh_from_db()
        raise ValidationError(
            _("This call is %(status)s: only a missed call is called back.")
            % {"status": call.get_status_display()}
        )
    if call.first_response_at is None:
        Call.objects.filter(pk=call.pk, first_response_at__isnull=True).update(
            first_response_at=now
        )
    call.refresh_from_db()
    return call


def choose_call_customer(*, call: Call, customer_id: int) -> Call:
    """When several customers have the caller's number, staff say whose call it was:
    one of them."""
    if not call.candidates.filter(pk=customer_id).exists():
        raise ValidationError({"customer": _("Choose one of the customers with this number.")})
    Call.objects.filter(pk=call.pk).update(customer_id=customer_id)
    call.refresh_from_db()
    return call


def record_inquiry_from_call(*, call: Call, by, subject: str, body: str, now: datetime) -> Inquiry:
    """What the customer asked on the call, as an inquiry taken by phone, linked to it."""
    _check_can_record(call, "inquiry")
    with transaction.atomic():
        inquiry = open_inquiry(
            customer=call.customer,
            subject=subject,
            body=body,
            channel=Channel.PHONE,
            recorded_by=by,
            contact_phone=call.from_number[:20],
            now=now,
        )
        _link(call, inquiry=inquiry)
    return inquiry


def record_upgrade_request_from_call(
    *, call: Call, by, sites: list[Site], reason: str, note: str, now: datetime
) -> UpgradeRequest:
    """The customer asked for speed on the call: an upgrade request taken by phone,
    linked to it (the upgrade services' rules: their own sites, lines in service)."""
    _check_can_record(call, "upgrade_request")
    with transaction.atomic():
        upgrade_request = request_upgrade(
            customer=call.customer,
            sites=sites,
            reason=reason,
            note=note,
            channel=Channel.PHONE,
            recorded_by=by,
            contact_phone=call.from_number[:20],
            now=now,
        )
        _link(call, upgrade_request=upgrade_request)
    return upgrade_request


def record_damage_report_from_call(
    *, call: Call, by, site: Site, description: str, now: datetime
) -> DamageReport:
    """The customer reported damaged equipment on the call: a damage report taken by
    phone (photos follow by the portal or e-mail), linked to it."""
    _check_can_record(call, "damage_report")
    if site.customer_id != call.customer_id:
        raise ValidationError({"site": _("Choose one of the caller's sites.")})
    with transaction.atomic():
        report = report_damage(
            site=site, description=description, photos=[], channel=Channel.PHONE, now=now
        )
        _link(call, damage_report=report)
    return report


def pending_blanket_lines(call: Call, *, now: datetime) -> int:
    """How many of the caller's lines wait for an answer to a blanket upgrade."""
    if call.customer_id is None or call.blanket_answer:
        return 0
    return _pending_grants(call, now=now).count()


def _pending_grants(call: Call, *, now: datetime):
    return SpeedGrant.objects.filter(
        subscription__site__customer_id=call.customer_id,
        state=SpeedGrant.State.PENDING,
        blanket_upgrade__deadline__gt=now,
    )


def record_blanket_answer_from_call(*, call: Call, by, keep: bool, now: datetime) -> int:
    """The customer answered the blanket upgrade on the phone: every line of theirs
    still waiting is kept fast or returned to normal (channel: phone, recorded by the
    staff member), once per call. Returns how many lines were answered."""
    if call.customer_id is None:
        raise ValidationError(_("Say whose call this was first."))
    with transaction.atomic():
        if not Call.objects.filter(pk=call.pk, blanket_answer="").update(
            blanket_answer="kept" if keep else "declined"
        ):
            raise ValidationError(_("This is already recorded from this call."))
        answered = respond_to_grants(
            grants=_pending_grants(call, now=now),
            keep=keep,
            by=by,
            channel=Channel.PHONE,
            now=now,
        )
        Call.objects.filter(pk=call.pk).update(blanket_answer_lines=len(answered))
    call.refresh_from_db()
    return len(answered)


def _already_recorded(field: str) -> ValidationError:
    if field == "inquiry":
        return ValidationError(_("An inquiry is already recorded from this call."))
    return ValidationError(_("This is already recorded from this call."))


def _check_can_record(call: Call, field: str) -> None:
    if call.customer is None:
        raise ValidationError(_("Say whose call this was first."))
    if getattr(call, f"{field}_id") is not None:
        raise _already_recorded(field)


def _link(call: Call, **contact) -> None:
    """Link the contact recorded from the call, once: a second one in a race is refused
    (the caller's transaction rolls it back)."""
    ((field, value),) = contact.items()
    if not Call.objects.filter(pk=call.pk, **{f"{field}__isnull": True}).update(**contact):
        raise _already_recorded(field)
    setattr(call, field, value)


def call_summary(call: Call) -> str:
    number = call.from_number or _("no number")
    if call.customer is not None:
        return _("Call from %(customer)s (%(number)s)") % {
            "customer": call.customer.name,
            "number": number,
        }
    if call.from_e164 and call.candidates.exists():
        return _("Call from %(number)s: several customers have this number") % {"number": number}
    return _("Call from an unknown caller (%(number)s)") % {"number": number}


def caller_details(call: Call) -> str:
    """Who is calling, as the on-call person reads it before calling back: the
    organisation, its sites, their lines' speed now (wanted and on the network), the
    blanket upgrades waiting for its answer and the disaster covering it."""
    customers = [call.customer] if call.customer else list(call.candidates.all())
    if not customers:
        return _("Unknown caller: no customer has the number %(number)s.") % {
            "number": call.from_number or _("no number")
        }
    today = timezone.localdate(call.received_at)
    lines = []
    for customer in customers:
        lines.append(
            _("Organisation: %(name)s (%(code)s)") % {"name": customer.name, "code": customer.code}
        )
        subscriptions = (
            Subscription.objects.filter(site__customer=customer)
            .in_service(today)
            .select_related("site", "plan", "speed")
            .order_by("site__name", "pk")
        )
        by_site: dict[int, list[Subscription]] = {}
        for line in subscriptions:
            by_site.setdefault(line.site_id, []).append(line)
        for site in customer.sites.order_by("name", "pk"):
            lines.append(
                _("Site: %(site)s, %(prefecture)s, %(phone)s")
                % {
                    "site": site.name,
                    "prefecture": site.get_prefecture_display(),
                    "phone": site.contact_phone,
                }
            )
            for line in by_site.get(site.pk, []):
                lines.append(
                    "  "
                    + _(
                        "Line %(contract)s: %(wanted)s kbit/s wanted, %(applied)s kbit/s on the"
                        " network"
                    )
                    % {
                        "contract": line.contract_number,
                        "wanted": line.desired_kbps,
                        "applied": line.applied_kbps,
                    }
                )
        pending = (
            SpeedGrant.objects.filter(
                subscription__site__customer=customer, state=SpeedGrant.State.PENDING
            )
            .select_related("subscription", "blanket_upgrade")
            .order_by("blanket_upgrade__deadline", "pk")
        )
        for grant in pending:
            lines.append(
                _("Pending blanket upgrade on %(contract)s: answer by %(deadline)s")
                % {
                    "contract": grant.subscription.contract_number,
                    "deadline": timezone.localtime(grant.blanket_upgrade.deadline).strftime(
                        "%Y-%m-%d %H:%M"
                    ),
                }
            )
        if not pending:
            lines.append(_("No blanket upgrade waits for their answer."))
    if call.disaster is not None:
        lines.append(_("Disaster: %(disaster)s") % {"disaster": call.disaster})
    else:
        lines.append(_("No declared disaster covers their sites."))
    return "\n".join(lines)
