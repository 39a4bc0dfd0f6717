"""The queue's commands (services/queue/commands.py) on both backends: a day at a branch driven through them
and read back through the waiting-room view, the day each command keeps beside its tables, and two counters
calling at the same instant."""
import uuid
from functools import reduce

import eventlet
import pytest

from shared.errors import NotFound
from shared.events import Event
from services.queue import commands, domain, feedback, projection, replay
from services.queue.domain import Day
from tests.unit.queue.conftest import (BRANCH, KEY, MONDAY, PASSPORT, PUBLIC_URL, RESIDENCE, a_day_of_every_kind,
                                       appointment_status, arrive, book, cancel, learn_catalogue, queue_events,
                                       rejected, tick, walk_in)


# -- a day at Isa Town ----------------------------------------------------------------------------------

A, A_CPR = "ACDE-FGHJ", "900112345"   # passport 09:00
B, B_CPR = "KMNP-QRTW", "851254321"   # residence 09:00
C, C_CPR = "XY34-679A", "880312345"   # passport 10:00, never comes
D, D_CPR = "CDEF-GHJK", "870412345"   # passport 10:20, cancelled
W1, W2, W3, W4 = "900212345", "900312345", "900412345", "900512345"


def test_a_day_in_the_waiting_room(db):
    book(db, A, A_CPR, PASSPORT, 9, language="en")
    book(db, B, B_CPR, RESIDENCE, 9)
    book(db, C, C_CPR, PASSPORT, 10)
    book(db, D, D_CPR, PASSPORT, 10, 20)
    cancel(db, D, PASSPORT, 10, 20)

    # the morning: two appointments and two walk-ins arrive, two counters open
    status, a = arrive(db, "acde fghj", A_CPR, tick(8, 40))  # typed as people type it
    assert status == 201
    assert (a["number"], a["kind"], a["service"], a["status"], a["position"]) == ("P-001", "appointment", PASSPORT,
                                                                                  "waiting", 1)
    assert (a["service_name_en"], a["branch"]) == ("Passport renewal", BRANCH)
    status, again = arrive(db, "ACDEFGHJ", A_CPR, tick(8, 41))
    assert status == 200 and again["id"] == a["id"]
    with rejected("BOOKING_NOT_FOUND", NotFound):
        arrive(db, A, B_CPR, tick(8, 42))
    with rejected("BOOKING_CANCELLED"):
        arrive(db, D, D_CPR, tick(8, 42))

    w1 = walk_in(db, PASSPORT, W1, tick(8, 45))
    assert (w1["number"], w1["position"], w1["estimated_wait_minutes"]) == ("P-002", 1, 0)  # A is early
    w2 = walk_in(db, RESIDENCE, W2, tick(8, 50))
    assert w2["number"] == "R-001"
    assert commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(8, 55)) == \
        {"counter": "1", "open": True, "services": [PASSPORT]}
    assert commands.open_counter(db, BRANCH, "2", [RESIDENCE, PASSPORT], tick(8, 55))["services"] == \
        [PASSPORT, RESIDENCE]
    status, b = arrive(db, B, B_CPR, tick(9))
    assert (status, b["number"], b["position"], b["estimated_wait_minutes"]) == (201, "R-002", 1, 0)

    # calls: the due appointments first, then the walk-ins
    called = commands.call_next(db, BRANCH, "1", tick(9, 1))
    assert (called["ticket"]["id"], called["lane"], called["ticket"]["counter"]) == (a["id"], "appointment", "1")
    called = commands.call_next(db, BRANCH, "2", tick(9, 1))
    assert (called["ticket"]["id"], called["lane"]) == (b["id"], "appointment")
    with rejected("COUNTER_BUSY"):
        commands.call_next(db, BRANCH, "2", tick(9, 1, 10))
    with rejected("RECALL_TOO_SOON"):
        commands.recall(db, a["id"], tick(9, 1, 30))
    recalled = commands.recall(db, a["id"], tick(9, 2))["ticket"]
    assert (recalled["status"], recalled["recalls"]) == ("called", 1)  # the answer counts the recalls

    served_a = commands.served(db, a["id"], tick(9, 10), KEY, PUBLIC_URL)
    assert (served_a["wait_minutes"], served_a["service_minutes"]) == (21.0, 8.0)  # 08:40-09:01; 09:02-09:10
    assert served_a["feedback"]["url"] == f"{PUBLIC_URL}/feedback/{served_a['feedback']['token']}"
    served_b = commands.served(db, b["id"], tick(9, 12), KEY, PUBLIC_URL)
    assert (served_b["wait_minutes"], served_b["service_minutes"]) == (1.0, 11.0)
    called = commands.call_next(db, BRANCH, "1", tick(9, 12))
    assert (called["ticket"]["id"], called["lane"]) == (w1["id"], "walk_in")
    called = commands.call_next(db, BRANCH, "2", tick(9, 13))
    assert (called["ticket"]["id"], called["lane"]) == (w2["id"], "walk_in")
    assert commands.no_show(db, w1["id"], tick(9, 14))["ticket"]["status"] == "no_show"
    moved = commands.transfer(db, w2["id"], PASSPORT, tick(9, 15))["ticket"]
    assert (moved["number"], moved["service"], moved["status"], moved["position"], moved["counter"]) == \
        ("R-001", PASSPORT, "waiting", 1, None)
    w3 = walk_in(db, PASSPORT, W3, tick(9, 15))
    assert (w3["number"], w3["position"], w3["estimated_wait_minutes"]) == ("P-003", 2, 8)  # measured 8 min, 2 counters

    # feedback, by the token the served answer gave
    assert commands.rate(db, served_a["feedback"]["token"], 5, "شكرًا", KEY)["score"] == 5
    with rejected("FEEDBACK_ALREADY_GIVEN"):
        commands.rate(db, served_a["feedback"]["token"], 1, None, KEY)
    with rejected("FEEDBACK_TOKEN_UNKNOWN", NotFound):
        commands.rate(db, feedback.token_for(a["id"], "another-key"), 5, None, KEY)
    with rejected("VISIT_NOT_SERVED"):
        commands.rate(db, feedback.token_for(w3["id"], KEY), 5, None, KEY)

    room = commands.waiting_room(db, BRANCH, MONDAY, tick(9, 16))
    assert (room["branch"], room["date"], room["closed"], room["name_en"]) == \
        (BRANCH, "2026-12-07", False, "Isa Town branch")
    passport, residence = room["waiting"]
    assert (passport["service"], passport["count"], passport["estimated_wait_minutes"]) == (PASSPORT, 2, 8)
    assert [(t["number"], t["position"], t["lane"], t["kind"], t["estimated_wait_minutes"], t["checked_in_at"])
            for t in passport["tickets"]] == [("R-001", 1, "walk_in", "walk_in", 0, "2026-12-07T08:50:00+03:00"),
                                              ("P-003", 2, "walk_in", "walk_in", 8, "2026-12-07T09:15:00+03:00")]
    assert (residence["service"], residence["count"], residence["tickets"]) == (RESIDENCE, 0, [])
    assert residence["estimated_wait_minutes"] == 0
    assert room["now_serving"] == []
    assert [(c["number"], c["counter"], c["status"], c["called_at"]) for c in room["last_called"]] == [
        ("R-001", None, "waiting", "2026-12-07T09:13:00+03:00"),
        ("P-002", "1", "no_show", "2026-12-07T09:12:00+03:00"),
        ("P-001", "1", "served", "2026-12-07T09:02:00+03:00"),  # its last call was the recall
        ("R-002", "2", "served", "2026-12-07T09:01:00+03:00")]
    assert room["counters"] == [{"counter": "1", "services": [PASSPORT], "open": True, "serving": None},
                                {"counter": "2", "services": [PASSPORT, RESIDENCE], "open": True, "serving": None}]
    assert room["averages"] == {"served": 2, "no_shows": 1, "wait_minutes": 11.0, "longest_wait_minutes": 21.0,
                                "service_minutes": 9.5, "satisfaction": 5.0, "ratings": 1,
                                "served_by_hour": [{"hour": "09:00", "served": 2}]}

    # the transferred ticket is called from the passport line, ahead of the later walk-in
    called = commands.call_next(db, BRANCH, "2", tick(9, 20))
    assert (called["ticket"]["id"], called["ticket"]["service"]) == (w2["id"], PASSPORT)
    room = commands.waiting_room(db, BRANCH, MONDAY, tick(9, 21))
    assert room["now_serving"] == [{"counter": "2", "number": "R-001", "service": PASSPORT}]
    served_w2 = commands.served(db, w2["id"], tick(9, 30), KEY, PUBLIC_URL)
    assert (served_w2["wait_minutes"], served_w2["service_minutes"]) == (28.0, 10.0)  # 08:50-09:13 + 09:15-09:20
    assert commands.call_next(db, BRANCH, "1", tick(9, 31))["ticket"]["id"] == w3["id"]
    w4 = walk_in(db, RESIDENCE, W4, tick(9, 32))
    room = commands.waiting_room(db, BRANCH, MONDAY, tick(9, 33))
    assert room["now_serving"] == [{"counter": "1", "number": "P-003", "service": PASSPORT}]
    assert [t["number"] for t in room["waiting"][1]["tickets"]] == ["R-003"]
    assert room["averages"]["served"] == 3 and room["averages"]["wait_minutes"] == round((21 + 1 + 28) / 3, 2)

    # the end of the day
    assert commands.close_day(db, BRANCH, MONDAY) == {"branch": BRANCH, "date": "2026-12-07", "closed": True,
                                                      "events": 6}
    assert commands.close_day(db, BRANCH, MONDAY)["events"] == 0
    closing = queue_events(db)[-6:]
    assert [e.type for e in closing] == ["queue.TicketClosedOut", "queue.TicketClosedOut", "queue.CounterClosed",
                                         "queue.CounterClosed", "queue.AppointmentMissed", "queue.DayClosed"]
    assert {(e.payload["ticket_id"], e.payload["status"]) for e in closing[:2]} == \
        {(w3["id"], "called"), (w4["id"], "waiting")}
    assert closing[4].payload["reference"] == C
    assert appointment_status(db) == {A: "active", B: "active", C: "missed", D: "cancelled"}
    with rejected("DAY_CLOSED"):
        walk_in(db, PASSPORT, "900612345", tick(14, 5))
    status, again = arrive(db, B, B_CPR, tick(14, 5))
    assert (status, again["id"], again["status"]) == (200, b["id"], "served")
    assert commands.rate(db, served_b["feedback"]["token"], 3, None, KEY)["score"] == 3  # rating outlives the day

    room = commands.waiting_room(db, BRANCH, MONDAY, tick(14, 10))
    assert room["closed"] and room["now_serving"] == [] and all(w["count"] == 0 for w in room["waiting"])
    assert not any(c["open"] for c in room["counters"])
    assert [(c["number"], c["status"]) for c in room["last_called"][:2]] == [("P-003", "closed_out"),
                                                                              ("R-001", "served")]
    assert room["averages"] == {"served": 3, "no_shows": 1, "wait_minutes": round(50 / 3, 2),
                                "longest_wait_minutes": 28.0, "service_minutes": round((8 + 11 + 10) / 3, 2),
                                "satisfaction": 4.0, "ratings": 2, "served_by_hour": [{"hour": "09:00", "served": 3}]}

    # the log tells the same story: the stream of the day, replayed into empty tables, gives the same room
    events = queue_events(db)
    assert {e.stream_id for e in events} == {"queue-npra-isa-town-20261207"}
    assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
    counts = {}
    for e in events:
        counts[e.type.split(".")[1]] = counts.get(e.type.split(".")[1], 0) + 1
    assert counts == {"CustomerCheckedIn": 6, "CounterOpened": 2, "TicketCalled": 6, "TicketRecalled": 1,
                      "TicketServed": 3, "TicketNoShow": 1, "TicketTransferred": 1, "SatisfactionRated": 2,
                      "TicketClosedOut": 2, "CounterClosed": 2, "AppointmentMissed": 1, "DayClosed": 1}
    served_events = {e.payload["ticket_id"]: e.payload for e in events if e.type == "queue.TicketServed"}
    assert served_events[w2["id"]]["wait_seconds"] == 1680 and served_events[a["id"]]["service_seconds"] == 480
    result = replay.compare_waiting_rooms(db, tick(14, 10))
    assert result.identical
    assert (result.events, result.note) == (28, "of 1 branch days")


