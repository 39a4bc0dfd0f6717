"""The booking journey over the public HTTP API, in both run modes."""
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from shared.schedule import slot_stream

pytestmark = pytest.mark.e2e

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"  # 3 places online per 20-minute slot


def cpr(n: int) -> str:
    return f"8805{n:05d}"


def booking(n: int, start: str, **overrides) -> dict:
    return {"cpr": cpr(n), "branch": BRANCH, "service": SERVICE, "start": start, "name": f"Person {n}",
            "language": "ar" if n % 2 else "en", "mobile": "+97333000000", **overrides}


def slot(suite, start: str, day: str | None = None) -> dict:
    answer = requests.get(f"{suite.api}/availability", timeout=5,
                          params={"branch": BRANCH, "service": SERVICE, "date": day or start[:10]}).json()
    return next(s for s in answer["slots"] if s["start"] == start)


def remaining_becomes(suite, start: str, expected: int, within: float = 1.0) -> float:
    """Seconds until the availability answer shows `expected` places left (fails after `within`)."""
    began = time.monotonic()
    while slot(suite, start)["remaining"] != expected:
        if time.monotonic() - began > within:
            raise AssertionError(f"remaining is {slot(suite, start)['remaining']}, not {expected}, after {within} s")
        time.sleep(0.02)
    return time.monotonic() - began


def events(suite, service: str = "booking") -> list[dict]:
    found, after = [], 0
    while True:
        page = requests.get(f"{suite.api}/events", params={"service": service, "after": after, "limit": 1000},
                            headers=suite.reader(), timeout=10).json()
        found += page["events"]
        if len(page["events"]) < 1000:
            return found
        after = page["next_after"]


def head(suite) -> int:
    return requests.get(f"{suite.api}/events", params={"service": "booking", "limit": 1}, headers=suite.reader(),
                        timeout=5).json()["head"]


def test_every_directorate_and_branch_has_arabic_and_english_names(suite):
    directorates = requests.get(f"{suite.api}/directorates", timeout=5).json()
    branches = requests.get(f"{suite.api}/branches", timeout=5).json()
    assert len(directorates) == 4 and len(branches) == 13
    for thing in directorates + branches:
        assert thing["name_en"] and any("\u0600" <= ch <= "\u06ff" for ch in thing["name_ar"])
    traffic = requests.get(f"{suite.api}/branches", params={"directorate": "traffic"}, timeout=5).json()
    assert {b["name_ar"] for b in traffic} >= {"فرع مجمع الدانة", "مدرسة السياقة", "مكتب النبيه صالح"}
    assert all(s["duration_minutes"] > 0 and s["name_ar"] for b in traffic for s in b["services"])


def test_a_working_day_has_slots_a_friday_and_a_holiday_have_none(suite):
    def day(date):
        return requests.get(f"{suite.api}/availability", timeout=5,
                            params={"branch": BRANCH, "service": SERVICE, "date": date}).json()
    monday = day("2026-12-07")
    assert len(monday["slots"]) == 21  # 07:00-14:00 in 20-minute slots
    assert monday["slots"][0] == {"start": "2026-12-07T07:00:00+03:00", "end": "2026-12-07T07:20:00+03:00",
                                  "capacity": 3, "remaining": 3, "bookable": True}
    assert day("2026-12-11")["slots"] == [] and day("2026-12-11")["closed"]["code"] == "CLOSED"  # Friday
    national_day = day("2026-12-16")
    assert national_day["slots"] == [] and national_day["closed"]["name_ar"] == "اليوم الوطني"


