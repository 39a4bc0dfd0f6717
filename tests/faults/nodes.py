"""The fault suite's own RabbitMQ node and PostgreSQL cluster, started for one pytest session and thrown away.

They are never the machine's shared ones (5672, 5432): stopping a broker or restarting a database here must not
disturb anyone else's tests. Each keeps everything (data, logs, config, the Erlang cookie) in a temporary folder.
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.net import free_port

# RabbitMQ's command-line tools take their own Erlang distribution ports from 35672-35682: never listen there.
CLI_PORTS = range(35672, 35683)


def _port() -> int:
    while True:
        port = free_port()
        if port not in CLI_PORTS:
            return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tool(name: str, *places: str) -> str:
    for place in places:
        found = sorted(glob.glob(place), key=lambda p: [int(x) if x.isdigit() else x for x in p.split("/")])
        if found and os.access(found[-1], os.X_OK):
            return found[-1]
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed (make services installs RabbitMQ and PostgreSQL)")
    return found


class RabbitNode:
    """A RabbitMQ node of our own: `mawaeed-faults-<pid>@localhost` on a free port, management off."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mawaeed-faults-rabbit-"))
        self.port = _port()
        self.name = f"mawaeed-faults-{os.getpid()}@localhost"
        self.server = _tool("rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server")  # not the sbin wrapper
        self.ctl = _tool("rabbitmqctl", "/usr/lib/rabbitmq/bin/rabbitmqctl")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
                                                "loopback_users = none\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's, which names the shared node
        self.env = {**os.environ, "HOME": str(self.dir),  # its own Erlang cookie
                    "RABBITMQ_NODENAME": self.name, "RABBITMQ_DIST_PORT": str(_port()),
                    "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                    "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
                    "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_PID_FILE": str(self.dir / "pid"), "ERL_EPMD_ADDRESS": "127.0.0.1",
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}"}
        self.uri = f"pyamqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl_run(self, *args, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.ctl, "-q", "-n", self.name, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start(self) -> None:
        subprocess.run([self.server, "-detached"], env=self.env, check=True, capture_output=True, timeout=60)
        self.wait_up()

    def wait_up(self, within: float = 90) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.ctl_run("await_startup", "--timeout", "20", timeout=30).returncode == 0 and _answers(self.port):
                return
            time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ node {self.name} did not start; see {self.dir / 'log'}")

    def stop_app(self) -> None:
        result = self.ctl_run("stop_app")
        assert result.returncode == 0, result.stderr

    def start_app(self) -> None:
        result = self.ctl_run("start_app")
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 60
        while not _answers(self.port):
            assert time.monotonic() < deadline, f"RabbitMQ {self.name} is not listening after start_app"
            time.sleep(0.1)

    def queues(self) -> dict[str, int]:
        """Messages (ready + unacknowledged) in every queue of the node."""
        result = self.ctl_run("list_queues", "name", "messages", "--no-table-headers", timeout=30)
        assert result.returncode == 0, result.stderr
        return {name: int(count) for name, count in (line.split() for line in result.stdout.splitlines() if line.strip())}

    def stop(self) -> None:
        try:
            self.ctl_run("stop", timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PostgresCluster:
    """A PostgreSQL cluster of our own (initdb in a temporary folder, trust auth, a free port)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mawaeed-faults-pg-"))
        self.port = _port()
        self.bin = Path(_tool("initdb", "/usr/lib/postgresql/*/bin/initdb")).parent
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args, timeout: float = 120) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.dir / "postgres.log"), "-w", *args], check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        self._ctl("-o", self.options, "start")

    def restart(self) -> None:
        """A fast shutdown (open sessions are cut off) and a start."""
        self._ctl("-m", "fast", "-o", self.options, "restart")

    def stop(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