def test_check_in_windows_through_the_command(db):
    book(db, A, A_CPR, PASSPORT, 9)
    with rejected("TOO_EARLY"):
        arrive(db, A, A_CPR, tick(8, 29))
    with rejected("TOO_LATE"):
        arrive(db, A, A_CPR, tick(9, 31))
    with rejected("UNKNOWN_BRANCH", NotFound):
        commands.check_in(db, "no-such-branch", {"reference": A, "cpr": A_CPR, "priority": None}, tick(9))
    status, ticket = arrive(db, A, A_CPR, tick(9, 15))
    assert status == 201 and ticket["number"] == "P-001"
    assert queue_events(db)[-1].payload["on_time"] is False
    with rejected("BRANCH_CLOSED"):
        walk_in(db, PASSPORT, W1, tick(14))


def test_unanswered_recalls_become_no_shows_and_the_day_closes_after_hours(db):
    book(db, C, C_CPR, PASSPORT, 10)
    ticket = walk_in(db, PASSPORT, W1, tick(9))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.call_next(db, BRANCH, "1", tick(9, 1))
    commands.recall(db, ticket["id"], tick(9, 2))
    commands.recall(db, ticket["id"], tick(9, 3))
    with rejected("RECALL_LIMIT"):
        commands.recall(db, ticket["id"], tick(9, 4))
    assert commands.housekeeping(db, tick(9, 3, 59)) == 0
    assert commands.housekeeping(db, tick(9, 4)) == 1
    event = queue_events(db)[-1]
    assert (event.type, event.payload["reason"], event.payload["counter"]) == \
        ("queue.TicketNoShow", "no_answer_after_recalls", "1")
    room = commands.waiting_room(db, BRANCH, MONDAY, tick(9, 5))
    assert room["now_serving"] == [] and room["averages"]["no_shows"] == 1
    assert commands.housekeeping(db, tick(13, 59)) == 0
    assert commands.housekeeping(db, tick(14)) == 3  # counter 1, C missed, the day
    assert commands.waiting_room(db, BRANCH, MONDAY, tick(14))["closed"]
    assert appointment_status(db)[C] == "missed"
    assert commands.housekeeping(db, tick(14, 1)) == 0


