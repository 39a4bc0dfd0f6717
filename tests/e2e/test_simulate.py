"""`mawaeed simulate` fills a day at a branch through the public API: the suite starts the evening before at
600 times real time, simulate books, waits for the morning and lives through the day; the events feed then
holds what its summary said."""
import json
import subprocess
import sys

import pytest
import requests

from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

BRANCH, DAY = "npra-isa-town", "2026-12-07"
EVENING_BEFORE = "2026-12-06T21:00:00+03:00"
SPEED = 600


def simulate(suite: Suite, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "simulate", "--branch", BRANCH, "--date", DAY,
                           "--speed", str(SPEED), "--api", suite.base_url, "--seed", "7", "--scale", "0.3",
                           "--json", *extra], env=suite.env, capture_output=True, text=True, timeout=600)


def events(suite: Suite, service: str) -> list[dict]:
    found, after = [], 0
    while True:
        page = requests.get(f"{suite.api}/events", params={"service": service, "after": after, "limit": 1000},
                            headers=suite.reader(), timeout=10).json()
        found += page["events"]
        if len(page["events"]) < 1000:
            return found
        after = page["next_after"]


def count(found: list[dict], type_: str, **where) -> int:
    return sum(e["type"] == type_ and all(e["payload"].get(k) == v for k, v in where.items()) for e in found)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("simulate"), now=EVENING_BEFORE, speed=SPEED)) as suite:
        done = simulate(suite)
        assert done.returncode == 0, done.stderr
        yield suite, json.loads(done.stdout)


def test_the_feed_holds_what_the_summary_says(simulated):
    suite, summary = simulated
    queue, booking = events(suite, "queue"), events(suite, "booking")
    assert summary["served"] > 0 and summary["ratings"] > 0 and summary["day_closed"]
    assert count(booking, "booking.SlotBooked") == summary["booked"]
    assert count(booking, "booking.BookingCancelled") == summary["cancelled"]
    assert count(queue, "queue.CustomerCheckedIn") == sum(summary["checked_in"].values())
    assert count(queue, "queue.CustomerCheckedIn", kind="walk_in") == summary["checked_in"]["walk_in"]
    assert count(queue, "queue.TicketServed") == summary["served"]
    assert count(queue, "queue.TicketNoShow") == summary["no_shows"]
    assert count(queue, "queue.TicketRecalled") == summary["recalls"]
    assert count(queue, "queue.TicketTransferred") == summary["transfers"]
    assert count(queue, "queue.SatisfactionRated") == summary["ratings"]
    # who booked and never came (or came too late) is named at the day's close
    missed = count(queue, "queue.AppointmentMissed")
    assert missed == summary["never_came"] + summary["refused_check_ins"].get("TOO_LATE", 0)


def test_a_mistake_is_one_line_and_exit_2(simulated):
    suite, _ = simulated
    unknown = subprocess.run([sys.executable, "-m", "services.cli", "simulate", "--branch", "nowhere", "--date",
                              DAY, "--api", suite.base_url], env=suite.env, capture_output=True, text=True,
                             timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "nowhere" in unknown.stderr
    past = subprocess.run([sys.executable, "-m", "services.cli", "simulate", "--branch", BRANCH, "--date",
                           "2026-12-01", "--api", suite.base_url], env=suite.env, capture_output=True, text=True,
                          timeout=60)
    assert past.returncode == 2 and "past" in past.stderr, past.stderr
