"""Disasters: opening and closing them. The blanket upgrade that a declaration starts is
the upgrades app's business (it calls these)."""

import hashlib
import secrets
import uuid
import warnings
from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from PIL import Image

from incidents.contacts import arrival
from incidents.models import (
    CheckIn,
    DamagePhoto,
    DamageReport,
    Disaster,
    FieldVisit,
    Outage,
    SiteCheckInToken,
)
from subscriptions.prefectures import Prefecture
from support.contacts import record_first_response
from support.mail import bilingual_from_templates, customer_recipients
from support.merging import check_merge, lock_pair, tell_customer_merged
from support.outbox import queue_email
from support.services import alert_on_call


def check_disaster_scope(*, title: str, nationwide: bool, prefectures: Iterable[str]) -> list[str]:
    """A declaration needs a title and either nationwide or known prefectures (sorted
    codes returned); ValidationError by field otherwise."""
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
    return codes


def open_disaster(
    *,
    declared_by,
    title: str,
    nationwide: bool,
    prefectures: Iterable[str],
    message: str,
    message_en: str = "",
    idempotency_key: str,
    now: datetime,
) -> tuple[Disaster, bool]:
    """Record a declaration; the same key returns the disaster already declared."""
    codes = check_disaster_scope(title=title, nationwide=nationwide, prefectures=prefectures)
    return Disaster.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "title": title.strip(),
            "nationwide": nationwide,
            "prefectures": codes,
            "message": message,
            "message_en": message_en.strip(),
            "declared_at": now,
            "declared_by": declared_by,
        },
    )