def test_a_ticket_transferred_while_waiting_keeps_the_time_it_waited(db):
    ticket = walk_in(db, PASSPORT, W1, tick(9))
    commands.transfer(db, ticket["id"], RESIDENCE, tick(9, 10))
    commands.open_counter(db, BRANCH, "2", [RESIDENCE], tick(9, 20))
    assert commands.call_next(db, BRANCH, "2", tick(9, 20))["ticket"]["id"] == ticket["id"]
    served = commands.served(db, ticket["id"], tick(9, 25), KEY, PUBLIC_URL)
    assert served["wait_minutes"] == 20.0  # 09:00-09:10 in one line, 09:10-09:20 in the other


def test_a_transferred_ticket_called_again_starts_with_no_recalls(db):
    ticket = walk_in(db, PASSPORT, W1, tick(9))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.open_counter(db, BRANCH, "2", [RESIDENCE], tick(9))
    commands.call_next(db, BRANCH, "1", tick(9, 1))
    commands.recall(db, ticket["id"], tick(9, 2))
    commands.recall(db, ticket["id"], tick(9, 3))
    commands.transfer(db, ticket["id"], RESIDENCE, tick(9, 3, 30))  # the person came, for the other service
    commands.call_next(db, BRANCH, "2", tick(9, 4))
    assert commands.housekeeping(db, tick(9, 6)) == 0  # being served at counter 2
    assert commands.recall(db, ticket["id"], tick(9, 6))["ticket"]["status"] == "called"


