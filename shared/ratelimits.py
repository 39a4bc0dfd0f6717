"""Abuse limits: how often one client address, and one person (CPR), may book, read, change, check in or rate.

Built on the `limits` library with moving windows: in the process's memory in the embedded mode, in Redis
(MAWAEED_REDIS_URL) when several processes must share the counts. A refusal is 429 `RATE_LIMITED` with
`Retry-After` and the `RateLimit-*` headers, raised before anything is written. A reference and CPR that do not
match count ten times: that is how references are guessed. Staff and device tokens are not limited by address
(a centre's kiosks and counters share one). MAWAEED_RATE_LIMITS overrides entries of the table
(`booking_address=60/minute,booking_cpr=20/hour`) or turns the limits `off` (benches and bulk tests).
"""
import ipaddress
import math
import time
from contextlib import contextmanager

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.errors import DomainError, NotFound

DEFAULTS = {
    "booking_address": "30/minute", "booking_cpr": "10/hour",
    "read_address": "60/minute", "read_cpr": "60/hour",
    "change_address": "30/minute", "change_cpr": "20/hour",     # cancel and reschedule
    "check_in_address": "60/minute", "check_in_cpr": "20/hour",
    "feedback_address": "30/minute",
}
GUESS_COST = 10  # a reference and CPR that do not match


class RateLimited(DomainError):
    status, code = 429, "RATE_LIMITED"


def table(setting: str | None) -> dict | None:
    """The limits in force: the defaults with MAWAEED_RATE_LIMITS's overrides; None when it says `off`."""
    setting = (setting or "").strip()
    if setting.lower() == "off":
        return None
    found = dict(DEFAULTS)
    for entry in filter(None, (e.strip() for e in setting.split(","))):
        name, _, value = entry.partition("=")
        if name.strip() not in DEFAULTS:
            raise ValueError(f"MAWAEED_RATE_LIMITS: unknown limit {name.strip()!r}; known: {', '.join(DEFAULTS)}")
        parse(value.strip())  # a malformed value fails at start, not on the first request
        found[name.strip()] = value.strip()
    return found


class Limits:
    def __init__(self, setting: str | None = None, storage_url: str | None = None):
        limits = table(setting)
        self.items = {name: parse(value) for name, value in limits.items()} if limits is not None else None
        # also with the limits off: `once` (a challenge answered once) still needs a memory of what it saw
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_url or "memory://"))

    @property
    def on(self) -> bool:
        return self.items is not None

    def count(self, action: str, caller, cpr: str | None = None, cost: int = 1) -> None:
        """A request of `caller` (shared/auth.py Caller): its address counts unless staff or a device sent it."""
        self.hit(action, cost, address=caller.address if caller.limited_by_address else None, cpr=cpr)

    @contextmanager
    def guessing(self, action: str, caller, cpr: str | None):
        """Count a request that names a reference and a CPR; if they turn out not to match (404), it counts
        GUESS_COST times in all."""
        self.count(action, caller, cpr)
        try:
            yield
        except NotFound:
            self.count(action, caller, cpr, GUESS_COST - 1)
            raise

    def once(self, what: str, key: str, seconds: int) -> bool:
        """True the first time `key` is seen within `seconds` (a challenge solution is good for one booking)."""
        return self.limiter.hit(parse(f"1 per {seconds} seconds"), "once", what, key)

    def hit(self, action: str, cost: int = 1, *, address: str | None = None, cpr: str | None = None) -> None:
        """Count `cost` against the address's and the person's limits of `action`; 429 when one is spent."""
        if self.items is None:
            return
        for kind, who in (("address", address), ("cpr", cpr)):
            item = self.items.get(f"{action}_{kind}")
            if item is None or not who:
                continue
            if not self.limiter.hit(item, action, kind, who, cost=cost):
                stats = self.limiter.get_window_stats(item, action, kind, who)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                error = RateLimited(f"Too many requests; try again in {retry} seconds.",
                                    message_ar=f"طلبات كثيرة جدًا، يرجى المحاولة بعد {retry} ثانية.")
                error.headers = {"Retry-After": str(retry), "RateLimit-Limit": str(item.amount),
                                 "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry)}
                raise error


def trusted_networks(setting: str | None) -> list:
    """MAWAEED_TRUSTED_PROXIES: addresses or networks, comma-separated."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in (setting or "").split(",") if entry.strip()]


def client_address(peer: str | None, forwarded_for: str | None, trusted: list) -> str | None:
    """Who is really calling: the peer, unless the peer is a trusted proxy; then the rightmost address of
    X-Forwarded-For that is not itself a trusted proxy (what is left of it was written by the client, who may
    write anything)."""
    def is_trusted(address: str) -> bool:
        try:
            return any(ipaddress.ip_address(address) in network for network in trusted)
        except ValueError:
            return False

    if not peer or not is_trusted(peer) or not forwarded_for:
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop):
            return hop
    return peer
