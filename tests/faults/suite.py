"""The distributed suite on the fault suite's own broker and database, each process restartable alone."""
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from services.cli import SERVICES
from shared.auth import FEED_SCOPES
from shared.clock import parse_instant
from tests.support.net import free_port
from tests.support.oidc import TestIssuer
from tests.support.suite import NOW, SERVICES_SECRET, Suite


class FaultSuite(Suite):
    """The distributed suite on the fault suite's own broker and database (not the shared ones Suite uses): the
    same processes and environment as Suite's distributed mode, and `kill` and `start_one` for one of them."""

    def __init__(self, workdir: Path, amqp_uri: str, database_url: str, now: str = NOW, speed: float = 1):
        super().__init__("embedded", workdir, now=now, speed=speed)  # the common environment; no shared broker
        self.mode = "distributed"
        self.database_url = database_url
        self.schema_prefix = "faults_"
        ports = {name: free_port() for name in SERVICES}
        self.issuer = TestIssuer(clients={"mawaeed-services": (SERVICES_SECRET, "subscriber", FEED_SCOPES)})
        self.env.update({
            "MAWAEED_OIDC_ISSUER": self.issuer.url, "MAWAEED_OIDC_CLIENT_ID": "mawaeed-services",
            "MAWAEED_OIDC_CLIENT_SECRET": SERVICES_SECRET, "MAWAEED_TRUSTED_PROXIES": "127.0.0.1",
            "AMQP_URI": amqp_uri, "DATABASE_URL": database_url, "DATABASE_SCHEMA_PREFIX": self.schema_prefix,
            "MAWAEED_FEED_URL": self.base_url,
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{p}" for name, p in ports.items()},
        })
        self.names = [*ports, "gateway"]
        self.commands = [[sys.executable, "-m", "services.cli", "run", name, "--listen", f"127.0.0.1:{p}"]
                         for name, p in ports.items()] + [
            [sys.executable, "-m", "services.cli", "gateway", "--listen", f"127.0.0.1:{self.base_url.rsplit(':', 1)[1]}"]]

    def schema(self, service: str) -> str:
        return f"{self.schema_prefix}{service}"

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        process = self.processes[self.names.index(name)]
        process.send_signal(sig)
        process.wait(timeout=30)

    def start(self) -> None:
        self.started = time.time()
        super().start()

    def current_env(self) -> dict:
        """The suite's environment with MAWAEED_NOW where the running processes' clocks are now: MAWAEED_NOW starts a
        process's clock at that instant when it starts, so the first value again would set a process started later
        (a restarted service, a replay) back by the time the suite has run."""
        now = parse_instant(self.env["MAWAEED_NOW"]) + timedelta(
            seconds=(time.time() - self.started) * float(self.env["MAWAEED_CLOCK_SPEED"]))
        return {**self.env, "MAWAEED_NOW": now.isoformat()}

    def start_one(self, name: str) -> None:
        """Start one process again, with the same command and environment (and the suite's clock) as before."""
        index = self.names.index(name)
        log = open(self.workdir / "suite.log", "ab")
        self.processes[index] = subprocess.Popen(self.commands[index], env=self.current_env(), stdout=log,
                                                 stderr=subprocess.STDOUT)

    def run_cli(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env=self.current_env(),
                              capture_output=True, text=True, timeout=180)

    def cleanup(self) -> None:
        self.issuer.close()  # the broker and the database go away whole
