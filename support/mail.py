"""Customer e-mails are Japanese first, with the English text below (one shape for all)."""

from collections.abc import Callable, Iterable

from django.template.loader import render_to_string
from django.utils import timezone, translation

LANGUAGES = ("ja", "en")


def bilingual(render: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """Call ``render`` (returning subject, body) in Japanese and in English, in Japan
    time, and join them: "ja subject / en subject", the Japanese body then the English."""
    parts = {}
    for language in LANGUAGES:
        with translation.override(language), timezone.override("Asia/Tokyo"):
            subject, body = render()
            parts[language] = (subject.strip(), body.strip())
    subject = f"{parts['ja'][0]} / {parts['en'][0]}"
    body = f"{parts['ja'][1]}\n\n---------- English ----------\n\n{parts['en'][1]}\n"
    return subject, body


def bilingual_from_templates(template: str, context: dict) -> tuple[str, str]:
    """``<template>_subject.txt`` and ``<template>.txt``, rendered in both languages."""
    return bilingual(
        lambda: (
            render_to_string(f"{template}_subject.txt", context),
            render_to_string(f"{template}.txt", context),
        )
    )


def customer_recipients(customer) -> list[str]:
    """Where a customer organisation's e-mails go: its active users and its contact address."""
    return recipients_by_customer([(customer.pk, customer.email)])[customer.pk]


def recipients_by_customer(customers: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """``customer_recipients`` for many organisations, given as (id, contact address)
    pairs: one query for all their users, whatever their number."""
    from django.contrib.auth import get_user_model

    emails: dict[int, set[str]] = {
        pk: {email.lower()} if email else set() for pk, email in customers
    }
    users = get_user_model().objects.filter(customer_id__in=list(emails), is_active=True)
    for customer_id, email in users.exclude(email="").values_list("customer_id", "email"):
        emails[customer_id].add(email.lower())
    return {pk: sorted(addresses) for pk, addresses in emails.items()}
