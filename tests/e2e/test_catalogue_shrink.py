"""The catalogue shrinks under a booking, end to end in both modes: a service taken out of a branch in the
catalogue file is withdrawn when availability next reads the file, the booking of it that has not started is
cancelled once with the reason and its person told (a cancellation notice planned), the service is no longer
offered, and starting again (availability reads the file again; every subscriber catches up again) cancels
nothing more."""
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from services.availability import catalogue_file
from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

BRANCH, GOING, STAYING = "npra-isa-town", "residence-permit", "passport-renewal"
TOMORROW = "2026-12-07"
SEED = Path(catalogue_file.__file__).with_name("catalogue.yml")
OFFERED = "residence-permit: {counters: 2, online: 2}"


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def shrinking(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"shrink-{request.param}")
    catalogue = workdir / "catalogue.yml"
    shutil.copy(SEED, catalogue)
    suite = Suite(request.param, workdir)
    suite.env["MAWAEED_CATALOGUE"] = str(catalogue)
    with running(suite) as started:
        yield started, catalogue


def booked(suite, service: str) -> dict:
    slots = requests.get(f"{suite.api}/availability", params={"branch": BRANCH, "service": service,
                                                              "date": TOMORROW}, timeout=10).json()["slots"]
    cpr = f"9003{uuid.uuid4().int % 100000:05d}"
    answer = requests.post(f"{suite.api}/bookings", timeout=10, json={
        "cpr": cpr, "branch": BRANCH, "service": service, "start": slots[0]["start"], "name": "Shrink Test",
        "language": "ar", "email": "shrink@example.org"})
    assert answer.status_code == 201, answer.text
    return {"reference": answer.json()["reference"], "cpr": cpr}


def booking(suite, who: dict) -> dict:
    return requests.get(f"{suite.api}/bookings/{who['reference']}", headers={"X-CPR": who["cpr"]},
                        timeout=10).json()


def cancellations(suite, reference: str) -> int:
    events, after = [], 0
    while True:
        page = requests.get(f"{suite.api}/events", params={"service": "booking", "after": after, "limit": 1000,
                                                           "types": "booking.BookingCancelled"},
                            headers=suite.reader(), timeout=10).json()
        events += page["events"]
        if page["next_after"] == after:
            return sum(1 for e in events if e["payload"].get("reference") == reference)
        after = page["next_after"]


def eventually(check, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.2)
    return found


def test_a_withdrawn_service_cancels_its_bookings_once_and_says_why(shrinking):
    suite, catalogue = shrinking
    going, staying = booked(suite, GOING), booked(suite, STAYING)
    text = catalogue.read_text()
    assert text.count(OFFERED) >= 1
    line = next(n for n, row in enumerate(text.splitlines()) if BRANCH in row)   # only this branch's offer
    rows = text.splitlines()
    offers = next(n for n in range(line, line + 4) if OFFERED in rows[n])
    rows[offers] = rows[offers].replace(", " + OFFERED, "")
    catalogue.write_text("\n".join(rows) + "\n")

    suite.restart()  # availability reads the file at start and withdraws the service
    gone = eventually(lambda: (b := booking(suite, going))["status"] == "cancelled" and b)
    assert gone["service"] == GOING
    assert booking(suite, staying)["status"] != "cancelled"  # another service of the branch is untouched
    assert requests.get(f"{suite.api}/availability", params={"branch": BRANCH, "service": GOING, "date": TOMORROW},
                        timeout=10).status_code == 404
    branch = next(b for b in requests.get(f"{suite.api}/branches", timeout=10).json() if b["id"] == BRANCH)
    assert GOING not in [s["id"] for s in branch["services"]]
    eventually(lambda: any(m["kind"] == "cancellation" for m in requests.get(
        f"{suite.api}/notifications", params={"reference": going["reference"]}, headers={"X-CPR": going["cpr"]},
        timeout=10).json()["messages"]))
    cancelled = [e for e in _booking_events(suite) if e["type"] == "booking.BookingCancelled"
                 and e["payload"]["reference"] == going["reference"]]
    assert [e["payload"]["reason"] for e in cancelled] == ["service_withdrawn"]

    suite.restart()  # the file read again, every subscriber catching up again: nothing more is cancelled
    time.sleep(2)
    assert cancellations(suite, going["reference"]) == 1
    assert cancellations(suite, staying["reference"]) == 0


def _booking_events(suite) -> list[dict]:
    return requests.get(f"{suite.api}/events", params={"service": "booking", "limit": 1000},
                        headers=suite.reader(), timeout=10).json()["events"]
