"""What every bench section shares: where PostgreSQL and RabbitMQ are, percentiles, and the JSON hand-off."""
import json
import os
import statistics
import sys

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("BENCH_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672//")


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
