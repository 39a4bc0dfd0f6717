"""The distributed suite under benchmark: one process per service on RabbitMQ and PostgreSQL, fresh schemas.

The load goes to each service's own port, as an ingress routes by path; the development gateway would be one
more Python hop on the same two cores. The catalogue is the seed one with a walk-in quota large enough for a
waiting room of a thousand, and the clock starts on the next working day at 09:30 so every branch is open.
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

from bench.common import AMQP_URL, PG_URL

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("availability", "booking", "queue", "notifications")
WEEKEND = {4, 5}  # Friday, Saturday


def next_working_morning(catalogue: dict, today: date) -> str:
    holidays = {h["date"] if isinstance(h["date"], date) else date.fromisoformat(h["date"])
                for h in catalogue.get("holidays", [])}
    day = today + timedelta(days=1)
    while day.weekday() in WEEKEND or day in holidays:
        day += timedelta(days=1)
    return f"{day.isoformat()}T09:30:00+03:00"


class Suite:
    def __init__(self, workdir: Path, port: int = 8100, walk_in_quota: int = 5000):
        self.workdir = workdir
        self.prefix = f"bench{int(time.time())}_"
        catalogue = yaml.safe_load((ROOT / "services/availability/catalogue.yml").read_text(encoding="utf-8"))
        catalogue["queue"]["walk_ins_per_service"] = walk_in_quota
        self.catalogue_path = workdir / "catalogue.yml"
        self.catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
        self.now = next_working_morning(catalogue, datetime.now().date())
        self.urls = {name: f"http://127.0.0.1:{port + 1 + i}" for i, name in enumerate(SERVICES)}
        self.env = {**os.environ, "AMQP_URI": AMQP_URL, "DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": self.prefix,
                    "MAWAEED_NOW": self.now, "MAWAEED_CATALOGUE": str(self.catalogue_path),
                    "MAWAEED_DATA_DIR": str(workdir / "data"), "MAWAEED_FEED_URL": self.urls["booking"],
                    "LOG_LEVEL": "WARNING", "MAWAEED_MAX_ACTIVE_BOOKINGS": "3",
                    # one development issuer for all (same key folder, same issuer URL); no abuse limits in a bench
                    "MAWAEED_PUBLIC_URL": f"http://127.0.0.1:{port}", "MAWAEED_RATE_LIMITS": "off"}
        self.processes: list[subprocess.Popen] = []

    def staff_token(self, branch: str = "npra-isa-town") -> str:
        """A clerk's token for the queue section, signed by the suite's development issuer."""
        from shared.issuer import DevelopmentIssuer
        return DevelopmentIssuer(self.env["MAWAEED_DATA_DIR"], self.env["MAWAEED_PUBLIC_URL"]).issue(
            "clerk", branches=[branch])

    def schema(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def start(self, timeout: float = 90) -> None:
        # Each subscriber catches up from its source's feed; the feeds are on each service's own port.
        feeds = {"availability": self.urls["booking"], "booking": self.urls["availability"],
                 "queue": self.urls["booking"], "notifications": self.urls["booking"]}
        for name in SERVICES:
            env = {**self.env, "WEB_SERVER_ADDRESS": self.urls[name].removeprefix("http://"),
                   "MAWAEED_FEED_URL": feeds[name]}
            log = open(self.workdir / f"{name}.log", "ab")
            self.processes.append(subprocess.Popen([sys.executable, "-m", "services.cli", "run", name], cwd=ROOT,
                                                   env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        for name, url in self.urls.items():
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not become healthy; see {self.workdir / (name + '.log')}")
                time.sleep(0.3)
        self.wait_for_catalogue(deadline)

    def wait_for_catalogue(self, deadline: float) -> None:
        """Healthy is not ready: booking and queue learn the catalogue from availability's events."""
        engine = sa.create_engine(PG_URL)
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    head = conn.execute(sa.text(f'SELECT coalesce(max(position), 0) FROM "{self.schema("availability")}".events')).scalar()
                    applied = [conn.execute(sa.text(
                        f'SELECT coalesce(max(position), 0) FROM "{self.schema(s)}".processed_events WHERE consumer = :c'),
                        {"c": f"{s}.catalogue"}).scalar() for s in ("booking", "queue", "notifications")]
                if head and all(a == head for a in applied):
                    return
                time.sleep(0.3)
        except sa.exc.ProgrammingError:  # a schema not created yet
            time.sleep(0.3)
            return self.wait_for_catalogue(deadline)
        finally:
            engine.dispose()
        raise RuntimeError("the services did not learn the catalogue in time")

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in zip(SERVICES, self.processes)}

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            for service in SERVICES:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema(service)}" CASCADE'))
        engine.dispose()