def close_disaster(*, disaster: Disaster, ended_by, now: datetime, message: str = "") -> bool:
    """End a disaster once, with the operator's closing message to customers (may be
    empty); returns False when it had already ended."""
    return bool(
        Disaster.objects.filter(pk=disaster.pk, ended_at__isnull=True).update(
            ended_at=now, ended_by=ended_by, closing_message=message.strip()
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


PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
# The file name a photo is stored and served under ends in the detected type, never in
# the uploader's own extension (a JPEG/HTML polyglot named x.html stays a .jpg).
PHOTO_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


def check_photo(upload) -> str:
    """The photo's content type if it is a JPEG or PNG within the size and pixel limits,
    else a ValidationError saying what is wrong (the bytes are checked, not the file
    name). The pixels are read from the header: a 17 KB PNG can claim 144 megapixels,
    which would take gigabytes to decode when the photo is opened."""
    if upload.size > settings.DAMAGE_PHOTO_MAX_BYTES:
        raise ValidationError(
            _("%(name)s is too large: at most %(mb)s MB per photo.")
            % {"name": upload.name, "mb": settings.DAMAGE_PHOTO_MAX_BYTES // (1024 * 1024)}
        )
    too_many_pixels = ValidationError(
        _("%(name)s has too many pixels: at most %(mp)s megapixels per photo.")
        % {"name": upload.name, "mp": settings.DAMAGE_PHOTO_MAX_PIXELS // 1_000_000}
    )
    try:
        upload.seek(0)
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb limits; here that is a refusal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                image.verify()
                kind = image.format
                width, height = image.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise too_many_pixels from error
    except Exception as error:  # Pillow raises many kinds for a file that is no image
        raise ValidationError(
            _("%(name)s is not a JPEG or PNG photo.") % {"name": upload.name}
        ) from error
    finally:
        upload.seek(0)
    if kind not in PHOTO_FORMATS:
        raise ValidationError(_("%(name)s is not a JPEG or PNG photo.") % {"name": upload.name})
    if width * height > settings.DAMAGE_PHOTO_MAX_PIXELS:
        raise too_many_pixels
    return PHOTO_FORMATS[kind]


def report_damage(
    *, site, description: str, photos: list, channel: str, by=None, now: datetime
) -> DamageReport:
    """Record a damaged-equipment report with its photos, all or nothing (the API: a
    program retries the whole call). The portal's form saves the text first and adds each
    photo on its own (add_damage_photos), so a refused photo never loses the report.

    Every photo is checked before anything is saved; after hours, the staff on call are
    alerted; a report during an outage is linked to it.
    """
    if not description.strip():
        raise ValidationError({"description": _("Describe what happened.")})
    if len(photos) > settings.DAMAGE_PHOTO_MAX_COUNT:
        raise ValidationError({"photos": _too_many_photos()})
    errors, kinds = [], []
    for photo in photos:
        try:
            kinds.append(check_photo(photo))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError({"photos": errors})
    with transaction.atomic():
        report = DamageReport.objects.create(
            site=site,
            description=description.strip(),
            channel=channel,
            reported_by=by,
            **arrival(prefectures=[site.prefecture], now=now),
        )
        for photo, kind in zip(photos, kinds, strict=True):
            _store_photo(report=report, photo=photo, kind=kind)
        if report.after_hours:
            alert_on_call(
                contact_kind="damage_report",
                contact_id=report.pk,
                summary=_("Damage report #%(number)s: %(site)s")
                % {"number": report.pk, "site": site},
                url=reverse("admin:incidents_damagereport_change", args=[report.pk]),
                received_at=now,
            )
    return report


def _too_many_photos() -> str:
    return _("At most %(n)s photos per report.") % {"n": settings.DAMAGE_PHOTO_MAX_COUNT}


def _store_photo(*, report: DamageReport, photo, kind: str) -> DamagePhoto:
    photo.name = f"{uuid.uuid4().hex}.{PHOTO_EXTENSIONS[kind]}"
    return DamagePhoto.objects.create(
        report=report, image=photo, content_type=kind, size=photo.size
    )


def add_damage_photo(*, report: DamageReport, photo) -> DamagePhoto:
    """Add one photo to a report, now or later, under the same rules as at the report:
    JPEG or PNG by content, within the size and pixel limits, at most
    DAMAGE_PHOTO_MAX_COUNT per report. A report merged into another takes none (its
    photos moved to the other report)."""
    kind = check_photo(photo)
    with transaction.atomic():
        # The lock makes two uploads at once count each other (the JavaScript sends the
        # photos one after the other, but a customer may use two tabs).
        locked = DamageReport.objects.select_for_update().get(pk=report.pk)
        if locked.merged_into_id:
            raise ValidationError(
                _("This report was merged into report #%(number)s: add the photo there.")
                % {"number": locked.merged_into_id}
            )
        if DamagePhoto.objects.filter(report=locked).count() >= settings.DAMAGE_PHOTO_MAX_COUNT:
            raise ValidationError(
                _("%(name)s was not added: %(limit)s")
                % {"name": photo.name, "limit": _too_many_photos()}
            )
        return _store_photo(report=locked, photo=photo, kind=kind)


def add_damage_photos(*, report: DamageReport, photos: list) -> list[str]:
    """Add each photo on its own; what was refused is named, the rest are kept."""
    refused = []
    for photo in photos:
        try:
            add_damage_photo(report=report, photo=photo)
        except ValidationError as error:
            refused.extend(error.messages)
    return refused


def damage_progress(report: DamageReport) -> str:
    """What the customer reads: honest, and never a date (FAQ Q5: no promised date)."""
    if report.status == DamageReport.Status.CLOSED:
        return _("Closed.")
    states = {visit.status for visit in report.visits.all()}
    if FieldVisit.Status.DONE in states:
        return _("A technician has visited the site.")
    if FieldVisit.Status.PLANNED in states:
        return _(
            "A technician visit is being arranged. We do our best but cannot promise a "
            "date; we will contact you before coming."
        )
    return _(
        "Received. We will do our best to visit and reinstall the equipment, but we cannot "
        "promise a date."
    )


def plan_field_visit(
    *, report: DamageReport, tentative_date: date | None = None, technician: str = "", now: datetime
) -> FieldVisit:
    """Plan a technician's visit and tell the customer one is being arranged.

    The tentative date is for staff only: the e-mail never carries a date (FAQ Q5: best
    effort, no promised time), only that we will contact them before coming.
    """
    if report.merged_into_id is not None:
        # Its visits moved to the report it was merged into: nothing more happens here.
        raise ValidationError(
            _("This report was merged into #%(number)s: plan the visit there.")
            % {"number": report.merged_into_id}
        )
    with transaction.atomic():
        visit = FieldVisit.objects.create(
            report=report,
            tentative_date=tentative_date,
            technician=technician.strip(),
            status=FieldVisit.Status.PLANNED,
        )
        record_first_response(report, now=now)
        _queue_field_visit_email(visit=visit, event="planned", now=now)
    return visit


def complete_field_visit(*, visit: FieldVisit, outcome: str = "", now: datetime) -> bool:
    """Record that a planned visit took place and tell the customer what was done.

    A conditional update, so recording it twice (a replayed form, two staff at once)
    marks it done and e-mails once; returns False when it was already done. A visit
    called off cannot be marked done.
    """
    with transaction.atomic():
        moved = FieldVisit.objects.filter(pk=visit.pk, status=FieldVisit.Status.PLANNED).update(
            status=FieldVisit.Status.DONE, outcome=outcome.strip()
        )
        if not moved:
            if FieldVisit.objects.filter(pk=visit.pk, status=FieldVisit.Status.DONE).exists():
                return False
            raise ValidationError(_("Only a visit being arranged can be marked done."))
        visit.refresh_from_db()
        _queue_field_visit_email(visit=visit, event="done", now=now)
    return True


def _queue_field_visit_email(*, visit: FieldVisit, event: str, now: datetime) -> None:
    # The visit itself is not in the context, only its outcome: its tentative date
    # cannot reach the customer by a template's mistake.
    report = DamageReport.objects.select_related("site__customer").get(pk=visit.report_id)
    customer = report.site.customer
    subject, body = bilingual_from_templates(
        f"incidents/email/field_visit_{event}",
        {
            "customer": customer,
            "report": report,
            "outcome": visit.outcome,
            "report_url": settings.PORTAL_BASE_URL
            + reverse("incidents:damage-report", args=[report.pk]),
            "support_phone": settings.SUPPORT_PHONE,
            "support_email": settings.SUPPORT_EMAIL,
        },
    )
    queue_email(
        key=f"field-visit-{event}:{visit.pk}",
        to=customer_recipients(customer),
        subject=subject,
        body=body,
        now=now,
    )


def close_damage_report(*, report: DamageReport, now: datetime) -> bool:
    """Staff close a report that needs nothing more; False if it was already closed.
    Closing is a response: a report closed unanswered has met its target then."""
    with transaction.atomic():
        closed = DamageReport.objects.filter(pk=report.pk, status=DamageReport.Status.NEW).update(
            status=DamageReport.Status.CLOSED, closed_at=now
        )
        if closed:
            record_first_response(report, now=now)
    return bool(closed)


# A report still in the desk's hands, which a duplicate can join.
DAMAGE_MERGE_TARGETS = DamageReport.OPEN_STATUSES


def merge_damage_reports(*, duplicate: DamageReport, into: DamageReport, by, now: datetime) -> None:
    """Merge an open damage report into another of the same customer about the same
    damage (support/merging.py says which merges are refused).

    The duplicate is closed and points at the target; its photos and field visits move
    to the target, so the technician sees everything in one place and the visits' later
    e-mails name the target. The customer is e-mailed once.
    """
    with transaction.atomic():
        duplicate, into = lock_pair(DamageReport.objects.select_related("site"), duplicate, into)
        check_merge(
            duplicate=duplicate,
            into=into,
            same_customer=duplicate.site.customer_id == into.site.customer_id,
            into_statuses=DAMAGE_MERGE_TARGETS,
        )
        closed = DamageReport.objects.filter(
            pk=duplicate.pk, status=DamageReport.Status.NEW, merged_into__isnull=True
        ).update(status=DamageReport.Status.CLOSED, closed_at=now, merged_into=into)
        if not closed:
            raise ValidationError(
                _("#%(number)s is closed: only an open report can be merged.")
                % {"number": duplicate.pk}
            )
        DamagePhoto.objects.filter(report=duplicate).update(report=into)
        FieldVisit.objects.filter(report=duplicate).update(report=into)
        tell_customer_merged(
            duplicate=duplicate,
            into=into,
            customer=into.site.customer,
            url_path=reverse("incidents:damage-report", args=[into.pk]),
            now=now,
        )
