"""Canned replies' placeholders: ``{customer}``, ``{site}``, ``{deadline}``, ``{number}``,
filled from the inquiry when the reply is saved, so the customer reads the filled text.

Only a name in braces (``{customer}``) is a placeholder: any other brace ("{ }", "{{",
a JSON snippet) is text and stays as written. An unknown name is never guessed at nor
sent: the reply is refused and staff are told which name to correct.
"""

import re
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from desk.models import Inquiry
from upgrades.models import SpeedGrant

JAPAN = ZoneInfo("Asia/Tokyo")
PLACEHOLDER = re.compile(r"\{(\w+)\}")

PLACEHOLDERS = {
    "customer": gettext_lazy("the customer organisation's name"),
    "site": gettext_lazy("the inquiry's site (or all the customer's sites)"),
    "deadline": gettext_lazy(
        "the confirmation deadline of the customer's blanket upgrade waiting for an answer "
        "(Japan time)"
    ),
    "number": gettext_lazy("the inquiry's number"),
}


def placeholders_help() -> str:
    return _("Placeholders filled in when the reply is sent: %(list)s.") % {
        "list": "; ".join(f"{{{name}}} = {meaning}" for name, meaning in PLACEHOLDERS.items())
    }


def unknown_placeholders(text: str) -> list[str]:
    """The names in braces that are not placeholders, in order, each once."""
    names = dict.fromkeys(PLACEHOLDER.findall(text or ""))
    return [name for name in names if name not in PLACEHOLDERS]


def unknown_placeholders_message(names: list[str]) -> str:
    return _("Unknown placeholder(s) %(names)s: correct the canned reply. Known: %(known)s.") % {
        "names": ", ".join(f"{{{name}}}" for name in names),
        "known": ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
    }


def _deadline(customer_id: int) -> str:
    deadlines = sorted(
        set(
            SpeedGrant.objects.for_customer(customer_id)
            .filter(state=SpeedGrant.State.PENDING, blanket_upgrade__isnull=False)
            .values_list("blanket_upgrade__deadline", flat=True)
        )
    )
    if not deadlines:
        return _("(no upgrade is waiting for your confirmation)")
    return ", ".join(
        deadline.astimezone(JAPAN).strftime("%Y-%m-%d %H:%M") + _(" (Japan time)")
        for deadline in deadlines
    )


def _site(inquiry: Inquiry) -> str:
    if inquiry.site_id:
        return inquiry.site.name
    if inquiry.customer_id is None:  # an unknown sender's e-mail
        return ""
    names = inquiry.customer.sites.order_by("name", "pk").values_list("name", flat=True)
    return ", ".join(names) or inquiry.customer.name


def fill_placeholders(text: str, *, inquiry: Inquiry) -> str:
    """``text`` with its placeholders filled from ``inquiry``; ValueError naming the
    unknown ones (checked first, so nothing is half filled)."""
    unknown = unknown_placeholders(text)
    if unknown:
        raise ValueError(unknown)
    values = {}

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            values[name] = {
                "customer": lambda: (
                    inquiry.customer.name if inquiry.customer_id else inquiry.sender_email
                ),
                "site": lambda: _site(inquiry),
                "deadline": lambda: _deadline(inquiry.customer_id),
                "number": lambda: str(inquiry.pk),
            }[name]()
        return values[name]

    return PLACEHOLDER.sub(value, text)
