"""A Monday morning at the Isa Town branch, lived through the public HTTP API, in both run modes.

The suite starts on Sunday, people book Monday appointments, and the suite restarts on Monday at 08:50 with its
clock running 20 times faster than real time (the 60-second recall interval lasts 3 real seconds). The tests
below run in file order on one shared day: check-ins, walk-ins, counters and calls, recalls, transfers,
feedback, the fairness rule, the waiting-room view, the day's close, the replay of the log and a restart.
"""
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from tests.e2e.conftest import Suite

pytestmark = pytest.mark.e2e

BRANCH = "npra-isa-town"
PASSPORT, RESIDENCE = "passport-renewal", "residence-permit"  # ticket prefixes P and R
SUNDAY = "2026-12-06T10:00:00+03:00"
MONDAY_MORNING = "2026-12-07T08:50:00+03:00"
SPEED = 20  # 1 real second = 20 simulated seconds

# Monday's bookings: who, for which service, at what time. Check-in opens 30 minutes before an appointment and
# closes 30 minutes after it; who checks in by start + 10 minutes keeps the appointment's priority.
BOOKINGS = {
    "a1": (PASSPORT, "2026-12-07T09:00:00+03:00"),   # on time: early lane until 09:00, then due
    "a2": (PASSPORT, "2026-12-07T09:00:00+03:00"),
    "a3": (PASSPORT, "2026-12-07T09:00:00+03:00"),
    "r1": (RESIDENCE, "2026-12-07T09:00:00+03:00"),
    "r2": (RESIDENCE, "2026-12-07T09:00:00+03:00"),
    "p1": (PASSPORT, "2026-12-07T08:40:00+03:00"),   # late: checked in, but without appointment priority
    "p2": (PASSPORT, "2026-12-07T08:40:00+03:00"),
    "p3": (PASSPORT, "2026-12-07T08:40:00+03:00"),   # never comes
    "late11": (PASSPORT, "2026-12-07T11:00:00+03:00"),  # comes far too early, then never again
}


def cpr(who: str) -> str:
    return f"8805{list(BOOKINGS).index(who) + 10001:05d}"


def walk_in_cpr(n: int) -> str:
    return f"9006{n:05d}"


