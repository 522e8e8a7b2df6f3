"""Backends that carry speed changes to the satellite network's management system.

The network is outside our system: a backend either applies a whole batch or raises
``ProvisioningUnavailable``, and the reconcile job tries again later. Each change carries
an id (line and change number) so the network can recognise a repeat.
"""

import http.client
import json
import logging
import socket
import urllib.parse
from typing import NamedTuple

from django.conf import settings

logger = logging.getLogger(__name__)


class ProvisioningUnavailable(Exception):
    """The network did not take the batch; nothing of it counts as applied."""


class SpeedChange(NamedTuple):
    """One line's wanted speed, as the network is sent it. A tuple: a national disaster
    builds a million of them."""

    change_id: str  # "<subscription id>-<change number>", stable across retries
    line: str  # the contract number the network knows the line by
    speed_kbps: int


class RecordingBackend:
    """Applies nothing outside: logs each change. For the embedded mode and demos."""

    def close(self) -> None:
        pass

    def apply(self, changes: list[SpeedChange]) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        for change in changes:
            logger.info(
                "speed change %s: %s → %s kbit/s", change.change_id, change.line, change.speed_kbps
            )


class HttpBackend:
    """POSTs a batch as JSON to ``PROVISIONING_URL``; any 2xx answer means applied.

    One backend keeps one connection open across the batches of a reconcile run (HTTP/1.1
    keep-alive): a million lines are two thousand POSTs, and a new TCP (and TLS)
    connection for each was most of the time the run spent talking to the network. A
    connection the server closed while idle is opened again, and the batch sent again
    once: the network recognises a repeated change by its ``change_id``.
    """

    def __init__(self, url: str, token: str = "", timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self.timeout)
        connection.connect()
        # http.client sends a large body apart from its headers: on a connection kept
        # open, Nagle's algorithm then holds the body until the server's delayed ACK of
        # the headers, 40 ms a batch on Linux. Measured: 200 batches took 37 s instead
        # of 13 (bench/disaster.py, "reconcile http").
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def apply(self, changes: list[SpeedChange]) -> None:
        body = json.dumps({"changes": [change._asdict() for change in changes]}).encode()
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {self.token}"} if self.token else {}
        )
        reused = self._connection is not None
        try:
            status = self._post(body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
            self.close()
            if not reused:
                raise ProvisioningUnavailable(str(error)) from error
            # The server closed the connection we kept: once more, on a new one.
            try:
                status = self._post(body, headers)
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise ProvisioningUnavailable(str(error)) from error
        except (OSError, http.client.HTTPException) as error:
            # A timeout or a broken answer leaves the connection in an unknown state.
            self.close()
            raise ProvisioningUnavailable(str(error) or type(error).__name__) from error
        if not 200 <= status < 300:
            raise ProvisioningUnavailable(f"HTTP {status}")

    def _post(self, body: bytes, headers: dict) -> int:
        if self._connection is None:
            self._connection = self._connect()
        self._connection.request("POST", self._path, body=body, headers=headers)
        response = self._connection.getresponse()
        response.read()  # the whole answer, so the connection can carry the next batch
        if response.will_close:
            self.close()
        return response.status


def get_backend():
    if settings.PROVISIONING_BACKEND == "http":
        return HttpBackend(
            settings.PROVISIONING_URL,
            settings.PROVISIONING_TOKEN,
            settings.PROVISIONING_TIMEOUT_SECONDS,
        )
    return RecordingBackend()
