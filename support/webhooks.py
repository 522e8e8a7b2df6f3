"""Posting JSON to a chat or SMS gateway the operator configured (on-call alerts, mass
messages). Outside the database's transactions, from a task: a gateway that is down is
logged and reported, never raised, since the e-mail has already gone through the outbox."""

import json
import logging
import urllib.error
import urllib.request

logger = logging.getLogger(__name__)


def post_json(url: str, payload: dict, *, timeout: float = 10) -> tuple[int | None, str]:
    """POST ``payload``; returns (HTTP status, "") or (None, the error, short)."""
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's setting)
        url,
        data=json.dumps(payload, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, ""
    except (urllib.error.URLError, OSError) as error:
        logger.warning("gateway %s failed: %s", url, error)
        return None, str(error)
