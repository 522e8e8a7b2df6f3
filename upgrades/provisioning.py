"""Backends that carry speed changes to the satellite network's management system.

The network is outside our system: a backend either applies a whole batch or raises
``ProvisioningUnavailable``, and the reconcile job tries again later. Each change carries
an id (line and change number) so the network can recognise a repeat.
"""

import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


class ProvisioningUnavailable(Exception):
    """The network did not take the batch; nothing of it counts as applied."""


@dataclass(frozen=True)
class SpeedChange:
    change_id: str  # "<subscription id>-<change number>", stable across retries
    line: str  # the contract number the network knows the line by
    speed_kbps: int


class RecordingBackend:
    """Applies nothing outside: logs each change. For the embedded mode and demos."""

    def apply(self, changes: list[SpeedChange]) -> None:
        for change in changes:
            logger.info(
                "speed change %s: %s → %s kbit/s", change.change_id, change.line, change.speed_kbps
            )


class HttpBackend:
    """POSTs a batch as JSON to ``PROVISIONING_URL``; any 2xx answer means applied."""

    def __init__(self, url: str, token: str = "", timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout

    def apply(self, changes: list[SpeedChange]) -> None:
        body = json.dumps({"changes": [asdict(change) for change in changes]}).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's setting)
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                if not 200 <= response.status < 300:
                    raise ProvisioningUnavailable(f"HTTP {response.status}")
        except urllib.error.HTTPError as error:
            raise ProvisioningUnavailable(f"HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise ProvisioningUnavailable(str(error)) from error


def get_backend():
    if settings.PROVISIONING_BACKEND == "http":
        return HttpBackend(
            settings.PROVISIONING_URL,
            settings.PROVISIONING_TOKEN,
            settings.PROVISIONING_TIMEOUT_SECONDS,
        )
    return RecordingBackend()