# -- two counters calling at the same instant -------------------------------------------------------------

def test_two_counters_calling_at_once_never_get_the_same_ticket(open_db):
    db = open_db("queue", projection.metadata)
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: concurrent calls are a PostgreSQL matter")
    learn_catalogue(db, walk_ins_per_service=500)
    now = tick(9)
    created = [walk_in(db, (PASSPORT, RESIDENCE)[n % 2], f"9001{n:05d}", now)["id"] for n in range(200)]
    for counter in ("1", "2"):
        commands.open_counter(db, BRANCH, counter, [PASSPORT, RESIDENCE], now)
    in_flight, met = [], []

    def call(counter: str) -> dict:
        in_flight.append(counter)
        if len(in_flight) == 2:
            met.append(counter)  # both counters' calls are under way at this instant
        try:
            return commands.call_next(db, BRANCH, counter, now)
        finally:
            in_flight.remove(counter)

    pool = eventlet.GreenPool(2)
    called = []
    for _round in range(100):
        answers = list(pool.imap(call, ("1", "2")))
        pair = [answer["ticket"]["id"] for answer in answers]
        assert pair[0] != pair[1]
        called += pair
        list(pool.imap(lambda ticket_id: commands.served(db, ticket_id, now, KEY, PUBLIC_URL), pair))
    assert len(met) == 100
    assert commands.call_next(db, BRANCH, "1", now) is None and commands.call_next(db, BRANCH, "2", now) is None

    calls = [e.payload["ticket_id"] for e in queue_events(db) if e.type == "queue.TicketCalled"]
    assert len(calls) == len(set(calls)) == 200
    assert sorted(calls) == sorted(called) == sorted(created)
    room = commands.waiting_room(db, BRANCH, MONDAY, now)
    assert room["averages"]["served"] == 200 and room["now_serving"] == []


