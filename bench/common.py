"""What every bench section shares: where PostgreSQL and RabbitMQ are, percentiles, and the JSON hand-off."""
import base64
import json
import os
import socket
import subprocess
import statistics
import sys
import time
import urllib.error
import urllib.request

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("BENCH_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672//")
RABBIT_API = os.environ.get("BENCH_RABBIT_API", "http://127.0.0.1:15672/api")  # the management API: vhosts


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nothing listens on now: each held until all are chosen, so no two are one."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def rabbit_vhost(name: str, create: bool = True) -> None:
    """Create (with the guest user's permissions) or delete a RabbitMQ vhost: a suite of its own shares no queue
    with another run on the same broker (the subscriptions' queues have fixed names and one active consumer).
    Through the management API, else rabbitmqctl when the plugin is not answering."""
    auth = "Basic " + base64.b64encode(b"guest:guest").decode()
    calls = [("PUT", f"vhosts/{name}", None),
             ("PUT", f"permissions/{name}/guest", {"configure": ".*", "write": ".*", "read": ".*"})] if create \
        else [("DELETE", f"vhosts/{name}", None)]
    try:
        for method, path, body in calls:
            request = urllib.request.Request(f"{RABBIT_API}/{path}", method=method,
                                             data=json.dumps(body).encode() if body else None,
                                             headers={"Authorization": auth, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10):
                pass
    except urllib.error.URLError:
        commands = [["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]] if create \
            else [["delete_vhost", name]]
        for command in commands:
            subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True, timeout=60)


def percentiles_ms(seconds: list[float]) -> dict:
    """p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(seconds)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50_ms": round(cut[49] * 1000, 2), "p95_ms": round(cut[94] * 1000, 2),
            "p99_ms": round(cut[98] * 1000, 2), "max_ms": round(ordered[-1] * 1000, 2)}


def emit(result: dict) -> None:
    """The section's result: one JSON line, the last one on stdout."""
    sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def cpr(n: int) -> str:
    """A distinct, well-formed CPR per booking (YYMM then five digits): every client is a different person."""
    return f"{80 + n // 1_200_000:02d}{n % 12 + 1:02d}{n // 12 % 100_000:05d}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Progress:
    """One line on stderr, rewritten at most ten times a second."""

    def __init__(self, label: str, total: int | None = None):
        self.label, self.total, self.done, self.shown = label, total, 0, 0.0
        self.started = time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.shown > 0.1 or self.done == self.total:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            of = f"/{self.total}" if self.total else ""
            sys.stderr.write(f"\r  {self.label}: {self.done}{of} ({rate:,.0f}/s)   ")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
