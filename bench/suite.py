"""The distributed suite under benchmark: one process per service (or several replicas of one) on RabbitMQ and
PostgreSQL, fresh schemas, and the gateway in front of them.

The load goes to each service's own port, as an ingress routes by path; the development gateway would be one
more Python hop on the same two cores. With replicas the load goes through the gateway, which spreads it. The
subscribers catch up through the gateway (the events feed of every source at one URL), as deploy/run-distributed.sh
runs them. The catalogue is the seed one with a walk-in quota large enough for a waiting room of a thousand, and
the clock starts on the next working day at 09:30 so every branch is open.
"""
import os
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

from bench.common import AMQP_URL, PG_URL, free_ports, rabbit_vhost

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("availability", "booking", "queue", "notifications", "insights")
WEEKEND = {4, 5}  # Friday, Saturday


def next_working_morning(catalogue: dict, today: date) -> str:
    holidays = {h["date"] if isinstance(h["date"], date) else date.fromisoformat(h["date"])
                for h in catalogue.get("holidays", [])}
    day = today + timedelta(days=1)
    while day.weekday() in WEEKEND or day in holidays:
        day += timedelta(days=1)
    return f"{day.isoformat()}T09:30:00+03:00"


class Suite:
    def __init__(self, workdir: Path, walk_in_quota: int = 5000, replicas: dict | None = None,
                 now: str | None = None, extra_env: dict | None = None, capacity: int = 1):
        self.workdir = workdir
        self.prefix = f"bench{int(time.time())}_"
        self.vhost = f"mawaeed-{self.prefix.rstrip('_')}"
        catalogue = yaml.safe_load((ROOT / "services/availability/catalogue.yml").read_text(encoding="utf-8"))
        catalogue["queue"]["walk_ins_per_service"] = walk_in_quota
        for directorate in catalogue["directorates"]:  # `capacity` times the counters: room for a national day
            for branch in directorate["branches"]:
                for offered in branch["services"].values():
                    offered["counters"] *= capacity
                    offered["online"] *= capacity
        self.catalogue = catalogue
        self.catalogue_path = workdir / "catalogue.yml"
        self.catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
        self.now = now or next_working_morning(catalogue, datetime.now().date())
        self.replicas = {name: (replicas or {}).get(name, 1) for name in SERVICES}
        port, *others = free_ports(1 + sum(self.replicas.values()))  # the gateway's, then each process's
        ports = iter(others)
        self.replica_urls = {name: [f"http://127.0.0.1:{next(ports)}" for _ in range(self.replicas[name])]
                             for name in SERVICES}
        self.urls = {name: urls[0] for name, urls in self.replica_urls.items()}  # each service's first replica
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "AMQP_URI": f"{AMQP_URL.rstrip('/')}/{self.vhost}", "DATABASE_URL": PG_URL,
                    "DATABASE_SCHEMA_PREFIX": self.prefix,
                    "MAWAEED_NOW": self.now, "MAWAEED_CATALOGUE": str(self.catalogue_path),
                    "MAWAEED_DATA_DIR": str(workdir / "data"), "MAWAEED_FEED_URL": self.gateway_url,
                    "LOG_LEVEL": "WARNING", "MAWAEED_MAX_ACTIVE_BOOKINGS": "3",
                    # one development issuer for all (same key folder, same issuer URL); no abuse limits in a bench
                    "MAWAEED_PUBLIC_URL": self.gateway_url, "MAWAEED_RATE_LIMITS": "off", **(extra_env or {})}
        self.processes: dict[str, list[subprocess.Popen]] = {}

    def pids(self) -> dict[str, list[int]]:
        """The suite's processes by service (and the gateway's), for bench.cpu."""
        return {name: [p.pid for p in processes] for name, processes in self.processes.items()}

    def staff_token(self, branch: str = "npra-isa-town", *more: str) -> str:
        """A clerk's token for the queue section, signed by the suite's development issuer."""
        from shared.issuer import DevelopmentIssuer
        return DevelopmentIssuer(self.env["MAWAEED_DATA_DIR"], self.env["MAWAEED_PUBLIC_URL"]).issue(
            "clerk", branches=[branch, *more])

    def branches(self) -> dict[str, list[str]]:
        """Every branch of the catalogue with the services it offers."""
        return {b["id"]: sorted(b["services"]) for d in self.catalogue["directorates"] for b in d["branches"]}

    def schema(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def start(self, timeout: float = 90) -> None:
        rabbit_vhost(self.vhost)
        # The gateway first: every subscriber catches up from its sources' feeds through it at start.
        upstreams = {f"{name.upper()}_URL": ",".join(self.replica_urls.get(name, [])) for name in
                     ("availability", "booking", "queue", "notifications", "web", "insights")}
        self.spawn("gateway", ["gateway", "--listen", self.gateway_url.removeprefix("http://")],
                   {**self.env, **upstreams})
        for name in SERVICES:
            for url in self.replica_urls[name]:
                self.spawn(name, ["run", name], {**self.env, "WEB_SERVER_ADDRESS": url.removeprefix("http://")})
        deadline = time.monotonic() + timeout
        for name, urls in self.replica_urls.items():
            for url in urls:
                self.wait_healthy(name, url, deadline)
        self.wait_for_catalogue(deadline)

    def spawn(self, name: str, command: list[str], env: dict) -> None:
        log = open(self.workdir / f"{name}.log", "ab")
        self.processes.setdefault(name, []).append(subprocess.Popen(
            [sys.executable, "-m", "services.cli", *command], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT))

    def wait_healthy(self, name: str, url: str, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy; see {self.workdir / (name + '.log')}")
            time.sleep(0.3)

    def wait_for_catalogue(self, deadline: float) -> None:
        """Healthy is not ready: booking and queue learn the catalogue from availability's events."""
        engine = sa.create_engine(PG_URL)
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    head = conn.execute(sa.text(f'SELECT coalesce(max(position), 0) FROM "{self.schema("availability")}".events')).scalar()
                    applied = [conn.execute(sa.text(
                        f'SELECT coalesce(max(position), 0) FROM "{self.schema(s)}".processed_events WHERE consumer = :c'),
                        {"c": f"{s}.catalogue"}).scalar() for s in ("booking", "queue", "notifications", "insights")]
                if head and all(a == head for a in applied):
                    return
                time.sleep(0.3)
        except sa.exc.ProgrammingError:  # a schema not created yet
            time.sleep(0.3)
            return self.wait_for_catalogue(deadline)
        finally:
            engine.dispose()
        raise RuntimeError("the services did not learn the catalogue in time")

    def stop(self) -> None:
        everyone = [p for processes in self.processes.values() for p in processes]
        for process in everyone:
            process.terminate()
        for process in everyone:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            rabbit_vhost(self.vhost, create=False)
        except OSError as exc:
            print(f"could not delete the vhost {self.vhost}: {exc}", file=sys.stderr)
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            for service in SERVICES:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema(service)}" CASCADE'))
        engine.dispose()
