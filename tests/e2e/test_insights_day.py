"""The insights of a simulated day agree with the raw events: `mawaeed simulate` fills a day at a branch (the
suite started the evening before at 600 times real time), the figures are computed here again, independently,
from the events feed, and compared with GET /api/v1/insights; `mawaeed replay insights` finds the projection
identical to its log."""
import json
import math
import statistics

import pytest
import requests

from tests.e2e.test_simulate import BRANCH, DAY, EVENING_BEFORE, SPEED, events, simulate
from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

TARGET = {"appointment": 10, "walk_in": 30}  # minutes: the default service levels


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def expected(queue: list[dict], booking: list[dict]) -> dict:
    """The day's figures from the raw events, as an analyst would compute them."""
    of = lambda type_: [e["payload"] for e in queue if e["type"] == type_]  # noqa: E731
    kinds = {p["ticket_id"]: p["kind"] for p in of("queue.CustomerCheckedIn")}
    waits = {"appointment": [], "walk_in": []}
    for p in of("queue.TicketServed"):
        waits[kinds[p["ticket_id"]]].append(p["wait_seconds"] / 60)
    called = {p["ticket_id"] for p in of("queue.TicketCalled")}
    scores = [p["score"] for p in of("queue.SatisfactionRated")]
    checked_in = of("queue.CustomerCheckedIn")
    figures = {
        "served": len(of("queue.TicketServed")),
        "bookings_made": sum(e["type"] == "booking.SlotBooked" for e in booking),
        "bookings_cancelled": sum(e["type"] == "booking.BookingCancelled" for e in booking),
        "no_show_rate": len(of("queue.TicketNoShow")) / len(called),
        "check_ins": {
            "appointment_on_time": sum(p["kind"] == "appointment" and p["on_time"] for p in checked_in),
            "appointment_late": sum(p["kind"] == "appointment" and not p["on_time"] for p in checked_in),
            "walk_in": sum(p["kind"] == "walk_in" for p in checked_in)},
        "wait_minutes": {}, "service_level": {},
        "satisfaction": {"mean": statistics.mean(scores),
                         "distribution": {str(s): scores.count(s) for s in range(1, 6)}},
    }
    for kind, values in waits.items():
        figures["wait_minutes"][kind] = {"mean": statistics.mean(values), "median": statistics.median(values),
                                         "p90": nearest_rank(values, 90)}
        figures["service_level"][kind] = sum(w <= TARGET[kind] for w in values) / len(values)
    return figures


def agree(expected_value, actual, path="figures") -> None:
    """Every number of `expected_value` within rounding (2 decimals) of `actual`."""
    if isinstance(expected_value, dict):
        for key, value in expected_value.items():
            assert key in actual, f"{path}.{key} missing from {actual}"
            agree(value, actual[key], f"{path}.{key}")
    else:
        assert actual is not None and abs(actual - expected_value) <= 0.011, \
            f"{path}: the events give {expected_value}, insights {actual}"


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("insights-day"), now=EVENING_BEFORE,
                       speed=SPEED)) as suite:
        done = simulate(suite)
        assert done.returncode == 0, done.stderr
        yield suite, json.loads(done.stdout)


def test_the_insights_of_the_day_agree_with_the_events(day):
    suite, summary = day
    assert summary["served"] > 0 and summary["day_closed"]
    figures = expected(events(suite, "queue"), events(suite, "booking"))
    answer = requests.get(f"{suite.api}/insights", params={"branch": BRANCH, "from": DAY, "to": DAY, "by": "day"},
                          headers=suite.as_("analyst"), timeout=30)
    assert answer.status_code == 200, answer.text
    insights = answer.json()
    assert insights["scope"] == {"branch": BRANCH} and [p["period"] for p in insights["periods"]] == [DAY]
    agree(figures, insights["periods"][0]["figures"])
    agree(figures, insights["total"]["figures"])


def test_the_insights_replay_to_identical(day):
    suite, _ = day
    replayed = suite.run_cli("replay", "insights", "--api", suite.base_url)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "identical" in replayed.stdout and "differ" not in replayed.stdout, replayed.stdout
