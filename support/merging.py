"""Merging two contacts that are the same matter: the rules every kind shares.

Design: each kind merges its own data in its own app, below the desk
(``desk.services.merge_inquiries``, ``upgrades.services.requests.merge_upgrade_requests``,
``incidents.services.merge_damage_reports``), because the upgrades and incidents admins
may not import the desk. They all call ``check_merge`` (which merges are allowed) and
``tell_customer_merged`` (the one e-mail) from here, and their admins share one action,
``support.admin.MergeIntoActionMixin``, given the kind's service.
``desk.services.merge_contacts`` is the one entry point over every kind.
"""

from collections.abc import Collection
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from support.mail import bilingual_from_templates, customer_recipients
from support.models import Contact, OutboundEmail
from support.outbox import queue_email


def lock_pair(queryset, duplicate: Contact, into: Contact) -> tuple[Contact, Contact]:
    """The two contacts of a merge, fresh and locked in id order (so two merges of the
    same pair, either way round, never wait on each other); each as given if not found."""
    locked = {
        contact.pk: contact
        for contact in queryset.select_for_update(of=("self",))
        .filter(pk__in=[duplicate.pk, into.pk])
        .order_by("pk")
    }
    return locked.get(duplicate.pk, duplicate), locked.get(into.pk, into)


def check_merge(
    *, duplicate: Contact, into: Contact, same_customer: bool, into_statuses: Collection[str]
) -> None:
    """Refuse (ValidationError) a merge that would lose or tangle a matter: contacts of
    two kinds or two customers, a contact into itself, into one closed or merged (a
    chain), or a duplicate already merged. ``into_statuses``: the kind's statuses a target
    may have (still handled by the desk)."""
    if type(duplicate) is not type(into):
        raise ValidationError(_("Only two contacts of the same kind can be merged."))
    if duplicate.pk == into.pk:
        raise ValidationError(_("A contact cannot be merged into itself."))
    if not same_customer:
        raise ValidationError(_("Only contacts of the same customer can be merged."))
    if duplicate.merged_into_id is not None:
        raise ValidationError(
            _("#%(number)s is already merged into #%(into)s.")
            % {"number": duplicate.pk, "into": duplicate.merged_into_id}
        )
    if into.merged_into_id is not None:
        raise ValidationError(
            _("#%(number)s was itself merged into #%(into)s: merge into that one.")
            % {"number": into.pk, "into": into.merged_into_id}
        )
    if into.status not in into_statuses:
        raise ValidationError(
            _("#%(number)s is closed (%(status)s): merge only into an open contact.")
            % {"number": into.pk, "status": into.get_status_display()}
        )


def tell_customer_merged(
    *, duplicate: Contact, into: Contact, customer, url_path: str, now: datetime
) -> OutboundEmail | None:
    """The customer's one e-mail about a merge: "your #B is now handled together with
    #A". Keyed by the duplicate, so merging (or replaying the merge) queues it once."""
    kind = duplicate._meta.model_name
    subject, body = bilingual_from_templates(
        "support/email/contact_merged",
        {
            "customer": customer,
            "kind": duplicate._meta.verbose_name,
            "duplicate": duplicate,
            "into": into,
            "url": settings.PORTAL_BASE_URL + url_path,
        },
    )
    return queue_email(
        key=f"merged:{kind}:{duplicate.pk}",
        to=customer_recipients(customer),
        subject=subject,
        body=body,
        now=now,
    )
