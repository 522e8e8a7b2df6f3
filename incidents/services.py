"""Disasters: opening and closing them. The blanket upgrade that a declaration starts is
the upgrades app's business (it calls these)."""

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from incidents.models import CheckIn, Disaster, Outage, SiteCheckInToken
from subscriptions.prefectures import Prefecture


def open_disaster(
    *,
    declared_by,
    title: str,
    nationwide: bool,
    prefectures: Iterable[str],
    message: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[Disaster, bool]:
    """Record a declaration; the same key returns the disaster already declared."""
    codes = sorted(set(prefectures))
    unknown = [code for code in codes if code not in Prefecture.values]
    if unknown:
        raise ValidationError(
            {"prefectures": _("Unknown prefecture codes: %s") % ", ".join(unknown)}
        )
    if nationwide == bool(codes):
        raise ValidationError(
            {"prefectures": _("Choose either nationwide or at least one prefecture.")}
        )
    if not title.strip():
        raise ValidationError({"title": _("Give the disaster a title.")})
    return Disaster.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "title": title.strip(),
            "nationwide": nationwide,
            "prefectures": codes,
            "message": message,
            "declared_at": now,
            "declared_by": declared_by,
        },
    )


def close_disaster(*, disaster: Disaster, ended_by, now: datetime) -> bool:
    """End a disaster once; returns False when it had already ended."""
    return bool(
        Disaster.objects.filter(pk=disaster.pk, ended_at__isnull=True).update(
            ended_at=now, ended_by=ended_by
        )
    )


def declare_outage(*, operator, cause: str, message: str, now: datetime) -> Outage:
    """Start an outage of the ground station; refused while one is already current."""
    if cause not in Outage.Cause.values:
        raise ValidationError({"cause": _("Choose a cause.")})
    try:
        with transaction.atomic():
            return Outage.objects.create(
                cause=cause, message=message.strip(), started_at=now, declared_by=operator
            )
    except IntegrityError:
        raise ValidationError(_("An outage is already in progress; end it first.")) from None


def end_outage(*, outage: Outage, operator, now: datetime) -> bool:
    """End the outage once; False if it had already ended."""
    return bool(
        Outage.objects.filter(pk=outage.pk, is_current=True).update(
            is_current=None, ended_at=now, ended_by=operator
        )
    )


def current_outage() -> Outage | None:
    return Outage.objects.current().first()


def record_check_in(
    *, site, web_ok: bool, mail_ok: bool | None, equipment: str, source: str, by=None,
    note: str = "", now: datetime,
) -> CheckIn:  # fmt: skip
    """Record that a site checked its line; a damaged-equipment answer is kept as said."""
    if equipment not in CheckIn.Equipment.values:
        raise ValidationError({"equipment": _("Choose the state of the equipment.")})
    return CheckIn.objects.create(
        site=site,
        checked_at=now,
        web_ok=web_ok,
        mail_ok=mail_ok,
        equipment=equipment,
        source=source,
        checked_by=by,
        note=note.strip()[:500],
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_check_in_token(*, site, now: datetime) -> str:
    """A new secret for the site's own check-in link; returned once, stored as a hash."""
    token = secrets.token_urlsafe(32)
    SiteCheckInToken.objects.create(site=site, token_hash=_hash(token), created_at=now)
    return token


def revoke_check_in_tokens(*, site, now: datetime) -> int:
    return SiteCheckInToken.objects.filter(site=site, revoked_at__isnull=True).update(
        revoked_at=now
    )


def site_for_token(token: str):
    """The site a valid, unrevoked token belongs to, or None."""
    found = (
        SiteCheckInToken.objects.filter(token_hash=_hash(token), revoked_at__isnull=True)
        .select_related("site")
        .first()
    )
    return found.site if found else None
