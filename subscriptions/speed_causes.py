"""Why a line runs at its speed, in the reader's language.

The services write the cause into the audit in English, with the numbers, title and
address that identify it (``Subscription.desired_cause``, ``ProvisioningChange.cause``).
Those rows stay as written; pages and the admin show them through ``describe_cause``.
A cause of any other form (an older row, one cut at 200 characters) shows as stored.
"""

import re

from django.utils.translation import gettext as _

from support.channels import Channel


def _channel(value: str) -> str:
    return Channel(value).label if value in Channel.values else value


# (pattern, message): tried in order, the first that matches the whole cause is shown.
CAUSES = [
    (
        r"blanket upgrade (?P<blanket>\d+): (?P<title>.*) \(declared by (?P<by>[^()]*)\)",
        lambda m: _("Blanket upgrade %(blanket)s: %(title)s (declared by %(by)s)") % m,
    ),
    (
        r"blanket upgrade (?P<blanket>\d+) ended \(disaster ended by an operator\)",
        lambda m: _("Blanket upgrade %(blanket)s ended (an operator ended the disaster)") % m,
    ),
    (
        r"blanket upgrade (?P<blanket>\d+): (?P<title>.*)",
        lambda m: _("Blanket upgrade %(blanket)s: %(title)s") % m,
    ),
    (
        r"upgrade request (?P<request>\d+) approved by (?P<by>.*)",
        lambda m: _("Upgrade request %(request)s approved by %(by)s") % m,
    ),
    (
        r"upgrade request (?P<request>\d+) ended by staff",
        lambda m: _("Upgrade request %(request)s ended by the support desk") % m,
    ),
    (
        r"upgrade request (?P<request>\d+) ended by (?P<by>.*)",
        lambda m: _("Upgrade request %(request)s ended by %(by)s") % m,
    ),
    (
        r"not confirmed before the deadline",
        lambda m: _("Not confirmed before the deadline"),
    ),
    (
        r"declined via (?P<channel>\w+) by (?P<by>.*)",
        lambda m: (
            _("Declined by the customer (%(channel)s), recorded by %(by)s")
            % {**m, "channel": _channel(m["channel"])}
        ),
    ),
    (
        r"declined via (?P<channel>\w+)",
        lambda m: _("Declined by the customer (%(channel)s)") % {"channel": _channel(m["channel"])},
    ),
]
_COMPILED = [(re.compile(pattern, re.DOTALL), message) for pattern, message in CAUSES]


def describe_cause(cause: str) -> str:
    for pattern, message in _COMPILED:
        match = pattern.fullmatch(cause)
        if match:
            return message(match.groupdict())
    return cause