def test_a_replica_never_decides_on_a_day_another_one_changed_since(db, open_db):
    """Each process keeps the days it worked on; one that another replica changed since is loaded again."""
    other = open_db("queue", projection.metadata)  # a second replica on the same database
    now = tick(9)
    first = walk_in(db, PASSPORT, "900100001", now)
    commands.open_counter(db, BRANCH, "1", [PASSPORT], now)  # db now keeps this day
    second = walk_in(other, PASSPORT, "900100002", now)  # only the other replica saw this one arrive
    assert commands.call_next(db, BRANCH, "1", now)["ticket"]["id"] == first["id"]
    commands.served(db, first["id"], now, KEY, PUBLIC_URL)
    assert commands.call_next(db, BRANCH, "1", now)["ticket"]["id"] == second["id"]
    commands.served(other, second["id"], now, KEY, PUBLIC_URL)
    assert commands.call_next(db, BRANCH, "1", now) is None
    assert commands.waiting_room(db, BRANCH, MONDAY, now)["averages"]["served"] == 2


# -- the day a command keeps ----------------------------------------------------------------------------

def test_the_day_the_commands_keep_is_their_events_folded(db):
    """Each command folds its events into the day it holds (domain.evolve) and keeps that: it is the day the log
    folds to, and the day the tables hold."""
    tickets = a_day_of_every_kind(db)
    events = queue_events(db)
    assert {e.type for e in events} == {*domain.CHANGES, "queue.AppointmentMissed"}  # every kind there is
    kept = commands.DAYS.get(db, BRANCH, MONDAY, version=len(events))
    with db.transaction() as uow:
        loaded = projection.load_day(uow, BRANCH, MONDAY)
    assert reduce(domain.evolve, events, Day(BRANCH, MONDAY)) == kept == loaded
    assert kept.tickets[tickets["appointment"]].comment == "Quick" and kept.closed


