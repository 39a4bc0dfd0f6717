"""Integration fixtures: the services in nameko runners on the real local RabbitMQ (a fresh vhost per test,
from nameko's rabbit_config fixture) and PostgreSQL (fresh schemas per test)."""
import time
from datetime import datetime

import pytest

from shared.clock import UTC, clock
from shared.config import nameko_config

from tests.conftest import PG_URL
from tests.support.net import free_port

pytestmark = pytest.mark.integration

SUNDAY_NINE = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)  # 09:00 in Bahrain


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture
def config(rabbit_config, schema_prefix, tmp_path):
    """Tests list it before runner_factory, so the runners stop before the schemas are dropped."""
    clock.travel_to(SUNDAY_NINE)
    address = f"127.0.0.1:{free_port()}"
    settings = nameko_config({
        "AMQP_URI": rabbit_config["AMQP_URI"], "DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": schema_prefix,
        "WEB_SERVER_ADDRESS": address, "MAWAEED_DATA_DIR": str(tmp_path / "var"), "MAWAEED_RATE_LIMITS": "off",
        "MAWAEED_PUBLIC_URL": f"http://{address}",
    })
    settings["base_url"] = f"http://{address}"
    return settings
