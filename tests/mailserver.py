"""A real SMTP server for tests and benchmarks (aiosmtpd), on a free local port.

It keeps every message it accepted, and can be told to answer 421 ("try again later")
or 550 (refused) for a while, or be stopped and started again like a real one.
"""

import socket
import threading
from email import message_from_bytes
from email.header import decode_header, make_header

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list = []
        self.refuse_with: str | None = None  # e.g. "421 busy", "550 no such user"
        self.accept_before_refusing = 0  # accept this many more, then refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_with and self.refuse_with.startswith("550"):
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refuse_with and self.accept_before_refusing <= 0:
                return self.refuse_with
            self.accept_before_refusing -= 1
            message = message_from_bytes(envelope.content)
            self.messages.append(
                {
                    "to": list(envelope.rcpt_tos),
                    "subject": str(make_header(decode_header(message["Subject"]))),
                    "message_id": message["Message-ID"],
                    "message": message,
                }
            )
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.recorder = Recorder()
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list:
        return self.recorder.messages

    def start(self) -> None:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self) -> dict:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": self.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": 10,
        }