def test_a_refused_command_leaves_the_day_kept_as_it_was(db):
    """A day is a value no command changes in place: after a refusal the next command need not load it again."""
    ticket = walk_in(db, PASSPORT, W1, tick(9))
    kept = commands.DAYS.get(db, BRANCH, MONDAY, version=1)
    assert kept is not None
    with rejected("TICKET_NOT_CALLED"):
        commands.recall(db, ticket["id"], tick(9, 1))
    assert commands.DAYS.get(db, BRANCH, MONDAY, version=1) is kept
    assert kept.tickets[ticket["id"]].status == "waiting"


def test_a_day_taken_before_an_erasure_is_not_kept_after_it(db):
    """An erasure changes tickets outside the day's stream: a command that took its day before the forget must not
    put that day (which may still name the person) back afterwards."""
    walk_in(db, PASSPORT, W1, tick(9))
    kept = commands.DAYS.get(db, BRANCH, MONDAY, version=1)
    taken_in = commands.DAYS.generation
    commands.DAYS.forget(db)
    commands.DAYS.put(db, BRANCH, MONDAY, 1, kept, taken_in)
    assert commands.DAYS.get(db, BRANCH, MONDAY, version=1) is None
    commands.DAYS.put(db, BRANCH, MONDAY, 1, kept, commands.DAYS.generation)  # taken after it: kept
    assert commands.DAYS.get(db, BRANCH, MONDAY, version=1) is kept


def test_every_replica_forgets_its_days_once_the_erasure_is_applied(db):
    """queue.erasures reaches every replica; each forgets its days only when the replica that consumes
    queue.bookings has applied the erasure (before, a day loaded again would still name the person)."""
    walk_in(db, PASSPORT, W1, tick(9))
    erasure = Event.of_stored(event_id=str(uuid.uuid4()), type="booking.PersonErased", version=1, stream_id="p",
                              stream_version=1, position=99, occurred_at=tick(9, 5), correlation_id="c",
                              causation_id=None, directorate=None, payload={"subject": "s"}, actor=None)
    commands.forget_days_after(db, projection.BOOKINGS_CONSUMER, erasure, wait_seconds=0.5)  # never applied
    assert commands.DAYS.get(db, BRANCH, MONDAY, version=1) is None  # forgotten anyway, after the wait
    walk_in(db, PASSPORT, W2, tick(9, 6))
    generation = commands.DAYS.generation
    with db.transaction() as uow:
        assert not uow.already_processed(projection.BOOKINGS_CONSUMER, erasure)
    commands.forget_days_after(db, projection.BOOKINGS_CONSUMER, erasure, wait_seconds=30)
    assert commands.DAYS.generation == generation + 1
    assert commands.DAYS.get(db, BRANCH, MONDAY, version=2) is None


def test_a_command_on_a_ticket_nobody_has_is_not_found(db):
    with rejected("TICKET_NOT_FOUND", NotFound):
        commands.served(db, "00000000-0000-0000-0000-000000000000", tick(9), KEY, PUBLIC_URL)


# -- the links of a visit: the live ticket and the feedback page ----------------------------------------

