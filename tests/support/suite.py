"""Starting the suite for a test, in one of two ways.

start_suite: services in nameko runners inside the test process (integration tests, with their `config`);
Suite:       the suite as a newcomer runs it, in separate processes driven over HTTP (end-to-end tests):
  embedded:    `mawaeed run` (every service in one process, kombu in-memory, SQLite files)
  distributed: `mawaeed run availability`, `... booking`, `... queue`, `... notifications` and `mawaeed gateway`,
               on the real RabbitMQ (a fresh vhost) and PostgreSQL (fresh schemas)
  A Suite can be restarted at a later instant (`restart(now=...)`) and run its clock faster (`speed`), so a test
  can book the day before and then live through a morning at a branch in seconds.
"""
import os
import signal
from contextlib import contextmanager
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

from services.availability.service import AvailabilityService
from services.booking.service import BookingService
from services.cli import SERVICES

from shared.auth import FEED_SCOPES
from shared.issuer import DevelopmentIssuer
from tests.conftest import PG_URL
from tests.support.net import free_ports
from tests.support.oidc import TestIssuer

NOW = "2026-12-06T09:00:00+03:00"  # a Sunday morning in Bahrain
SERVICES_SECRET = "services-secret-for-tests"
RABBIT_API = os.environ.get("TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672/api")


def signed_in(config: dict, role: str, **claims) -> dict:
    """Request headers of a caller with `role`, signed by the development issuer of a suite run on `config`
    (claims: branches=[...], directorates=[...], counter=..., cpr=..., scope="...")."""
    scopes = claims.pop("scope", "").split()
    token = DevelopmentIssuer(config["MAWAEED_DATA_DIR"], config["MAWAEED_PUBLIC_URL"]).issue(role, scopes=scopes, **claims)
    return {"Authorization": f"Bearer {token}"}


def start_suite(runner_factory, config, *classes):
    """A started nameko runner of `classes` (by default availability and booking) on `config`."""
    runner = runner_factory(config, *(classes or (AvailabilityService, BookingService)))
    runner.start()
    return runner


class Suite:
    """Signed in as the real callers are: the embedded suite is its own development issuer (tokens signed with the
    key it keeps in its data folder); the distributed one trusts a test issuer serving its keys over HTTP, which
    also grants the services their own token. Abuse limits are off unless `rate_limits` says otherwise."""

    def __init__(self, mode: str, workdir: Path, now: str = NOW, speed: float = 1, rate_limits: str = "off"):
        self.mode = mode
        self.workdir = workdir
        port, *others = free_ports(1 + len(SERVICES))  # the suite's (the gateway's) and each service's
        self.base_url = f"http://127.0.0.1:{port}"
        self.api = f"{self.base_url}/api/v1"
        self.env = {**os.environ, "MAWAEED_NOW": now, "MAWAEED_CLOCK_SPEED": str(speed),
                    "MAWAEED_DATA_DIR": str(workdir / "var"), "MAWAEED_PORT": str(port), "LOG_LEVEL": "WARNING",
                    "MAWAEED_PUBLIC_URL": self.base_url, "MAWAEED_RATE_LIMITS": rate_limits}
        self.issuer = None
        self.commands = [[sys.executable, "-m", "services.cli", "run"]]
        if mode == "distributed":
            self.vhost = f"mawaeed-e2e-{uuid.uuid4().hex[:8]}"
            requests.put(f"{RABBIT_API}/vhosts/{self.vhost}", timeout=10).raise_for_status()
            requests.put(f"{RABBIT_API}/permissions/{self.vhost}/guest",
                         json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
            self.schema_prefix = f"e2e{uuid.uuid4().hex[:8]}_"
            ports = dict(zip(SERVICES, others))
            self.issuer = TestIssuer(clients={"mawaeed-services": (SERVICES_SECRET, "subscriber", FEED_SCOPES),
                                              # another system's: the booking feed, nothing personal
                                              "example-subscriber": (SERVICES_SECRET, "subscriber", ["events:booking"])})
            self.env.update({
                "MAWAEED_OIDC_ISSUER": self.issuer.url, "MAWAEED_OIDC_CLIENT_ID": "mawaeed-services",
                "MAWAEED_OIDC_CLIENT_SECRET": SERVICES_SECRET, "MAWAEED_TRUSTED_PROXIES": "127.0.0.1",
                "AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}", "DATABASE_URL": PG_URL,
                "DATABASE_SCHEMA_PREFIX": self.schema_prefix, "MAWAEED_FEED_URL": self.base_url,
                "MAWAEED_PUBLIC_URL": self.base_url,
                **{f"{name.upper()}_URL": f"http://127.0.0.1:{p}" for name, p in ports.items()},
            })
            self.commands = [
                [sys.executable, "-m", "services.cli", "run", name, "--listen", f"127.0.0.1:{p}"]
                for name, p in ports.items()
            ] + [[sys.executable, "-m", "services.cli", "gateway", "--listen", f"127.0.0.1:{port}"]]
        self.processes = []

    def token(self, role: str, **claims) -> str:
        """A token for `role` (claims: branches=[...], directorates=[...], counter=..., cpr=..., scope="...")."""
        return self.as_(role, **claims)["Authorization"].removeprefix("Bearer ")

    def as_(self, role: str, **claims) -> dict:
        """Request headers of a caller with `role`."""
        if self.issuer is not None:
            return {"Authorization": f"Bearer {self.issuer.token(role, **claims)}"}
        return signed_in(self.env, role, **claims)

    def reader(self) -> dict:
        """Headers of a subscriber that may read every feed with personal fields (as the suite's own services)."""
        return self.as_("subscriber", scope=" ".join(FEED_SCOPES))

    def start(self) -> None:
        log = open(self.workdir / "suite.log", "ab")
        self.processes = [subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
                          for cmd in self.commands]
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until /health answers 200: ready means every service answers, caught up from the logs, and every copy
        of the catalogue at availability's head (tests/e2e/test_ready.py holds it to that)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args} exited early; see {self.workdir / 'suite.log'}")
            try:
                if requests.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the suite did not come up; see {self.workdir / 'suite.log'}")

    def restart(self, now: str | None = None, speed: float | None = None) -> None:
        """Stop every process and start them again, optionally at a later instant or another clock speed."""
        self.stop()
        if now:
            self.env["MAWAEED_NOW"] = now
        if speed:
            self.env["MAWAEED_CLOCK_SPEED"] = str(speed)
        self.start()

    def stop(self, sig=signal.SIGTERM) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run_cli(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)

    def cleanup(self) -> None:
        if self.issuer is not None:
            self.issuer.close()
        if self.mode == "distributed":
            requests.delete(f"{RABBIT_API}/vhosts/{self.vhost}", timeout=10)
            engine = sa.create_engine(PG_URL)
            with engine.begin() as conn:
                for schema in SERVICES:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema_prefix}{schema}" CASCADE'))
            engine.dispose()


@contextmanager
def running(suite: Suite):
    """A started suite, always stopped and cleaned up afterwards."""
    try:
        suite.start()
        yield suite
    finally:
        suite.stop()
        suite.cleanup()
