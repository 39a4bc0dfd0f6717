"""A real SMTP server for tests: aiosmtpd in its own process (it runs on asyncio, the tests on eventlet),
delivering into a Maildir that the tests read; or one that refuses every recipient."""
import mailbox
import os
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

from tests.support.net import free_port


class Refuse:
    """aiosmtpd handler: a server that answers but refuses every recipient (550)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 Mailbox unavailable"


class SmtpServer:
    def __init__(self, directory: Path, refuse: bool = False):
        self.port = free_port()
        self.maildir = Path(directory) / "maildir"
        handler = ["-c", "tests.support.smtp.Refuse"] if refuse else \
            ["-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}", *handler],
            cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": "."},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the test SMTP server did not start")
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def messages(self) -> list:
        if not self.maildir.exists():
            return []
        return [message_from_bytes(bytes(m), policy=policy.default) for m in mailbox.Maildir(self.maildir).values()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