def test_book_read_reschedule_and_cancel(suite):
    start, later = "2026-12-08T09:00:00+03:00", "2026-12-08T09:20:00+03:00"
    created = requests.post(f"{suite.api}/bookings", json=booking(1, start), timeout=5)
    assert created.status_code == 201, created.text
    reference = created.json()["reference"]
    assert created.json()["status"] == "active" and created.json()["start"] == start
    assert remaining_becomes(suite, start, 2) < 1.0

    assert requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr(1)}, timeout=5).json()["start"] == start
    assert requests.get(f"{suite.api}/bookings/{reference}", headers={"X-CPR": cpr(2)}, timeout=5).status_code == 404
    in_url = requests.get(f"{suite.api}/bookings/{reference}", params={"cpr": cpr(1)}, timeout=5)
    assert in_url.status_code == 400 and in_url.json()["error"]["code"] == "CPR_IN_URL"  # URLs end up in logs
    again = requests.post(f"{suite.api}/bookings", json=booking(1, later), timeout=5)
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_BOOKED"

    moved = requests.post(f"{suite.api}/bookings/{reference}/reschedule", json={"cpr": cpr(1), "start": later},
                          timeout=5)
    assert moved.status_code == 200 and moved.json()["reference"] == reference and moved.json()["start"] == later
    remaining_becomes(suite, start, 3)
    remaining_becomes(suite, later, 2)

    for _ in range(2):  # cancelling twice is not an error
        cancelled = requests.post(f"{suite.api}/bookings/{reference}/cancel", json={"cpr": cpr(1)}, timeout=5)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    remaining_becomes(suite, later, 3)
    types = [e["type"] for e in events(suite) if e["payload"]["reference"] == reference]
    assert types == ["booking.SlotBooked", "booking.BookingRescheduled", "booking.BookingCancelled"]
    only = requests.get(f"{suite.api}/events", timeout=5, headers=suite.reader(), params={
        "service": "booking", "types": "booking.BookingCancelled,booking.BookingRescheduled", "limit": 1000}).json()
    assert {e["type"] for e in only["events"]} <= {"booking.BookingCancelled", "booking.BookingRescheduled"}
    assert [e["payload"]["reference"] for e in only["events"]].count(reference) == 2


