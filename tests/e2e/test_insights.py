"""Insights learns the whole past from the logs, in both run modes: the suite books on Sunday and serves a visit
on Monday, then restarts with a fresh insights database (as on the day insights is first deployed): once it is
ready, Monday's figures are there, caught up from the events feeds, `mawaeed replay insights` finds its rows
identical to the logs', and only the callers whose roles reach a scope read it."""
import time

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import PG_URL
from tests.support.suite import Suite

pytestmark = pytest.mark.e2e

BRANCH, OTHER_BRANCH, SERVICE = "npra-isa-town", "traffic-dana-mall", "passport-renewal"
SUNDAY = "2026-12-06T10:00:00+03:00"
MONDAY = "2026-12-07T08:50:00+03:00"
LATER = "2026-12-07T11:00:00+03:00"
FATIMA, ALI, WALK_IN = "900112345", "880412345", "900600001"


def poll(step, until, within: float = 15, pause: float = 0.1) -> requests.Response:
    deadline = time.monotonic() + within
    while True:
        response = step()
        if until(response) or time.monotonic() > deadline:
            return response
        time.sleep(pause)


def book(suite: Suite, cpr: str, start: str) -> str:
    # the catalogue may reach booking a moment after readiness (409 SLOT_UNAVAILABLE, nothing written): retried
    booked = poll(lambda: requests.post(f"{suite.api}/bookings", timeout=10, json={
        "cpr": cpr, "branch": BRANCH, "service": SERVICE, "start": start, "name": "Person", "language": "ar"}),
        lambda r: r.status_code != 409)
    assert booked.status_code == 201, booked.text
    return booked.json()["reference"]


def forget_insights(suite: Suite) -> None:
    """Insights' database gone, as before it was first deployed (the suite is stopped)."""
    if suite.mode == "embedded":
        for path in (suite.workdir / "var").glob("insights.sqlite3*"):
            path.unlink()
    else:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{suite.schema_prefix}insights" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    suite = Suite(request.param, tmp_path_factory.mktemp(f"insights-{request.param}"), now=SUNDAY)
    try:
        suite.start()
        kept = book(suite, FATIMA, "2026-12-07T09:00:00+03:00")
        cancelled = book(suite, ALI, "2026-12-07T09:20:00+03:00")
        gone = requests.post(f"{suite.api}/bookings/{cancelled}/cancel", json={"cpr": ALI}, timeout=10)
        assert gone.status_code == 200, gone.text
        staff = suite.as_("directorate_admin", directorates=["npra"])
        # the queue learns the booking by event: on Sunday its check-in is refused as too early once it has
        poll(lambda: requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=staff, timeout=10,
                                   json={"reference": kept, "cpr": FATIMA}), lambda r: r.status_code != 404)
        suite.restart(now=MONDAY)
        opened = requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/open", headers=staff, timeout=10,
                               json={"services": [SERVICE]})
        assert opened.status_code == 200, opened.text
        checked_in = requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=staff, timeout=10,
                                   json={"reference": kept, "cpr": FATIMA})
        assert checked_in.status_code == 201, checked_in.text
        walk_in = requests.post(f"{suite.api}/branches/{BRANCH}/check-ins", headers=staff, timeout=10,
                                json={"walk_in": True, "cpr": WALK_IN, "service": SERVICE, "priority": "elderly"})
        assert walk_in.status_code == 201, walk_in.text
        called = requests.post(f"{suite.api}/branches/{BRANCH}/counters/5/call-next", headers=staff, timeout=10)
        assert called.status_code == 200, called.text
        served = requests.post(f"{suite.api}/tickets/{called.json()['ticket']['id']}/served", headers=staff,
                               timeout=10)
        assert served.status_code == 200, served.text
        suite.stop()
        forget_insights(suite)
        suite.restart(now=LATER)
        yield suite
    finally:
        suite.stop()
        suite.cleanup()


def insights(suite: Suite, headers: dict | None, **query) -> requests.Response:
    return requests.get(f"{suite.api}/insights", params={"from": "2026-12-06", "to": "2026-12-07", **query},
                        headers=headers or {}, timeout=30)


def test_a_fresh_insights_learns_the_past_from_the_feeds(suite):
    answer = insights(suite, suite.as_("analyst"), branch=BRANCH, by="day")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["scope"], body["service"], body["from"], body["to"], body["by"]) == (
        {"branch": BRANCH}, None, "2026-12-06", "2026-12-07", "day")
    sunday, monday = body["periods"]
    assert (sunday["period"], monday["period"]) == ("2026-12-06", "2026-12-07")
    assert sunday["figures"]["bookings_made"] == 0 and sunday["figures"]["served"] == 0
    figures = monday["figures"]
    assert (figures["bookings_made"], figures["bookings_cancelled"]) == (2, 1)
    assert figures["bookings_by_channel"] == {"web": 2}
    assert figures["check_ins"] == {"appointment_on_time": 1, "appointment_late": 0, "walk_in": 1, "priority": 1}
    assert figures["served"] == 1 and figures["satisfaction"]["response_rate"] == 0.0
    assert figures["places_offered"] > 0 and figures["slot_utilisation"] == round(1 / figures["places_offered"], 4)
    assert body["total"]["figures"]["served"] == 1


def test_the_rows_rebuilt_from_the_logs_are_the_live_ones(suite):
    replay = suite.run_cli("replay", "insights")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert replay.stdout.count("identical to the live one") == 3, replay.stdout


def test_the_command_line_reads_the_same_figures(suite):
    shown = suite.run_cli("insights", "--branch", BRANCH, "--from", "2026-12-07", "--to", "2026-12-07",
                          "--format", "csv")
    assert shown.returncode == 0, shown.stderr
    header, monday, total = shown.stdout.splitlines()
    row = dict(zip(header.split(","), monday.split(",")))
    assert (row["period"], row["bookings_made"], row["served"]) == ("2026-12-07", "2", "1")


def test_who_may_read_which_scope(suite):
    assert insights(suite, None, branch=BRANCH).status_code == 401
    assert insights(suite, suite.as_("branch_manager", branches=[OTHER_BRANCH]), branch=BRANCH).status_code == 403
    assert insights(suite, suite.as_("branch_manager", branches=[BRANCH]), branch=BRANCH).status_code == 200
    assert insights(suite, suite.as_("branch_manager", branches=[BRANCH]), directorate="npra").status_code == 403
    assert insights(suite, suite.as_("clerk", branches=[BRANCH]), branch=BRANCH).status_code == 403
    assert insights(suite, suite.as_("directorate_admin", directorates=["npra"]), directorate="npra").status_code == 200
    assert insights(suite, suite.as_("directorate_admin", directorates=["cid"]), directorate="npra").status_code == 403
    assert insights(suite, suite.as_("directorate_admin", directorates=["npra"]), all="true").status_code == 403
    country = insights(suite, suite.as_("analyst"), all="true", by="month")
    assert country.status_code == 200 and country.json()["total"]["figures"]["served"] == 1
    both = insights(suite, suite.as_("analyst"), branch=BRANCH, directorate="npra")
    assert both.status_code == 422 and both.json()["error"]["code"] == "INVALID_INPUT"
    too_long = requests.get(f"{suite.api}/insights", params={"all": "true", "from": "2026-01-01", "to": "2027-12-31"},
                            headers=suite.as_("analyst"), timeout=10)
    assert too_long.status_code == 422