def test_a_check_in_answers_the_link_of_its_live_ticket_and_the_link_shows_nothing_personal(db):
    book(db, A, A_CPR, PASSPORT, 9, language="en")
    status, answer = commands.check_in(db, BRANCH, {"reference": A, "cpr": A_CPR, "priority": None}, tick(8, 40),
                                       link_key=KEY, public_url=PUBLIC_URL + "/")
    link = answer["link"]
    assert status == 201 and link["url"] == f"{PUBLIC_URL}/t/{link['token']}"
    assert feedback.ticket_of(link["token"], KEY, feedback.TICKET) == answer["ticket"]["id"]
    assert feedback.ticket_of(link["token"], KEY) is None  # a ticket link is no feedback link, nor the reverse
    assert feedback.ticket_of(feedback.token_for(answer["ticket"]["id"], KEY), KEY, feedback.TICKET) is None
    _, again = commands.check_in(db, BRANCH, {"reference": A, "cpr": A_CPR, "priority": None}, tick(8, 41),
                                 link_key=KEY, public_url=PUBLIC_URL)
    assert again["link"] == link  # the same ticket, the same link
    walked = walk_in(db, PASSPORT, W1, tick(8, 45))

    seen = commands.public_ticket(db, feedback.token_for(walked["id"], KEY, feedback.TICKET), KEY, tick(8, 46))
    assert seen == {"number": "P-002", "branch": BRANCH, "branch_name_en": "Isa Town branch",
                    "branch_name_ar": seen["branch_name_ar"], "date": "2026-12-07", "service": PASSPORT,
                    "service_name_en": "Passport renewal", "service_name_ar": seen["service_name_ar"],
                    "status": "waiting", "position": 1, "estimated_wait_minutes": 0, "counter": None,
                    "called_at": None, "recalls": 0}
    assert A_CPR not in str(seen) and W1 not in str(seen) and walked["id"] not in str(seen)
    commands.open_counter(db, BRANCH, "5", [PASSPORT], tick(9))
    commands.call_next(db, BRANCH, "5", tick(9, 1))  # the appointment, due now
    assert commands.public_ticket(db, link["token"], KEY, tick(9, 2))["counter"] == "5"
    called = commands.public_ticket(db, link["token"], KEY, tick(9, 2))
    assert (called["status"], called["position"], called["called_at"]) == ("called", None, "2026-12-07T09:01:00+03:00")
    commands.served(db, answer["ticket"]["id"], tick(9, 10), KEY, PUBLIC_URL)
    assert commands.public_ticket(db, link["token"], KEY, tick(9, 11))["status"] == "served"

    for made_up in ("nonsense-token", feedback.token_for(walked["id"], "another-key", feedback.TICKET),
                    feedback.token_for("no-such-ticket", KEY, feedback.TICKET)):
        with rejected("TICKET_NOT_FOUND", NotFound):
            commands.public_ticket(db, made_up, KEY, tick(9, 12))


def test_a_feedback_link_says_what_it_is_about_and_whether_it_was_used(db):
    walked = walk_in(db, PASSPORT, W1, tick(8, 45))
    token = feedback.token_for(walked["id"], KEY)
    assert commands.feedback_status(db, token, KEY)["served"] is False
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.call_next(db, BRANCH, "1", tick(9, 1))
    commands.served(db, walked["id"], tick(9, 5), KEY, PUBLIC_URL)
    status = commands.feedback_status(db, token, KEY)
    assert status == {"number": "P-001", "branch": BRANCH, "branch_name_en": "Isa Town branch",
                      "branch_name_ar": status["branch_name_ar"], "service": PASSPORT,
                      "service_name_en": "Passport renewal", "service_name_ar": status["service_name_ar"],
                      "date": "2026-12-07", "served": True, "rated": False}
    commands.rate(db, token, 4, None, KEY)
    assert commands.feedback_status(db, token, KEY)["rated"] is True
    for made_up in ("nonsense-token", feedback.token_for(walked["id"], "another-key"),
                    feedback.token_for(walked["id"], KEY, feedback.TICKET)):
        with rejected("FEEDBACK_TOKEN_UNKNOWN", NotFound):
            commands.feedback_status(db, made_up, KEY)