@dataclass
class Day:
    suite: Suite
    references: dict = field(default_factory=dict)   # who -> booking reference
    tickets: dict = field(default_factory=dict)      # number -> ticket id
    feedback: dict = field(default_factory=dict)     # number -> feedback token
    averages: dict | None = None
    visits: list = field(default_factory=list)       # the answers of `served`

    @property
    def api(self) -> str:
        return self.suite.api

    @property
    def staff(self) -> dict:
        """Signed in as the directorate's admin: a clerk's and a manager's rights at every branch (kept)."""
        if "staff" not in self.__dict__:
            self.__dict__["staff"] = self.suite.as_("directorate_admin",
                                                    directorates=["npra", "cid", "traffic", "customs"])
        return self.__dict__["staff"]

    def post(self, path: str, body=None, data: str | None = None) -> requests.Response:
        if data is not None:
            return requests.post(f"{self.api}{path}", data=data, timeout=10,
                                 headers={"Content-Type": "application/json", **self.staff})
        return requests.post(f"{self.api}{path}", json=body if body is not None else {}, headers=self.staff,
                             timeout=10)

    def check_in(self, who: str, cpr_: str | None = None, reference: str | None = None) -> requests.Response:
        return self.post(f"/branches/{BRANCH}/check-ins",
                         {"reference": reference or self.references[who], "cpr": cpr_ or cpr(who)})

    def walk_in(self, service: str, cpr_: str, branch: str = BRANCH, **extra) -> requests.Response:
        return self.post(f"/branches/{branch}/check-ins", {"walk_in": True, "service": service, "cpr": cpr_, **extra})

    def counter(self, counter: str, action: str, body=None) -> requests.Response:
        return self.post(f"/branches/{BRANCH}/counters/{counter}/{action}", body)

    def ticket(self, number: str, action: str, body=None) -> requests.Response:
        return self.post(f"/tickets/{self.tickets[number]}/{action}", body)

    def view(self) -> dict:
        response = requests.get(f"{self.api}/branches/{BRANCH}/queue", headers=self.staff, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def view_becomes(self, predicate, within: float) -> dict:
        """The waiting-room view once `predicate` holds for it (fails after `within` seconds)."""
        deadline = time.monotonic() + within
        while True:
            view = self.view()
            if predicate(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"the waiting room did not change as expected within {within} s: {view}")
            time.sleep(0.05)

    def booking_status(self, who: str) -> str:
        response = requests.get(f"{self.api}/bookings/{self.references[who]}", headers={"X-CPR": cpr(who)},
                                timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["status"]


def queue_events(day: Day, type_: str) -> list[dict]:
    """The queue's events of one type, read from the public events feed."""
    found, after = [], 0
    while True:
        page = requests.get(f"{day.api}/events", params={"service": "queue", "after": after, "limit": 1000},
                            headers=day.suite.reader(), timeout=10).json()
        found += [e for e in page["events"] if e["type"] == type_]
        if len(page["events"]) < 1000:
            return found
        after = page["next_after"]


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def line(view: dict, service: str) -> list[dict]:
    return next(w for w in view["waiting"] if w["service"] == service)["tickets"]


def poll(step, until, within: float, pause: float = 0.1) -> requests.Response:
    """Repeat `step` until `until(response)` holds (fails after `within` seconds); for waits the clock decides."""
    deadline = time.monotonic() + within
    while True:
        response = step()
        if until(response):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"still {response.status_code} {response.text} after {within} s")
        time.sleep(pause)


def wait_until_the_queue_knows(day: Day, who: str, within: float = 15) -> None:
    """The queue learns bookings by event: on Sunday a Monday appointment's check-in is TOO_EARLY once it has."""
    response = poll(lambda: day.check_in(who), lambda r: r.status_code != 404, within, pause=0.05)
    assert response.status_code == 409 and error_code(response) == "TOO_EARLY", response.text


def wait_until_the_queue_knows_the_catalogue(day: Day, within: float = 15) -> None:
    """The queue applies the catalogue's events in order, and cid-southern is the last branch of the file: once
    the queue knows it, it has Isa Town's queue policy (walk-in quotas) too."""
    poll(lambda: requests.get(f"{day.api}/branches/cid-southern/board", timeout=10),
         lambda r: r.status_code == 200, within, pause=0.05)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def day(request, tmp_path_factory):
    suite = Suite(request.param, tmp_path_factory.mktemp(f"queue-day-{request.param}"), now=SUNDAY)
    try:
        suite.start()
        monday = Day(suite)
        for who, (service, start) in BOOKINGS.items():
            # Suite.wait_ready only proves booking knows the branch; its opening hours may be a moment behind
            # (409 SLOT_UNAVAILABLE, nothing written), so the first booking is retried until they arrive.
            booked = poll(lambda: requests.post(f"{suite.api}/bookings", timeout=10, json={
                "cpr": cpr(who), "branch": BRANCH, "service": service, "start": start, "name": f"Person {who}",
                "language": "en", "mobile": "+97333000000"}),
                lambda r: not (r.status_code == 409 and error_code(r) == "SLOT_UNAVAILABLE"), within=15)
            assert booked.status_code == 201, booked.text
            monday.references[who] = booked.json()["reference"]
        for who in BOOKINGS:
            wait_until_the_queue_knows(monday, who)
        wait_until_the_queue_knows_the_catalogue(monday)
        suite.restart(now=MONDAY_MORNING, speed=SPEED)
        yield monday
    finally:
        suite.stop()
        suite.cleanup()


# -- the morning -------------------------------------------------------------------------------------------

def test_a_counter_with_nobody_waiting_gets_a_204(day):
    opened = day.counter("1", "open", {"services": [PASSPORT]})
    assert opened.status_code == 200, opened.text
    assert opened.json() == {"counter": "1", "open": True, "services": [PASSPORT]}
    nobody = day.counter("1", "call-next")
    assert nobody.status_code == 204, nobody.text
    never_opened = day.counter("9", "call-next")
    assert never_opened.status_code == 409 and error_code(never_opened) == "COUNTER_CLOSED"


def test_check_in_by_reference_and_cpr(day):
    first = day.check_in("a1")
    assert first.status_code == 201, first.text
    ticket = first.json()["ticket"]
    assert (ticket["number"], ticket["service"], ticket["kind"], ticket["status"]) == \
        ("P-001", PASSPORT, "appointment", "waiting")
    assert ticket["position"] == 1 and ticket["estimated_wait_minutes"] == 0
    day.tickets["P-001"] = ticket["id"]

    # the same person again (the reference typed in lower case, without its dash): the same ticket, nothing new
    again = day.check_in("a1", reference=day.references["a1"].lower().replace("-", ""))
    assert again.status_code == 200, again.text
    assert again.json()["ticket"]["id"] == ticket["id"] and again.json()["ticket"]["number"] == "P-001"

    wrong_cpr = day.check_in("a2", cpr_=cpr("a3"))
    assert wrong_cpr.status_code == 404 and error_code(wrong_cpr) == "BOOKING_NOT_FOUND"
    too_early = day.check_in("late11")  # 11:00, check-in opens at 10:30
    assert too_early.status_code == 409 and error_code(too_early) == "TOO_EARLY"
    assert "10:30" in too_early.json()["error"]["message"]

    for who, number, position, wait in [("a2", "P-002", 2, 20), ("a3", "P-003", 3, 40),
                                         ("r1", "R-001", 1, 0), ("r2", "R-002", 2, 30)]:
        checked_in = day.check_in(who)
        assert checked_in.status_code == 201, checked_in.text
        ticket = checked_in.json()["ticket"]
        assert (ticket["number"], ticket["position"]) == (number, position)
        # nothing measured yet: the service's duration, over the counters open for it (at least one)
        assert ticket["estimated_wait_minutes"] == wait
        day.tickets[number] = ticket["id"]

    # came for 08:40 at about 08:51: past the grace, so a ticket without appointment priority, ahead of the
    # appointments that are not due yet
    for who, number, position in [("p1", "P-004", 1), ("p2", "P-005", 2)]:
        late = day.check_in(who)
        assert late.status_code == 201, late.text
        assert (late.json()["ticket"]["number"], late.json()["ticket"]["position"]) == (number, position)
        day.tickets[number] = late.json()["ticket"]["id"]
    lanes = {t["number"]: t["lane"] for t in line(day.view(), PASSPORT)}
    assert lanes == {"P-004": "walk_in", "P-005": "walk_in", "P-001": "early", "P-002": "early", "P-003": "early"}


def test_walk_ins_until_the_quota_is_used_up(day):
    for n in range(40):
        walked_in = day.walk_in(RESIDENCE, walk_in_cpr(n))
        assert walked_in.status_code == 201, walked_in.text
        ticket = walked_in.json()["ticket"]
        assert ticket["number"] == f"R-{n + 3:03d}" and ticket["kind"] == "walk_in"
        day.tickets[ticket["number"]] = ticket["id"]
    full = day.walk_in(RESIDENCE, walk_in_cpr(40))
    assert full.status_code == 409 and error_code(full) == "WALK_IN_QUOTA_REACHED"
    assert full.json()["error"]["message_ar"]
    assert next(w for w in day.view()["waiting"] if w["service"] == RESIDENCE)["count"] == 42

    passport = day.walk_in(PASSPORT, walk_in_cpr(100))
    assert passport.status_code == 201 and passport.json()["ticket"]["number"] == "P-006", passport.text
    day.tickets["P-006"] = passport.json()["ticket"]["id"]
    twice = day.walk_in(PASSPORT, walk_in_cpr(100))
    assert twice.status_code == 409 and error_code(twice) == "ALREADY_WAITING"

    by_appointment_only = day.walk_in("licence-issue", walk_in_cpr(101), branch="traffic-driving-school")
    assert by_appointment_only.status_code == 409 and error_code(by_appointment_only) == "WALK_INS_NOT_TAKEN"
    nowhere = day.walk_in(PASSPORT, walk_in_cpr(102), branch="atlantis")
    assert nowhere.status_code == 404 and error_code(nowhere) == "UNKNOWN_BRANCH"


def test_a_priority_walk_in_is_called_before_everyone_else(day):
    elderly = day.walk_in(PASSPORT, "450100001", priority="elderly")
    assert elderly.status_code == 201, elderly.text
    ticket = elderly.json()["ticket"]
    assert (ticket["number"], ticket["priority"], ticket["position"]) == ("P-007", "elderly", 1)
    day.tickets["P-007"] = ticket["id"]

    called = day.counter("1", "call-next")
    assert called.status_code == 200, called.text
    assert called.json()["lane"] == "priority"
    assert (called.json()["ticket"]["number"], called.json()["ticket"]["status"]) == ("P-007", "called")
    assert called.json()["ticket"]["counter"] == "1"

    # the screens show the call within a second
    view = day.view_becomes(lambda v: {"counter": "1", "number": "P-007", "service": PASSPORT} in v["now_serving"]
                            and v["last_called"] and v["last_called"][0]["number"] == "P-007", within=1.0)
    assert view["last_called"][0]["counter"] == "1"
    assert "P-007" not in [t["number"] for t in line(view, PASSPORT)]

    busy = day.counter("1", "call-next")
    assert busy.status_code == 409 and error_code(busy) == "COUNTER_BUSY"
    assert "P-007" in busy.json()["error"]["message"]

    served = day.ticket("P-007", "served")
    assert served.status_code == 200, served.text
    assert served.json()["ticket"]["status"] == "served"
    feedback = served.json()["feedback"]
    assert feedback["token"] and feedback["url"].endswith(f"/feedback/{feedback['token']}")
    day.feedback["P-007"] = feedback["token"]
    day.visits.append(served.json())
    page = requests.get(f"{day.suite.base_url}/feedback/{feedback['token']}", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")


def test_feedback_is_given_once_per_visit(day):
    token = day.feedback["P-007"]
    invalid = day.post("/feedback", {"token": token, "score": 6})
    assert invalid.status_code == 422 and error_code(invalid) == "INVALID_INPUT"
    assert "score" in invalid.json()["error"]["fields"]
    rated = day.post("/feedback", {"token": token, "score": 5, "comment": "سريع ومنظم"})
    assert rated.status_code == 201, rated.text
    assert rated.json()["score"] == 5
    twice = day.post("/feedback", {"token": token, "score": 1})
    assert twice.status_code == 409 and error_code(twice) == "FEEDBACK_ALREADY_GIVEN"
    ticket_id, _, mac = token.partition(".")
    for forged in (f"{ticket_id}.{'A' * len(mac)}", f"{uuid.uuid4()}.{mac}"):
        refused = day.post("/feedback", {"token": forged, "score": 5})
        assert refused.status_code == 404, refused.text
    malformed = day.post("/feedback", data='{"token": ')
    assert malformed.status_code == 400 and error_code(malformed) == "MALFORMED_JSON"


def test_recalls_are_spaced_and_limited_then_the_clerk_marks_a_no_show(day):
    for counter, services in (("2", [RESIDENCE]), ("3", [PASSPORT, RESIDENCE])):
        opened = day.counter(counter, "open", {"services": services})
        assert opened.status_code == 200 and opened.json()["open"], opened.text

    called = day.counter("1", "call-next")
    assert called.status_code == 200, called.text
    assert (called.json()["ticket"]["number"], called.json()["lane"]) == ("P-004", "walk_in")

    too_soon = day.ticket("P-004", "recall")
    assert too_soon.status_code == 409 and error_code(too_soon) == "RECALL_TOO_SOON"
    for recall in (1, 2):
        # 60 simulated seconds apart: about 3 real seconds at this clock speed
        recalled = poll(lambda: day.ticket("P-004", "recall"),
                        lambda r: not (r.status_code == 409 and error_code(r) == "RECALL_TOO_SOON"), within=20)
        assert recalled.status_code == 200, recalled.text
        assert recalled.json()["ticket"]["status"] == "called"
        if recall == 1:
            again = day.ticket("P-004", "recall")
            assert again.status_code == 409 and error_code(again) == "RECALL_TOO_SOON"
    limit = day.ticket("P-004", "recall")
    assert limit.status_code == 409 and error_code(limit) == "RECALL_LIMIT"

    no_show = day.ticket("P-004", "no-show")
    assert no_show.status_code == 200, no_show.text
    assert no_show.json()["ticket"]["status"] == "no_show"
    done = day.ticket("P-004", "no-show")
    assert done.status_code == 409 and error_code(done) == "TICKET_NOT_CALLED"
    view = day.view()
    assert not any(s["counter"] == "1" for s in view["now_serving"])
    assert view["averages"]["no_shows"] == 1


def test_a_transfer_keeps_the_ticket_number_and_its_place(day):
    called = day.counter("2", "call-next")
    assert called.status_code == 200, called.text
    assert (called.json()["ticket"]["number"], called.json()["lane"]) == ("R-003", "walk_in")
    moved = day.ticket("R-003", "transfer", {"service": PASSPORT})
    assert moved.status_code == 200, moved.text
    ticket = moved.json()["ticket"]
    assert (ticket["id"], ticket["number"], ticket["service"], ticket["status"]) == \
        (day.tickets["R-003"], "R-003", PASSPORT, "waiting")
    # it keeps its original check-in time: behind P-005 (came earlier), ahead of P-006 (came later)
    view = day.view()
    walk_ins = [t for t in line(view, PASSPORT) if t["lane"] == "walk_in"]
    assert [t["number"] for t in walk_ins] == ["P-005", "R-003", "P-006"]
    assert ticket["position"] == walk_ins[1]["position"]
    assert "R-003" not in [t["number"] for t in line(view, RESIDENCE)]
    assert not any(s["counter"] == "2" for s in view["now_serving"])
    same = day.ticket("R-003", "transfer", {"service": PASSPORT})
    assert same.status_code == 409 and error_code(same) == "SAME_SERVICE"


def test_refused_ticket_steps_and_malformed_requests(day):
    never_called = day.ticket("P-001", "served")
    assert never_called.status_code == 409 and error_code(never_called) == "TICKET_NOT_CALLED"
    unknown = f"/tickets/{uuid.uuid4()}"
    for action in ("served", "recall", "no-show"):
        missing = day.post(f"{unknown}/{action}")
        assert missing.status_code == 404 and error_code(missing) == "TICKET_NOT_FOUND", missing.text
    for path in (f"/branches/{BRANCH}/check-ins", f"/branches/{BRANCH}/counters/1/open",
                 f"/tickets/{day.tickets['R-004']}/transfer"):
        for body in ('{"cpr": "8805', "[1, 2]"):
            malformed = day.post(path, data=body)
            assert malformed.status_code == 400 and error_code(malformed) == "MALFORMED_JSON", malformed.text
    both_ways = day.post(f"/branches/{BRANCH}/check-ins",
                         {"reference": day.references["a1"], "walk_in": True, "service": PASSPORT, "cpr": cpr("a1")})
    assert both_ways.status_code == 422 and error_code(both_ways) == "INVALID_INPUT"


def test_the_waiting_room_survives_a_restart_and_appointments_fall_due(day):
    before = day.view()
    day.suite.restart(now="2026-12-07T09:05:00+03:00", speed=SPEED)  # skips the quiet minutes before 09:00
    after = day.view()
    assert after["averages"] == before["averages"]
    assert after["averages"]["served"] == 1 and after["averages"]["satisfaction"] == 5.0
    assert after["last_called"] == before["last_called"]
    for service in (PASSPORT, RESIDENCE):
        assert sorted(t["number"] for t in line(after, service)) == sorted(t["number"] for t in line(before, service))
    lanes = {t["number"]: t["lane"] for t in line(after, PASSPORT) + line(after, RESIDENCE)}
    assert all(lanes[n] == "appointment" for n in ("P-001", "P-002", "P-003", "R-001", "R-002")), lanes


def test_at_least_one_walk_in_is_called_for_every_three_appointments(day):
    calls = []
    for _ in range(6):
        called = day.counter("3", "call-next")
        assert called.status_code == 200, called.text
        number = called.json()["ticket"]["number"]
        calls.append((number, called.json()["lane"]))
        served = day.ticket(number, "served")
        assert served.status_code == 200, served.text
        day.feedback[number] = served.json()["feedback"]["token"]
        day.visits.append(served.json())
    assert calls == [("P-001", "appointment"), ("P-002", "appointment"), ("P-003", "appointment"),
                     ("P-005", "walk_in"), ("R-001", "appointment"), ("R-002", "appointment")]


def test_the_waiting_room_shows_the_days_averages(day):
    rated = day.post("/feedback", {"token": day.feedback["P-001"], "score": 3})
    assert rated.status_code == 201, rated.text
    view = day.view()
    averages = view["averages"]
    assert (averages["served"], averages["no_shows"], averages["ratings"], averages["satisfaction"]) == (7, 1, 2, 4.0)
    # the averages are those of the served visits (each `served` answer rounds its own to 0.1 minute)
    for measure in ("wait_minutes", "service_minutes"):
        assert isinstance(averages[measure], (int, float)) and averages[measure] >= 0
        assert abs(averages[measure] - sum(v[measure] for v in day.visits) / len(day.visits)) <= 0.1
    assert view["now_serving"] == [] and not view["closed"]
    assert [c["counter"] for c in view["counters"] if c["open"]] == ["1", "2", "3"]
    assert view["last_called"][0]["number"] == "R-002" and view["last_called"][0]["status"] == "served"
    day.averages = averages


def test_closing_the_day_closes_out_tickets_and_expires_missed_bookings(day):
    closed = day.post(f"/branches/{BRANCH}/close-day")
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed"] is True and closed.json()["events"] > 0
    view = day.view()
    assert view["closed"] is True
    assert [w["count"] for w in view["waiting"]] == [0, 0]
    assert view["now_serving"] == [] and not any(c["open"] for c in view["counters"])
    assert view["averages"] == day.averages  # closed-out tickets were not served
    # what still waited was closed out: 39 residence walk-ins, P-006, and R-003 in the passport queue
    closed_out = {e["payload"]["ticket_id"] for e in queue_events(day, "queue.TicketClosedOut")}
    assert closed_out == {day.tickets[n] for n in ["P-006", "R-003"] + [f"R-{n:03d}" for n in range(4, 43)]}
    missed = {e["payload"]["reference"] for e in queue_events(day, "queue.AppointmentMissed")}
    assert missed == {day.references["p3"], day.references["late11"]}

    again = day.post(f"/branches/{BRANCH}/close-day")
    assert again.status_code == 200 and again.json()["events"] == 0
    late_comer = day.walk_in(PASSPORT, walk_in_cpr(200))
    assert late_comer.status_code == 409 and error_code(late_comer) == "DAY_CLOSED"
    counter = day.counter("1", "call-next")
    assert counter.status_code == 409 and error_code(counter) == "DAY_CLOSED"

    # the queue tells booking who never came; it travels by event
    for who in ("p3", "late11"):
        deadline = time.monotonic() + 10
        while day.booking_status(who) != "expired":
            assert time.monotonic() < deadline, f"{who}'s booking is {day.booking_status(who)}, not expired"
            time.sleep(0.1)
    assert all(day.booking_status(who) != "expired" for who in ("a1", "p1", "r2"))  # they came


def test_the_log_rebuilds_the_same_waiting_room_and_a_restart_shows_the_same_averages(day):
    replay = day.suite.run_cli("replay", "queue")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical to the live one" in replay.stdout
    before = day.view()
    day.suite.restart(now="2026-12-07T12:00:00+03:00", speed=SPEED)
    after = day.view()
    assert after["averages"] == before["averages"] == day.averages
    assert after["closed"] is True and after["last_called"] == before["last_called"]