def test_a_hundred_people_racing_for_three_places_get_exactly_three(suite):
    """A hundred at once is more than a service takes in flight: those it sheds (503 OVERLOADED) come back after
    the Retry-After it gives, as a client does, and still only three get a place."""
    start = "2026-12-09T10:00:00+03:00"

    def book(n):
        for _ in range(30):
            answer = requests.post(f"{suite.api}/bookings", json=booking(1000 + n, start), headers=suite.reader(),
                                   timeout=60)
            if answer.status_code != 503:
                return answer
            assert answer.json()["error"]["code"] == "OVERLOADED", answer.text
            time.sleep(float(answer.headers["Retry-After"]))
        return answer
    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(pool.map(book, range(100)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 97
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} <= {"SLOT_FULL", "BUSY"}
    stream = slot_stream(BRANCH, SERVICE, datetime.fromisoformat(start))
    booked = [e for e in events(suite) if e["stream_id"] == stream and e["type"] == "booking.SlotBooked"]
    assert len(booked) == 3
    assert sorted(e["payload"]["reference"] for e in booked) == \
        sorted(r.json()["reference"] for r in responses if r.status_code == 201)
    remaining_becomes(suite, start, 0)


@pytest.mark.parametrize("body, status, code", [
    ('{"cpr": "9001123', 400, "MALFORMED_JSON"),
    ('[1, 2]', 400, "MALFORMED_JSON"),
    ("", 400, "MALFORMED_JSON"),
])
def test_malformed_json_is_a_400(suite, body, status, code):
    before = head(suite)
    response = requests.post(f"{suite.api}/bookings", data=body, headers={"Content-Type": "application/json"},
                             timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert head(suite) == before


@pytest.mark.parametrize("change, status, code", [
    ({"cpr": "12345"}, 422, "INVALID_INPUT"),                      # too short
    ({"cpr": "901312345"}, 422, "INVALID_INPUT"),                  # month 13
    ({"cpr": 900112345}, 422, "INVALID_INPUT"),                    # a number, not a string
    ({"start": "2026-12-10T09:00:00"}, 422, "INVALID_INPUT"),      # no UTC offset
    ({"start": "tomorrow"}, 422, "INVALID_INPUT"),
    ({"language": "fr"}, 422, "INVALID_INPUT"),
    ({"name": ""}, 422, "INVALID_INPUT"),
    ({"email": "not-an-email"}, 422, "INVALID_INPUT"),
    ({"unexpected": 1}, 422, "INVALID_INPUT"),
    ({"branch": "atlantis"}, 404, "UNKNOWN_BRANCH"),
    ({"service": "dragon-licence"}, 404, "UNKNOWN_SERVICE"),
    ({"start": "2026-12-01T09:00:00+03:00"}, 409, "SLOT_IN_PAST"),
    ({"start": "2026-12-06T09:20:00+03:00"}, 409, "TOO_SOON"),
    ({"start": "2027-02-01T09:00:00+03:00"}, 409, "OUTSIDE_BOOKING_WINDOW"),
    ({"start": "2026-12-10T09:05:00+03:00"}, 409, "SLOT_UNAVAILABLE"),   # not the start of a slot
    ({"start": "2026-12-11T09:00:00+03:00"}, 409, "SLOT_UNAVAILABLE"),   # a Friday
    ({"start": "2026-12-16T09:00:00+03:00"}, 409, "SLOT_UNAVAILABLE"),   # National Day
])
def test_bad_input_gets_a_clear_error_and_writes_nothing(suite, change, status, code):
    before = head(suite)
    response = requests.post(f"{suite.api}/bookings", json={**booking(77, "2026-12-10T09:00:00+03:00"), **change},
                             timeout=5)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["message_ar"]
    assert head(suite) == before


def test_oversize_bodies_and_unknown_things(suite):
    big = requests.post(f"{suite.api}/bookings", json=booking(78, "2026-12-10T09:00:00+03:00", name="x" * 40000),
                        timeout=5)
    assert big.status_code == 413 and big.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert requests.get(f"{suite.api}/bookings/ZZZZ-ZZZZ", headers={"X-CPR": cpr(1)}, timeout=5).status_code == 404
    assert requests.get(f"{suite.api}/bookings/ZZZZ-ZZZZ", headers={"X-CPR": "1"}, timeout=5).status_code == 422
    assert requests.get(f"{suite.api}/availability", params={"branch": BRANCH}, timeout=5).status_code == 422
    assert requests.get(f"{suite.api}/availability", timeout=5, params={
        "branch": BRANCH, "service": SERVICE, "date": "2026-13-01"}).status_code == 422
    assert requests.get(f"{suite.api}/branches", params={"directorate": "nope"}, timeout=5).status_code == 404
    assert requests.get(f"{suite.api}/events", params={"service": "nope"}, headers=suite.reader(),
                        timeout=5).status_code == 404
    assert requests.get(f"{suite.api}/events", params={"service": "booking", "after": "x"},
                        headers=suite.reader(), timeout=5).status_code in (404, 422)
    assert requests.post(f"{suite.api}/bookings/ZZZZ-ZZZZ/cancel", data="{", timeout=5).status_code == 400


def test_rebuilding_availability_from_the_log_gives_the_live_answer(suite):
    start = "2026-12-14T08:00:00+03:00"
    references = [requests.post(f"{suite.api}/bookings", json=booking(300 + n, start), timeout=5).json()["reference"]
                  for n in range(2)]
    requests.post(f"{suite.api}/bookings/{references[0]}/cancel", json={"cpr": cpr(300)}, timeout=5)
    remaining_becomes(suite, start, 2)
    for projection in ("availability", "booking"):
        replay = suite.run_cli("replay", projection, "--api", suite.base_url)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "identical to the live one" in replay.stdout and "events/s" in replay.stdout


def test_a_killed_suite_loses_no_event(suite):
    start = "2026-12-15T10:00:00+03:00"
    created = requests.post(f"{suite.api}/bookings", json=booking(400, start), timeout=5)
    assert created.status_code == 201
    suite.stop(signal.SIGKILL)  # no chance to publish or to tidy up
    suite.start()
    remaining_becomes(suite, start, 2, within=10)
    assert [e["payload"]["reference"] for e in events(suite) if e["stream_id"] ==
            slot_stream(BRANCH, SERVICE, datetime.fromisoformat(start))] == [created.json()["reference"]]
    replay = suite.run_cli("replay", "availability", "--api", suite.base_url)
    assert replay.returncode == 0, replay.stdout + replay.stderr
