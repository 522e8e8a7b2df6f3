"""Customer e-mails are Japanese first, with the English text below (one shape for all)."""

from collections.abc import Callable

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
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(customer_id=customer.pk, is_active=True)
    emails = {email.lower() for email in users.values_list("email", flat=True) if email}
    if customer.email:
        emails.add(customer.email.lower())
    return sorted(emails)
