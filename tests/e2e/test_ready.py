"""Ready means ready: on a fresh start, the first booking and the first walk-in made as soon as /health answers 200
succeed (before readiness waited for the copies of the catalogue, they were refused UNKNOWN_BRANCH and
BRANCH_CLOSED). Each start is a fresh suite with empty databases, in both modes."""
import pytest
import requests

from tests.support.suite import Suite

HERE, PASSPORT = "npra-isa-town", "passport-renewal"
FRESH_STARTS = 2


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_the_first_booking_and_walk_in_after_health_succeed(mode, tmp_path):
    for start in range(FRESH_STARTS):
        suite = Suite(mode, tmp_path / f"start-{start}")
        suite.workdir.mkdir()
        try:
            suite.start()  # returns as soon as /health answers 200
            clerk = suite.as_("clerk", branches=[HERE])
            booked = requests.post(f"{suite.api}/bookings", timeout=10, json={
                "cpr": "900112345", "branch": HERE, "service": PASSPORT, "start": "2026-12-07T07:00:00+03:00",
                "name": "First Caller", "language": "en"})
            walk_in = requests.post(f"{suite.api}/branches/{HERE}/check-ins", headers=clerk, timeout=10, json={
                "walk_in": True, "cpr": "880512345", "service": PASSPORT})
            assert booked.status_code == 201, booked.text
            assert walk_in.status_code == 201, walk_in.text
        finally:
            suite.stop()
            suite.cleanup()


def test_liveness_needs_no_database_and_readiness_does(tmp_path):
    suite = Suite("embedded", tmp_path)
    try:
        suite.start()
        assert requests.get(f"{suite.base_url}/health/live", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{suite.base_url}/health/ready", timeout=5)
        assert ready.status_code == 200 and set(ready.json()["services"].values()) == {"ok"}
    finally:
        suite.stop()
        suite.cleanup()
