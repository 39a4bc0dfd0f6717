"""The example subscriber (examples/subscriber/subscriber.py) against the distributed suite, as its own process:
catch-up from the feed, then live from its queue, a restart that misses nothing and repeats nothing, the dead-letter
queue, and a replay from a position."""
import ast
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from kombu import Connection, Queue

from tests.support.suite import SERVICES_SECRET, Suite

pytestmark = pytest.mark.e2e

SUBSCRIBER = Path(__file__).resolve().parents[2] / "examples" / "subscriber" / "subscriber.py"
NAME = "moi-analytics"
TYPES = ("booking.SlotBooked", "booking.BookingCancelled")
OFFERS = [("npra-isa-town", "passport-renewal"), ("npra-security-complex", "passport-renewal"),
          ("cid-security-complex", "good-conduct"), ("traffic-main-building", "licence-renewal")]
DAYS = ["2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"]  # Monday to Thursday after the suite's Sunday
FIRST, LIVE, WHILE_DOWN = 300, 30, 20


class Subscriber:
    """The example run as another team would run it: its own process, isolated from this project's code."""

    def __init__(self, suite: Suite, state: Path, *extra: str):
        command = [sys.executable, "-I", str(SUBSCRIBER), "--amqp-uri", suite.env["AMQP_URI"],
                   "--feed-url", suite.base_url, "--name", NAME, "--source", "booking", "--types", *TYPES,
                   "--state", str(state), "--token-url", f"{suite.issuer.url}/token",
                   "--client-id", "example-subscriber", "--client-secret", SERVICES_SECRET, *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        cwd=state.parent)
        self.raw, self.lines, self.errors = [], [], []
        self.readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.raw), daemon=True),
                        threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True)]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list) -> None:
        for line in stream:
            into.append(line)

    def printed(self) -> list[dict]:
        return [json.loads(line) for line in list(self.raw)]

    def wait_for(self, what: str, condition, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the subscriber exited ({self.process.returncode}):\n{''.join(self.errors)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {within} s; printed {len(self.raw)} lines; "
                                     f"stderr:\n{''.join(self.errors)}")
            time.sleep(0.05)

    def wait_printed(self, count: int, within: float = 30) -> list[dict]:
        self.wait_for(f"{count} events", lambda: len(self.raw) >= count, within)
        return self.printed()

    def caught_up(self) -> bool:
        return any("caught up to position" in line for line in self.errors)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.errors)

    def stop(self) -> dict:
        """SIGTERM; it must stop cleanly and say what it did."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=15) == 0, "".join(self.errors)
        for reader in self.readers:
            reader.join(timeout=5)
        summary = re.search(r"stopped at position (\d+): handled (\d+), skipped (\d+) duplicates, "
                            r"dead-lettered (\d+)", "".join(self.errors))
        assert summary, "".join(self.errors)
        return dict(zip(("position", "handled", "duplicates", "dead_lettered"), map(int, summary.groups())))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until_booking_knows_every_offer(suite: Suite, within: float = 20) -> None:
    """The suite is ready when booking knows npra-isa-town; the other branches reach it a moment later."""
    deadline = time.monotonic() + within
    for branch, service in OFFERS:
        probe = {"cpr": "900112345", "branch": branch, "service": service, "name": "Probe", "language": "en",
                 "start": "2026-12-01T07:00:00+03:00"}
        while requests.post(f"{suite.api}/bookings", json=probe, timeout=5).json()["error"]["code"] != "SLOT_IN_PAST":
            assert time.monotonic() < deadline, f"booking does not know {branch} {service}"
            time.sleep(0.1)


def free_places(suite: Suite) -> list[tuple[str, str, str]]:
    """Every bookable place of a few branches and services over four days, in a fixed random order."""
    places = []
    for branch, service in OFFERS:
        for day in DAYS:
            answer = requests.get(f"{suite.api}/availability", params={"branch": branch, "service": service,
                                                                      "date": day}, timeout=10).json()
            places += [(branch, service, s["start"]) for s in answer["slots"] if s["bookable"]
                       for _ in range(s["remaining"])]
    random.Random(5).shuffle(places)
    return places


def feed(suite: Suite) -> list[dict]:
    found, after = [], 0
    while True:
        page = requests.get(f"{suite.api}/events", params={"service": "booking", "after": after, "limit": 1000},
                            headers=suite.as_("subscriber", scope="events:booking events:personal"), timeout=10).json()
        found += page["events"]
        if len(page["events"]) < 1000:
            return found
        after = page["next_after"]


def check_stream(lines: list[dict]) -> None:
    """Each event once, in position order, and nothing about the person."""
    assert len({line["event_id"] for line in lines}) == len(lines)
    positions = [line["position"] for line in lines]
    assert positions == sorted(set(positions))
    for line in lines:
        assert set(line) == {"event_id", "type", "version", "position", "reference", "origin"}
        assert line["type"] in TYPES and line["reference"]


def test_the_example_is_standalone():
    """Another team copies one file: it imports only kombu and the standard library."""
    tree = ast.parse(SUBSCRIBER.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"kombu"}


def test_the_example_subscriber_catches_up_goes_live_and_resumes_without_gap_or_duplicate(tmp_path):
    suite = Suite("distributed", tmp_path)
    running: list[Subscriber] = []
    try:
        suite.start()
        wait_until_booking_knows_every_offer(suite)
        places = iter(free_places(suite))
        people = iter(range(10_000))

        def book(n: int, place) -> str:
            branch, service, start = place
            body = {"cpr": f"8805{n:05d}", "branch": branch, "service": service, "start": start,
                    "name": f"Person {n}", "language": "ar" if n % 2 else "en", "mobile": "+97333000000"}
            for _ in range(3):
                response = requests.post(f"{suite.api}/bookings", json=body, timeout=30)
                if response.status_code != 409 or response.json()["error"]["code"] != "BUSY":
                    break
            assert response.status_code == 201, response.text
            return response.json()["reference"]

        def book_many(count: int) -> list[str]:
            work = [(next(people), next(places)) for _ in range(count)]
            with ThreadPoolExecutor(max_workers=20) as pool:
                return list(pool.map(lambda w: book(*w), work))

        def start(*extra: str) -> Subscriber:
            running.append(Subscriber(suite, state, *extra))
            return running[-1]

        # Bookings made before the subscriber ever existed: it finds them in the feed.
        first = book_many(FIRST)
        state = tmp_path / f"{NAME}.json"
        subscriber = start("--from-position", "0")
        lines = subscriber.wait_printed(FIRST)
        subscriber.wait_for("catch-up", subscriber.caught_up)
        assert {line["origin"] for line in lines} == {"feed"}

        # Bookings made while it listens arrive live from its queue.
        live = book_many(LIVE)
        lines = subscriber.wait_printed(FIRST + LIVE)
        check_stream(lines)
        assert sorted(line["reference"] for line in lines[:FIRST]) == sorted(first)
        assert sorted(line["reference"] for line in lines[FIRST:]) == sorted(live)
        assert {line["origin"] for line in lines if line["reference"] in set(live)} == {"live"}
        booked = [e for e in feed(suite) if e["type"] == "booking.SlotBooked"]
        assert len(lines) == len(booked) == FIRST + LIVE
        assert [line["event_id"] for line in lines] == [e["event_id"] for e in booked]
        personal = [f'"8805{n:05d}"' for n in range(FIRST + LIVE)] + ["+97333000000", '"person"']
        assert not [text for line in subscriber.raw for text in personal if text in line]  # nothing about people
        stopped = subscriber.stop()
        assert stopped["position"] == lines[-1]["position"] and stopped["dead_lettered"] == 0

        # Bookings made while it is down wait in its queue and in the feed: each is handled once.
        down = book_many(WHILE_DOWN)
        subscriber = start()
        again = subscriber.wait_printed(WHILE_DOWN)
        subscriber.wait_for("catch-up", subscriber.caught_up)
        assert sorted(line["reference"] for line in again) == sorted(down)
        assert again[0]["position"] > lines[-1]["position"]

        # A message nobody can read goes to the dead-letter queue, and the stream goes on.
        with Connection(suite.env["AMQP_URI"]) as connection:
            connection.Producer().publish(b"not an event", exchange="", routing_key=NAME, delivery_mode=2)
        subscriber.wait_for("dead letter", lambda: subscriber.said("dead-lettered a message nobody can read"))
        last = book_many(1)
        again = subscriber.wait_printed(WHILE_DOWN + 1)
        assert again[-1]["reference"] == last[0] and again[-1]["origin"] == "live"
        check_stream(lines + again)
        time.sleep(0.5)  # nothing more comes
        assert len(subscriber.raw) == WHILE_DOWN + 1
        stopped = subscriber.stop()
        # Its queue held the WHILE_DOWN events as well: the feed handled them, the queue's copies were skipped.
        assert stopped == {"position": again[-1]["position"], "handled": WHILE_DOWN + 1,
                           "duplicates": WHILE_DOWN, "dead_lettered": 1}
        with Connection(suite.env["AMQP_URI"]) as connection:
            parked = Queue(f"{NAME}.dead-letter", durable=True)(connection.default_channel).get(no_ack=True)
        assert parked.body == b"not an event" and parked.headers["x-death"][0]["queue"] == NAME

        # A replay from a position handles every event after it again, from the feed, then goes live.
        everything = lines + again
        middle = everything[FIRST // 2]["position"]
        subscriber = start("--from-position", str(middle))
        expected = [line["event_id"] for line in everything if line["position"] > middle]
        replayed = subscriber.wait_printed(len(expected))
        subscriber.wait_for("catch-up", subscriber.caught_up)
        time.sleep(0.3)
        assert [line["event_id"] for line in subscriber.printed()] == expected
        assert subscriber.stop()["position"] == everything[-1]["position"]
        assert {line["origin"] for line in replayed} == {"feed"}
    finally:
        for subscriber in running:
            subscriber.kill()
        suite.stop()
        suite.cleanup()
