"""The suite's clock.

`MAWAEED_NOW` starts the clock at that instant, after which it runs on: demos, tests and what-if replays need
a fixed starting point. `MAWAEED_CLOCK_SPEED` (default 1) makes simulated time run faster than real time, so
that a simulated day at a branch fits in minutes. Production sets neither. Every "now" in the suite comes from here.
"""
import os
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
LOCAL = ZoneInfo("Asia/Bahrain")  # UTC+3, no daylight saving


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with an offset; a naive value is refused rather than guessed."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value.astimezone(UTC)


class Clock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0):
        self.speed = speed
        self._real_origin = time.time()
        self._origin = self._real_origin
        if start is not None:
            self.travel_to(start)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._origin + (time.time() - self._real_origin) * self.speed, UTC)

    def travel_to(self, instant: datetime) -> None:
        self._real_origin, self._origin = time.time(), instant.timestamp()

    def advance(self, delta: timedelta) -> None:
        self._origin += delta.total_seconds()


def _from_env() -> Clock:
    start = os.environ.get("MAWAEED_NOW")
    return Clock(parse_instant(start) if start else None, float(os.environ.get("MAWAEED_CLOCK_SPEED", "1")))


clock = _from_env()


def to_db(instant: datetime | None) -> datetime | None:
    """Instants are stored as naive UTC: SQLite keeps no offset, and one convention serves both databases."""
    return instant.astimezone(UTC).replace(tzinfo=None) if instant else None


def from_db(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value else None
