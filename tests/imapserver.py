"""A real IMAP server for tests: Debian's dovecot, started with a configuration of the
test's own in a temporary directory (its own base_dir, one user in a passwd-file, maildir
mail in the same directory), listening on a free local port, and stopped afterwards.

It speaks IMAP over TLS (IMAPS) as the production mailbox does, with a self-signed
certificate made here by openssl; the portal trusts it through SUPPORT_MAILBOX_CA_FILE,
so the test runs the same verified-TLS code path as production. Skipped when dovecot or
openssl is not installed (CI installs both: .ci/run).
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from imap_tools import MailBox

from tests.mailserver import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class IMAPServer:
    user = "support@bcp.example.jp"
    password = "imap-test-password"

    def __init__(self):
        if not os.path.exists(DOVECOT) or not shutil.which("openssl"):
            pytest.skip("dovecot (dovecot-imapd) or openssl is not installed")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="imap-"))
        # dovecot's auth process runs as its own user and reads the passwd-file here.
        self.directory.chmod(0o755)
        self.process: subprocess.Popen | None = None

    def _configure(self) -> Path:
        d = self.directory
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (d / "mail").mkdir()
        (d / "run").mkdir()
        # The mail belongs to whoever runs the tests; dovecot never lets a mail user be
        # root, so under root (CI) it belongs to "nobody".
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(d / "mail", uid, gid)
        (d / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{d / 'mail'}\n"
        )
        config = d / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {d / "run"}
state_dir = {d / "run"}
instance_name = imap-test-{self.port}
protocols = imap
listen = 127.0.0.1
log_path = {d / "dovecot.log"}
mail_location = maildir:{d / "mail"}
ssl = required
ssl_cert = <{d / "cert.pem"}
ssl_key = <{d / "key.pem"}
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d / "passwd"}
}}
userdb {{
  driver = passwd-file
  args = {d / "passwd"}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""
        )
        return config

    def start(self) -> None:
        config = self._configure()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot did not start: {self.process.stderr.read()!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def settings(self) -> dict:
        return {
            "SUPPORT_MAILBOX_HOST": "127.0.0.1",
            "SUPPORT_MAILBOX_PORT": self.port,
            "SUPPORT_MAILBOX_USER": self.user,
            "SUPPORT_MAILBOX_PASSWORD": self.password,
            "SUPPORT_MAILBOX_FOLDER": "INBOX",
            "SUPPORT_MAILBOX_PROCESSED_FOLDER": "Processed",
            "SUPPORT_MAILBOX_SSL": True,
            "SUPPORT_MAILBOX_CA_FILE": str(self.directory / "cert.pem"),
        }

    def mailbox(self) -> MailBox:
        """A logged-in client of the test's own (to deliver and to look)."""
        import ssl

        context = ssl.create_default_context(cafile=str(self.directory / "cert.pem"))
        return MailBox("127.0.0.1", self.port, ssl_context=context).login(self.user, self.password)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message into the mailbox as a mail server's delivery would (APPEND)."""
        with self.mailbox() as box:
            box.append(raw, folder)

    def uids(self, folder: str) -> list[str]:
        with self.mailbox() as box:
            if not box.folder.exists(folder):
                return []
            box.folder.set(folder)
            return box.uids()

    def __enter__(self) -> "IMAPServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
