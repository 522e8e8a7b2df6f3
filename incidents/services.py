"""Disasters: opening and closing them. The blanket upgrade that a declaration starts is
the upgrades app's business (it calls these)."""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from incidents.models import Disaster
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
