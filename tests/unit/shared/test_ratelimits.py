"""Abuse limits (shared/ratelimits.py) on real storages: the process's memory and the local Redis."""
import time
import uuid

import pytest

from shared.ratelimits import DEFAULTS, Limits, RateLimited, client_address, table, trusted_networks


def spend(limits, action, times, **who):
    for _ in range(times):
        limits.hit(action, **who)


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379/0"])
def test_the_limit_refuses_with_retry_after_then_recovers(storage):
    limits = Limits("booking_address=3/second", storage)
    address = f"10.0.0.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    spend(limits, "booking", 3, address=address)
    with pytest.raises(RateLimited) as refusal:
        limits.hit("booking", address=address)
    error = refusal.value
    assert (error.status, error.code) == (429, "RATE_LIMITED")
    assert error.headers["Retry-After"] == "1" and error.headers["RateLimit-Limit"] == "3"
    limits.hit("booking", address=f"another-{address}")   # others are not held back
    time.sleep(1.1)
    limits.hit("booking", address=address)               # and it recovers


def test_per_person_and_guesses_count_ten_times():
    limits = Limits()
    spend(limits, "booking", 10, cpr="900112345")
    with pytest.raises(RateLimited):
        limits.hit("booking", cpr="900112345")
    for _ in range(6):   # six wrong guesses spend a minute's 60 reads
        limits.hit("read", cost=10, address="192.0.2.1")
    with pytest.raises(RateLimited):
        limits.hit("read", address="192.0.2.1")


def test_the_table_can_be_changed_or_turned_off():
    assert table(None) == DEFAULTS and table("booking_cpr=20/hour")["booking_cpr"] == "20/hour"
    assert table("off") is None
    off = Limits("off")
    spend(off, "booking", 1000, address="192.0.2.9", cpr="900112345")
    with pytest.raises(ValueError):
        table("bookings=3/second")
    with pytest.raises(ValueError):
        table("booking_cpr=many")


def test_the_client_address_comes_through_trusted_proxies_only():
    trusted = trusted_networks("127.0.0.1, 10.1.0.0/16")
    assert client_address("198.51.100.7", "203.0.113.5", trusted) == "198.51.100.7"   # not through a proxy
    assert client_address("127.0.0.1", "203.0.113.5", trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", "6.6.6.6, 203.0.113.5, 10.1.2.3", trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", None, trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.5", []) == "127.0.0.1"
