"""The waiting room's rules (services/queue/domain.py): the decisions, and `evolve`, the one place a day changes.

Branch documents come from the real seed catalogue through catalogue_file.desired(). A day is built the way the
service builds it: the domain decides events, and domain.evolve folds each into the day as the store gives it
back (its payload passed through its contract, stamped with the instant it was recorded).
"""
import itertools
from dataclasses import FrozenInstanceError, replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared import schedule
from shared.clock import UTC, parse_instant
from shared.contracts import validated_payload
from shared.events import NewEvent
from shared.errors import Conflict, NotFound
from services.queue import domain
from services.queue.domain import Counter, Day, Policy, Ticket
from tests.unit.queue.conftest import BRANCH, MONDAY, PASSPORT, RESIDENCE, at

# 2026-12-11 is a Friday; 2026-12-16 is National Day (a Wednesday).
FRIDAY, HOLIDAY = date(2026, 12, 11), date(2026, 12, 16)
CPR, OTHER_CPR = "900112345", "851254321"


def refused(excinfo, code: str, status: int = 409) -> None:
    assert excinfo.value.code == code
    assert excinfo.value.status == status
    assert excinfo.value.message and excinfo.value.message_ar


# -- a day in memory, folded from the events the domain decides ------------------------------------------

def stored(event: NewEvent, now: datetime) -> SimpleNamespace:
    """A decided event as the store gives it back: its payload through its contract, recorded at `now`."""
    return SimpleNamespace(type=event.type, payload=validated_payload(event.type, 1, event.payload), occurred_at=now)


class Room:
    """One branch's day: ask the domain, fold what it decides."""

    def __init__(self, branch: dict, day: date = MONDAY):
        self.branch = branch
        self.day = Day(branch["id"], day)
        self.policy = Policy.of(branch)

    def record(self, events: list[NewEvent], now: datetime) -> list[NewEvent]:
        for event in events:
            assert event.payload["branch"] == self.day.branch and event.payload["day"] == self.day.day.isoformat()
            self.day = domain.evolve(self.day, stored(event, now))
        return events

    def ticket(self, ticket: Ticket) -> Ticket:
        """The ticket as it is now (tickets are values: each event makes a new one)."""
        return self.day.tickets[ticket.id]

    def walk_in(self, service: str, now: datetime, cpr: str = CPR, priority: str | None = None) -> Ticket:
        [event] = self.record(domain.check_in_walk_in(self.day, self.branch, service, cpr, "en", priority, now), now)
        return self.day.tickets[event.payload["ticket_id"]]

    def arrive(self, appointment: dict, now: datetime, priority: str | None = None) -> Ticket:
        self.record(domain.check_in_appointment(self.day, self.branch, appointment, appointment["cpr"], priority,
                                                now), now)
        return next(t for t in self.day.tickets.values() if t.reference == appointment["reference"])

    def open(self, counter: str, services: list[str], now: datetime) -> None:
        self.record(domain.open_counter(self.day, self.branch, counter, services), now)

    def call(self, counter: str, now: datetime) -> tuple[Ticket, str] | None:
        events = self.record(domain.call_next(self.day, self.branch, counter, now), now)
        return (self.day.tickets[events[0].payload["ticket_id"]], events[0].payload["lane"]) if events else None

    def serve(self, ticket: Ticket, now: datetime) -> NewEvent:
        [event] = self.record(domain.serve(self.day, self.ticket(ticket), now), now)
        return event


def who(called: tuple[Ticket, str] | None) -> tuple[str, str] | None:
    """A call as (ticket id, lane)."""
    return (called[0].id, called[1]) if called else None


_cprs = (f"9501{n:05d}" for n in itertools.count(1))  # born January 1995: valid CPRs, one per person


def appointment(hh: int, mm: int = 0, service: str = PASSPORT, reference: str = "ACDE-FGHJ", cpr: str | None = None,
                branch: str = BRANCH, status: str = "active", day: date = MONDAY) -> dict:
    """An appointment as the queue's projection of booking's events loads it."""
    start = at(hh, mm, day=day).astimezone(UTC)
    return {"reference": reference, "cpr": cpr or CPR, "branch": branch, "service": service, "start": start,
            "day": day.isoformat(), "status": status, "language": "ar"}


def next_cpr() -> str:
    return next(_cprs)


# -- the policy comes from the catalogue ----------------------------------------------------------------

def test_policy_comes_from_the_branch_document(branches):
    policy = Policy.of(branches[BRANCH])
    assert (policy.check_in_early_minutes, policy.check_in_late_minutes, policy.on_time_grace_minutes) == (30, 30, 10)
    assert (policy.appointments_per_walk_in, policy.max_recalls, policy.recall_interval_seconds) == (3, 2, 60)
    assert policy.walk_in_quota == {PASSPORT: 40, RESIDENCE: 40}
    assert Policy.of(branches["traffic-driving-school"]).walk_in_quota == {"licence-issue": 0}


# -- check-in with a booking -----------------------------------------------------------------------------

@pytest.mark.parametrize("found, cpr", [(None, CPR), (appointment(9), OTHER_CPR)])
def test_unknown_reference_or_wrong_cpr_is_not_found(branch, found, cpr):
    with pytest.raises(NotFound) as excinfo:
        domain.check_in_appointment(Day(BRANCH, MONDAY), branch, found, cpr, None, at(8, 50))
    refused(excinfo, "BOOKING_NOT_FOUND", 404)


def test_booking_of_another_branch_is_refused(branch):
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_appointment(Day(BRANCH, MONDAY), branch, appointment(9, branch="npra-security-complex"),
                                    CPR, None, at(8, 50))
    refused(excinfo, "WRONG_BRANCH")


def test_cancelled_booking_is_refused(branch):
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_appointment(Day(BRANCH, MONDAY), branch, appointment(9, status="cancelled"), CPR, None,
                                    at(8, 50))
    refused(excinfo, "BOOKING_CANCELLED")


def test_check_in_opens_thirty_minutes_before_the_appointment(branch):
    day = Day(BRANCH, MONDAY)
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_appointment(day, branch, appointment(9), CPR, None, at(8, 29, 59))
    refused(excinfo, "TOO_EARLY")
    assert "08:30" in excinfo.value.message and "2026-12-07" in excinfo.value.message
    [event] = domain.check_in_appointment(day, branch, appointment(9), CPR, None, at(8, 30))
    assert event.type == "queue.CustomerCheckedIn"
    assert event.payload["kind"] == "appointment" and event.payload["on_time"] is True
    assert event.payload["reference"] == "ACDE-FGHJ" and event.payload["service"] == PASSPORT
    assert parse_instant(event.payload["appointment_start"]) == at(9)


def test_check_in_closes_thirty_minutes_after_the_appointment(branch):
    day = Day(BRANCH, MONDAY)
    [event] = domain.check_in_appointment(day, branch, appointment(9), CPR, None, at(9, 30))
    assert event.payload["on_time"] is False
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_appointment(day, branch, appointment(9), CPR, None, at(9, 30, 1))
    refused(excinfo, "TOO_LATE")


@pytest.mark.parametrize("now, on_time", [(at(8, 45), True), (at(9), True), (at(9, 10), True),
                                          (at(9, 10, 1), False), (at(9, 25), False)])
def test_on_time_up_to_the_grace_after_the_start(branch, now, on_time):
    [event] = domain.check_in_appointment(Day(BRANCH, MONDAY), branch, appointment(9), CPR, None, now)
    assert event.payload["on_time"] is on_time


def test_a_second_check_in_keeps_the_same_ticket(branch):
    room = Room(branch)
    first = room.arrive(appointment(9), at(8, 50))
    assert domain.check_in_appointment(room.day, branch, appointment(9), CPR, None, at(8, 55)) == []
    assert room.arrive(appointment(9), at(8, 55)) is first
    assert len(room.day.tickets) == 1
    # even once the day has closed: the person is shown the ticket they have
    room.record(domain.close_day(room.day, [appointment(9)]), at(14))
    assert domain.check_in_appointment(room.day, branch, appointment(9), CPR, None, at(9)) == []
    assert room.arrive(appointment(9), at(9)).id == first.id


def test_no_check_in_once_the_day_has_closed(branch):
    room = Room(branch)
    room.record(domain.close_day(room.day, []), at(8))
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_appointment(room.day, branch, appointment(9), CPR, None, at(8, 50))
    refused(excinfo, "DAY_CLOSED")
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_walk_in(room.day, branch, PASSPORT, CPR, "en", None, at(9))
    refused(excinfo, "DAY_CLOSED")


# -- walk-ins ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("now", [at(6, 59), at(14), at(20), at(10, day=FRIDAY), at(10, day=HOLIDAY)],
                         ids=["before-opening", "at-closing", "evening", "friday", "national-day"])
def test_no_walk_in_while_the_branch_is_closed(branch, now):
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_walk_in(Day(BRANCH, now.date()), branch, PASSPORT, CPR, "en", None, now)
    refused(excinfo, "BRANCH_CLOSED")


def test_walk_in_while_open_gets_a_ticket(branch):
    room = Room(branch)
    ticket = room.walk_in(PASSPORT, at(7))
    assert (ticket.number, ticket.kind, ticket.on_time, ticket.reference) == ("P-001", "walk_in", False, None)
    assert room.walk_in(PASSPORT, at(13, 59), cpr=OTHER_CPR).number == "P-002"


def test_a_service_by_appointment_only_takes_no_walk_ins(branches):
    school = branches["traffic-driving-school"]
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_walk_in(Day(school["id"], MONDAY), school, "licence-issue", CPR, "en", None, at(9))
    refused(excinfo, "WALK_INS_NOT_TAKEN")


def test_walk_in_quota_counts_the_whole_day_per_service(branch):
    room = Room(branch)
    room.open("1", [PASSPORT], at(9))
    for minute in range(40):
        room.walk_in(PASSPORT, at(9, minute), cpr=next_cpr())
        if minute % 2:
            ticket, _ = room.call("1", at(9, minute))
            room.serve(ticket, at(9, minute, 30))  # a served walk-in still used one of the day's places
    assert len(room.day.waiting([PASSPORT])) == 20
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_walk_in(room.day, branch, PASSPORT, next_cpr(), "en", None, at(10))
    refused(excinfo, "WALK_IN_QUOTA_REACHED")
    assert room.walk_in(RESIDENCE, at(10)).number == "R-001"  # another service has its own quota


def test_a_transfer_does_not_move_a_walk_in_from_one_quota_to_another(branch):
    room = Room(branch)
    room.open("1", [PASSPORT, RESIDENCE], at(9))
    moved = room.walk_in(RESIDENCE, at(9))
    room.record(domain.transfer(room.day, branch, moved, PASSPORT), at(9))  # in the passport queue now
    quota = domain.Policy.of(branch).walk_in_quota[RESIDENCE]
    for minute in range(1, quota):
        room.walk_in(RESIDENCE, at(9, minute), cpr=next_cpr())
    with pytest.raises(Conflict) as excinfo:  # the transferred ticket still counts for the service it came for
        domain.check_in_walk_in(room.day, branch, RESIDENCE, next_cpr(), "en", None, at(10))
    refused(excinfo, "WALK_IN_QUOTA_REACHED")


def test_a_person_waits_once_per_service(branch):
    room = Room(branch)
    room.walk_in(PASSPORT, at(9))
    with pytest.raises(Conflict) as excinfo:
        domain.check_in_walk_in(room.day, branch, PASSPORT, CPR, "en", None, at(9, 5))
    refused(excinfo, "ALREADY_WAITING")
    assert room.walk_in(RESIDENCE, at(9, 5)).service == RESIDENCE


def test_walk_in_for_a_service_the_branch_does_not_offer(branch):
    with pytest.raises(NotFound) as excinfo:
        domain.check_in_walk_in(Day(BRANCH, MONDAY), branch, "licence-renewal", CPR, "en", None, at(9))
    refused(excinfo, "UNKNOWN_SERVICE", 404)


# -- numbering ------------------------------------------------------------------------------------------

def test_tickets_are_numbered_per_prefix_per_day(branch):
    room = Room(branch)
    numbers = [room.walk_in(PASSPORT, at(9), cpr=next_cpr()).number,
               room.walk_in(PASSPORT, at(9, 1), cpr=next_cpr()).number,
               room.walk_in(RESIDENCE, at(9, 2), cpr=next_cpr()).number,
               room.arrive(appointment(9, 30, service=RESIDENCE, cpr=next_cpr()), at(9, 3)).number,
               room.walk_in(PASSPORT, at(9, 4), cpr=next_cpr()).number]
    assert numbers == ["P-001", "P-002", "R-001", "R-002", "P-003"]
    tomorrow = Room(branch, MONDAY + timedelta(days=1))
    assert tomorrow.walk_in(PASSPORT, at(9, day=MONDAY + timedelta(days=1))).number == "P-001"


def test_a_transferred_ticket_keeps_its_number(branch):
    room = Room(branch)
    moved = room.walk_in(PASSPORT, at(9), cpr=next_cpr())
    room.walk_in(PASSPORT, at(9, 1), cpr=next_cpr())
    room.record(domain.transfer(room.day, branch, moved, RESIDENCE), at(9, 5))
    moved = room.ticket(moved)
    assert (moved.number, moved.service, moved.queued_at) == ("P-001", RESIDENCE, at(9))
    assert room.walk_in(RESIDENCE, at(9, 6), cpr=next_cpr()).number == "R-001"
    assert room.walk_in(PASSPORT, at(9, 7), cpr=next_cpr()).number == "P-003"
    assert [t.number for t in domain.line(room.day, RESIDENCE, at(9, 8))] == ["P-001", "R-001"]


def test_a_transferred_ticket_keeps_its_check_in_time_in_the_new_line(branch):
    room = Room(branch)
    for minute in range(3):
        room.walk_in(PASSPORT, at(9, minute), cpr=next_cpr())
    later = room.walk_in(RESIDENCE, at(9, 5), cpr=next_cpr())
    moved = next(t for t in room.day.tickets.values() if t.number == "P-003")
    room.record(domain.transfer(room.day, branch, moved, RESIDENCE), at(9, 10))
    assert [t.number for t in domain.line(room.day, RESIDENCE, at(9, 11))] == ["P-003", "R-001"]
    room.open("R", [RESIDENCE], at(9, 11))
    assert who(room.call("R", at(9, 11))) == (moved.id, "walk_in")
    room.serve(moved, at(9, 20))
    assert who(room.call("R", at(9, 20))) == (later.id, "walk_in")


# -- who is called next ----------------------------------------------------------------------------------

def test_priority_groups_go_first(branch):
    room = Room(branch)
    room.walk_in(PASSPORT, at(8, 40), cpr=next_cpr())
    room.arrive(appointment(9, cpr=next_cpr()), at(8, 45))
    elderly = room.walk_in(PASSPORT, at(8, 59), cpr=next_cpr(), priority="elderly")
    assert domain.pick_next(room.day, [PASSPORT], at(9), room.policy) == (elderly, "priority")


def test_due_appointments_go_before_walk_ins(branch):
    room = Room(branch)
    walk_in = room.walk_in(PASSPORT, at(8, 40), cpr=next_cpr())
    booked = room.arrive(appointment(9, cpr=next_cpr()), at(8, 50))
    assert domain.pick_next(room.day, [PASSPORT], at(9), room.policy) == (booked, "appointment")
    # before its time the appointment is early: the walk-in who is here goes first
    assert domain.pick_next(room.day, [PASSPORT], at(8, 55), room.policy) == (walk_in, "walk_in")


def test_early_appointments_wait_for_their_time_unless_nobody_else_waits(branch):
    room = Room(branch)
    early = room.arrive(appointment(9, 30, cpr=next_cpr()), at(9, 5))
    assert early.on_time and early.lane(at(9, 10)) == "early"
    walk_in = room.walk_in(PASSPORT, at(9, 8), cpr=next_cpr())
    assert domain.pick_next(room.day, [PASSPORT], at(9, 10), room.policy) == (walk_in, "walk_in")
    room.open("1", [PASSPORT], at(9, 10))
    room.call("1", at(9, 10))
    room.serve(walk_in, at(9, 12))
    assert domain.pick_next(room.day, [PASSPORT], at(9, 12), room.policy) == (early, "early")


def test_late_appointments_queue_with_walk_ins_by_check_in_time(branch):
    room = Room(branch)
    first = room.walk_in(PASSPORT, at(9, 12), cpr=next_cpr())
    late = room.arrive(appointment(9, cpr=next_cpr()), at(9, 15))
    last = room.walk_in(PASSPORT, at(9, 20), cpr=next_cpr())
    assert not late.on_time and late.lane(at(9, 21)) == "walk_in"
    assert [t.id for t in domain.line(room.day, PASSPORT, at(9, 21))] == [first.id, late.id, last.id]
    room.open("1", [PASSPORT], at(9, 21))
    called = []
    for minute in (21, 22, 23):
        ticket, lane = room.call("1", at(9, minute))
        room.serve(ticket, at(9, minute))
        called.append((ticket.id, lane))
    assert called == [(first.id, "walk_in"), (late.id, "walk_in"), (last.id, "walk_in")]


def test_first_come_first_served_within_a_group(branch):
    room = Room(branch)
    # appointments: by check-in time, not by appointment time
    later_slot = room.arrive(appointment(9, reference="AAAA-0001", cpr=next_cpr()), at(8, 40))
    earlier_slot = room.arrive(appointment(8, 45, reference="AAAA-0002", cpr=next_cpr()), at(8, 50))
    walk_ins = [room.walk_in(PASSPORT, at(8, 41 + n), cpr=next_cpr()) for n in range(3)]
    room.open("1", [PASSPORT], at(9))
    order = []
    while (called := room.call("1", at(9, 5))) is not None:
        room.serve(called[0], at(9, 5))
        order.append(called[0].id)
    assert order == [later_slot.id, earlier_slot.id] + [t.id for t in walk_ins]


def test_a_walk_in_is_called_after_every_three_appointments(branch):
    room = Room(branch)
    appointments = [room.arrive(appointment(9, reference=f"APPT-{n:04d}", cpr=next_cpr()), at(8, 40 + n))
                    for n in range(7)]
    walk_ins = [room.walk_in(PASSPORT, at(8, 30 + n), cpr=next_cpr()) for n in range(2)]
    room.open("1", [PASSPORT], at(9))
    lanes, counts = [], []
    for minute in range(9):
        ticket, lane = room.call("1", at(9, minute))
        room.serve(ticket, at(9, minute, 30))
        lanes.append(lane)
        counts.append(room.day.appointments_since_walk_in)
    assert lanes == ["appointment"] * 3 + ["walk_in"] + ["appointment"] * 3 + ["walk_in", "appointment"]
    assert counts == [1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [room.ticket(t).status for t in appointments + walk_ins] == ["served"] * 9


def test_fairness_counts_only_when_both_wait(branch):
    room = Room(branch)
    for n in range(5):
        room.arrive(appointment(9, reference=f"APPT-{n:04d}", cpr=next_cpr()), at(8, 40 + n))
    room.open("1", [PASSPORT], at(9))
    lanes = []
    for minute in range(4):  # no walk-in waits: appointments go on
        ticket, lane = room.call("1", at(9, minute))
        room.serve(ticket, at(9, minute, 30))
        lanes.append(lane)
    assert lanes == ["appointment"] * 4 and room.day.appointments_since_walk_in == 4
    walk_in = room.walk_in(PASSPORT, at(9, 5), cpr=next_cpr())
    assert who(room.call("1", at(9, 6))) == (walk_in.id, "walk_in")  # the first walk-in to come goes next


def test_a_counter_gets_only_tickets_of_its_services(branch):
    room = Room(branch)
    passport = room.walk_in(PASSPORT, at(9), cpr=next_cpr())
    residence = room.walk_in(RESIDENCE, at(9, 5), cpr=next_cpr())
    room.open("R", [RESIDENCE], at(9, 10))
    room.open("P", [PASSPORT], at(9, 10))
    assert who(room.call("R", at(9, 10))) == (residence.id, "walk_in")
    room.serve(residence, at(9, 15))
    assert room.call("R", at(9, 15)) is None  # the passport ticket still waits for a passport counter
    assert room.ticket(passport).status == "waiting"
    assert who(room.call("P", at(9, 15))) == (passport.id, "walk_in")


# -- calls ---------------------------------------------------------------------------------------------

def test_a_closed_or_unknown_counter_cannot_call(branch):
    room = Room(branch)
    room.walk_in(PASSPORT, at(9))
    with pytest.raises(Conflict) as excinfo:
        domain.call_next(room.day, branch, "1", at(9, 1))
    refused(excinfo, "COUNTER_CLOSED")
    room.open("1", [PASSPORT], at(9, 1))
    room.record(domain.close_counter(room.day, "1"), at(9, 2))
    with pytest.raises(Conflict) as excinfo:
        domain.call_next(room.day, branch, "1", at(9, 3))
    refused(excinfo, "COUNTER_CLOSED")


def test_a_busy_counter_cannot_call_and_an_idle_one_may_find_nobody(branch):
    room = Room(branch)
    room.open("1", [PASSPORT, RESIDENCE], at(9))
    assert domain.call_next(room.day, branch, "1", at(9)) == []
    ticket = room.walk_in(PASSPORT, at(9, 1))
    room.walk_in(RESIDENCE, at(9, 1, 30))
    assert room.call("1", at(9, 2))[0].id == ticket.id
    with pytest.raises(Conflict) as excinfo:
        domain.call_next(room.day, branch, "1", at(9, 3))
    refused(excinfo, "COUNTER_BUSY")
    assert ticket.number in excinfo.value.message
    with pytest.raises(Conflict) as excinfo:
        domain.close_counter(room.day, "1")
    refused(excinfo, "COUNTER_BUSY")


def test_a_call_names_the_ticket_counter_and_lane(branch):
    room = Room(branch)
    ticket = room.walk_in(RESIDENCE, at(9))
    room.open("2", [RESIDENCE], at(9, 1))
    [event] = domain.call_next(room.day, branch, "2", at(9, 4))
    assert event.type == "queue.TicketCalled"
    assert event.payload == {"branch": BRANCH, "day": "2026-12-07", "ticket_id": ticket.id, "counter": "2",
                             "number": "R-001", "service": RESIDENCE, "lane": "walk_in"}


# -- recalls and no-shows ------------------------------------------------------------------------------

@pytest.fixture
def called(branch):
    room = Room(branch)
    ticket = room.walk_in(PASSPORT, at(9))
    room.open("1", [PASSPORT], at(9))
    room.call("1", at(9, 10))
    return room, ticket


def test_only_a_called_ticket_is_recalled(branch):
    room = Room(branch)
    ticket = room.walk_in(PASSPORT, at(9))
    with pytest.raises(Conflict) as excinfo:
        domain.recall(room.day, branch, ticket, at(9, 5))
    refused(excinfo, "TICKET_NOT_CALLED")


def test_recalls_are_spaced_and_limited(branch, called):
    room, ticket = called
    with pytest.raises(Conflict) as excinfo:
        domain.recall(room.day, branch, room.ticket(ticket), at(9, 10, 59))
    refused(excinfo, "RECALL_TOO_SOON")
    assert "1 more seconds" in excinfo.value.message
    [event] = room.record(domain.recall(room.day, branch, room.ticket(ticket), at(9, 11)), at(9, 11))
    assert event.payload["recall"] == 1 and event.payload["counter"] == "1"
    with pytest.raises(Conflict) as excinfo:
        domain.recall(room.day, branch, room.ticket(ticket), at(9, 11, 30))  # the interval runs from the last call
    refused(excinfo, "RECALL_TOO_SOON")
    [event] = room.record(domain.recall(room.day, branch, room.ticket(ticket), at(9, 12)), at(9, 12))
    assert event.payload["recall"] == 2
    with pytest.raises(Conflict) as excinfo:
        domain.recall(room.day, branch, room.ticket(ticket), at(9, 30))
    refused(excinfo, "RECALL_LIMIT")


def test_an_unanswered_last_recall_becomes_a_no_show_after_the_interval(branch, called):
    room, ticket = called
    assert domain.unanswered(room.day, branch, at(12)) == []  # not recalled: the clerk decides
    room.record(domain.recall(room.day, branch, room.ticket(ticket), at(9, 11)), at(9, 11))
    assert domain.unanswered(room.day, branch, at(12)) == []  # recalls left
    room.record(domain.recall(room.day, branch, room.ticket(ticket), at(9, 12)), at(9, 12))
    assert domain.unanswered(room.day, branch, at(9, 12, 59)) == []
    [event] = domain.unanswered(room.day, branch, at(9, 13))
    assert event.type == "queue.TicketNoShow"
    assert (event.payload["ticket_id"], event.payload["reason"], event.payload["counter"]) == \
        (ticket.id, "no_answer_after_recalls", "1")
    room.record([event], at(9, 13))
    assert room.ticket(ticket).status == "no_show" and room.day.counters["1"].serving is None
    assert domain.unanswered(room.day, branch, at(9, 20)) == []


# -- serve, no-show, transfer, rate ---------------------------------------------------------------------

def test_serve_and_no_show_need_a_called_ticket(branch):
    room = Room(branch)
    ticket = room.walk_in(PASSPORT, at(9))
    for decide in (lambda: domain.serve(room.day, ticket, at(9, 5)), lambda: domain.no_show(room.day, ticket)):
        with pytest.raises(Conflict) as excinfo:
            decide()
        refused(excinfo, "TICKET_NOT_CALLED")


def test_served_measures_waiting_and_service_time(branch, called):
    room, ticket = called  # checked in 09:00, called 09:10
    room.record(domain.recall(room.day, branch, room.ticket(ticket), at(9, 11)), at(9, 11))
    event = room.serve(ticket, at(9, 23, 30))
    assert event.type == "queue.TicketServed"
    assert event.payload["wait_seconds"] == 600
    assert event.payload["service_seconds"] == 750  # from the call that brought the person to the counter
    ticket = room.ticket(ticket)
    assert (ticket.status, room.day.counters["1"].serving) == ("served", None)
    for decide in (lambda: domain.serve(room.day, ticket, at(9, 30)), lambda: domain.no_show(room.day, ticket)):
        with pytest.raises(Conflict) as excinfo:
            decide()
        refused(excinfo, "TICKET_NOT_CALLED")


def test_a_no_show_frees_the_counter(branch, called):
    room, ticket = called
    [event] = room.record(domain.no_show(room.day, room.ticket(ticket)), at(9, 12))
    assert event.payload["reason"] == "clerk"
    assert room.ticket(ticket).status == "no_show" and room.day.counters["1"].serving is None


def test_transfer_moves_a_waiting_or_called_ticket_only(branch, called):
    room, ticket = called
    with pytest.raises(Conflict) as excinfo:
        domain.transfer(room.day, branch, ticket, PASSPORT)
    refused(excinfo, "SAME_SERVICE")
    with pytest.raises(NotFound) as excinfo:
        domain.transfer(room.day, branch, ticket, "licence-renewal")
    refused(excinfo, "UNKNOWN_SERVICE", 404)
    [event] = room.record(domain.transfer(room.day, branch, room.ticket(ticket), RESIDENCE), at(9, 15))
    assert (event.payload["from_service"], event.payload["to_service"], event.payload["counter"]) == \
        (PASSPORT, RESIDENCE, "1")
    ticket = room.ticket(ticket)
    assert (ticket.status, ticket.service, ticket.number) == ("waiting", RESIDENCE, "P-001")
    assert room.day.counters["1"].serving is None
    served = room.walk_in(PASSPORT, at(9, 16))
    room.call("1", at(9, 17))
    room.serve(served, at(9, 20))
    no_show = room.walk_in(PASSPORT, at(9, 21), cpr=OTHER_CPR)
    room.call("1", at(9, 22))
    room.record(domain.no_show(room.day, room.ticket(no_show)), at(9, 25))
    for finished in (served, no_show):
        with pytest.raises(Conflict) as excinfo:
            domain.transfer(room.day, branch, room.ticket(finished), RESIDENCE)
        refused(excinfo, "TICKET_FINISHED")


def test_only_a_served_visit_is_rated_and_only_once(branch, called):
    room, ticket = called
    with pytest.raises(Conflict) as excinfo:
        domain.rate(room.day, room.ticket(ticket), 5, None)
    refused(excinfo, "VISIT_NOT_SERVED")
    room.serve(ticket, at(9, 25))
    [event] = room.record(domain.rate(room.day, room.ticket(ticket), 4, "Quick and polite"), at(10))
    assert event.payload["score"] == 4 and event.payload["comment"] == "Quick and polite"
    assert (event.payload["wait_seconds"], event.payload["service_seconds"]) == (600, 900)
    with pytest.raises(Conflict) as excinfo:
        domain.rate(room.day, room.ticket(ticket), 1, "again")
    refused(excinfo, "FEEDBACK_ALREADY_GIVEN")


# -- the end of the day ---------------------------------------------------------------------------------

def test_close_day_closes_out_tickets_and_counters_and_names_missed_appointments(branch):
    room = Room(branch)
    came = appointment(9, reference="CAME-0001", cpr=next_cpr())
    missed_late = appointment(11, reference="MISS-0002", cpr=next_cpr())
    missed_early = appointment(8, reference="MISS-0001", service=RESIDENCE, cpr=next_cpr())
    cancelled = appointment(10, reference="GONE-0001", cpr=next_cpr(), status="cancelled")
    served = room.arrive(came, at(8, 50))
    called = room.walk_in(RESIDENCE, at(9), cpr=next_cpr())
    waiting = room.walk_in(PASSPORT, at(9, 1), cpr=next_cpr())
    room.open("1", [PASSPORT], at(9))
    room.open("2", [RESIDENCE], at(9))
    room.open("3", [PASSPORT], at(9))
    room.record(domain.close_counter(room.day, "3"), at(9, 5))
    room.call("1", at(9, 2))
    room.serve(served, at(9, 20))
    room.call("2", at(9, 21))
    events = domain.close_day(room.day, [came, missed_late, missed_early, cancelled])
    assert [e.type for e in events] == ["queue.TicketClosedOut", "queue.TicketClosedOut", "queue.CounterClosed",
                                        "queue.CounterClosed", "queue.AppointmentMissed",
                                        "queue.AppointmentMissed", "queue.DayClosed"]
    assert {(e.payload["ticket_id"], e.payload["status"]) for e in events[:2]} == \
        {(called.id, "called"), (waiting.id, "waiting")}
    assert sorted(e.payload["counter"] for e in events[2:4]) == ["1", "2"]
    assert [(e.payload["reference"], e.payload["service"]) for e in events[4:6]] == \
        [("MISS-0001", RESIDENCE), ("MISS-0002", PASSPORT)]
    assert parse_instant(events[4].payload["start"]) == at(8)
    assert all(e.payload["branch"] == BRANCH and e.payload["day"] == "2026-12-07" for e in events)
    room.record(events, at(14))
    assert room.day.closed and {room.ticket(called).status, room.ticket(waiting).status} == {"closed_out"}
    assert not any(c.open for c in room.day.counters.values())
    assert domain.close_day(room.day, [came, missed_late, missed_early, cancelled]) == []


def test_an_empty_day_closes_with_one_event(branch):
    [event] = domain.close_day(Day(BRANCH, MONDAY), [])
    assert event.type == "queue.DayClosed" and event.payload == {"branch": BRANCH, "day": "2026-12-07"}


# -- how each event changes the day (evolve) -------------------------------------------------------------

def happened(type_: str, day: Day, now: datetime, **payload) -> SimpleNamespace:
    """A queue event of `day`, as stored at `now`."""
    return stored(NewEvent(f"queue.{type_}", {"branch": day.branch, "day": day.day.isoformat(), **payload}), now)


@pytest.fixture
def waiting(branch):
    room = Room(branch)
    room.open("1", [PASSPORT], at(9))
    return room, room.walk_in(PASSPORT, at(9))


def test_a_check_in_adds_a_waiting_ticket_as_of_its_instant(branch):
    day = Day(BRANCH, MONDAY)
    [event] = domain.check_in_appointment(day, branch, appointment(9), CPR, "disabled", at(8, 50))
    after = domain.evolve(day, stored(event, at(8, 50, 5)))
    assert after.tickets == {event.payload["ticket_id"]: Ticket(
        id=event.payload["ticket_id"], number="P-001", seq=1, service=PASSPORT, kind="appointment", priority="disabled",
        status="waiting", queued_at=at(8, 50, 5), on_time=True, cpr=CPR, language="ar", reference="ACDE-FGHJ",
        checked_in_for=PASSPORT, appointment_start=at(9), waiting_since=at(8, 50, 5))}
    assert day.tickets == {}  # the day it was given is as it was


@pytest.mark.parametrize("lane, since_walk_in", [("appointment", 3), ("walk_in", 0), ("priority", 2), ("early", 2)])
def test_a_call_ends_the_wait_busies_the_counter_and_counts_for_fairness(waiting, lane, since_walk_in):
    room, ticket = waiting
    day = replace(room.day, appointments_since_walk_in=2)
    after = domain.evolve(day, happened("TicketCalled", day, at(9, 12, 30), ticket_id=ticket.id, counter="1",
                                        number=ticket.number, service=PASSPORT, lane=lane))
    called = after.tickets[ticket.id]
    assert (called.status, called.counter, called.waited_seconds, called.waiting_since) == ("called", "1", 750, None)
    assert called.first_called_at == called.last_called_at == at(9, 12, 30)
    assert after.counters["1"].serving == ticket.id and after.appointments_since_walk_in == since_walk_in


def test_a_recall_counts_and_calls_again_keeping_the_first_call(called):
    room, ticket = called  # called at 09:10
    after = domain.evolve(room.day, happened("TicketRecalled", room.day, at(9, 11), ticket_id=ticket.id, counter="1",
                                             recall=1))
    recalled = after.tickets[ticket.id]
    assert (recalled.status, recalled.recalls, recalled.first_called_at, recalled.last_called_at) == \
        ("called", 1, at(9, 10), at(9, 11))
    assert after.counters is room.day.counters


@pytest.mark.parametrize("type_, payload, expected", [
    ("TicketServed", {"counter": "1", "service": PASSPORT, "wait_seconds": 600, "service_seconds": 300},
     {"status": "served", "served_at": at(9, 15), "service_seconds": 300, "counter": "1"}),
    ("TicketNoShow", {"counter": "1", "reason": "clerk"}, {"status": "no_show", "counter": "1"}),
    ("TicketClosedOut", {"status": "called"}, {"status": "closed_out", "counter": "1"}),
])
def test_a_called_ticket_that_ends_frees_its_counter(called, type_, payload, expected):
    room, ticket = called
    after = domain.evolve(room.day, happened(type_, room.day, at(9, 15), ticket_id=ticket.id, **payload))
    ended = after.tickets[ticket.id]
    assert {name: getattr(ended, name) for name in expected} == expected
    assert after.counters["1"].serving is None and room.day.counters["1"].serving == ticket.id


def test_a_waiting_ticket_closed_out_stops_waiting(waiting):
    room, ticket = waiting
    after = domain.evolve(room.day, happened("TicketClosedOut", room.day, at(14), ticket_id=ticket.id,
                                             status="waiting"))
    assert (after.tickets[ticket.id].status, after.tickets[ticket.id].waiting_since) == ("closed_out", None)
    assert after.counters is room.day.counters  # no counter was serving it


def test_a_transfer_keeps_the_time_waited_and_starts_the_calls_again(called):
    room, ticket = called  # waited 09:00-09:10, then called
    day = domain.evolve(room.day, happened("TicketRecalled", room.day, at(9, 11), ticket_id=ticket.id, counter="1",
                                           recall=1))
    day = domain.evolve(day, happened("TicketTransferred", day, at(9, 12), ticket_id=ticket.id,
                                      from_service=PASSPORT, to_service=RESIDENCE, counter="1"))
    moved = day.tickets[ticket.id]
    assert (moved.service, moved.status, moved.counter, moved.recalls, moved.waited_seconds, moved.waiting_since) == \
        (RESIDENCE, "waiting", None, 0, 600, at(9, 12))
    assert (moved.queued_at, moved.checked_in_for, day.counters["1"].serving) == (at(9), PASSPORT, None)
    day = domain.evolve(day, happened("TicketTransferred", day, at(9, 20), ticket_id=ticket.id,
                                      from_service=RESIDENCE, to_service=PASSPORT, counter=None))
    assert (day.tickets[ticket.id].waited_seconds, day.tickets[ticket.id].waiting_since) == (1080, at(9, 20))


def test_a_rating_is_kept_with_the_visit(called):
    room, ticket = called
    room.serve(ticket, at(9, 20))
    after = domain.evolve(room.day, happened("SatisfactionRated", room.day, at(10), ticket_id=ticket.id,
                                             service=PASSPORT, score=5, comment="شكرًا", wait_seconds=600,
                                             service_seconds=600))
    rated = after.tickets[ticket.id]
    assert (rated.score, rated.comment, rated.status) == (5, "شكرًا", "served")


def test_a_counter_opens_closes_and_opens_again_for_other_services():
    day = Day(BRANCH, MONDAY)
    day = domain.evolve(day, happened("CounterOpened", day, at(9), counter="1", services=[RESIDENCE, PASSPORT]))
    assert day.counters == {"1": Counter("1", [PASSPORT, RESIDENCE], open=True, serving=None)}
    day = domain.evolve(day, happened("CounterClosed", day, at(10), counter="1"))
    assert day.counters == {"1": Counter("1", [PASSPORT, RESIDENCE], open=False)}
    day = domain.evolve(day, happened("CounterOpened", day, at(11), counter="1", services=[RESIDENCE]))
    assert day.counters == {"1": Counter("1", [RESIDENCE], open=True)}
    assert domain.evolve(day, happened("CounterClosed", day, at(12), counter="9")).counters == day.counters


def test_a_counter_opened_again_for_other_services_keeps_the_ticket_it_serves(called):
    room, ticket = called
    after = domain.evolve(room.day, happened("CounterOpened", room.day, at(9, 11), counter="1",
                                             services=[PASSPORT, RESIDENCE]))
    assert after.counters["1"] == Counter("1", [PASSPORT, RESIDENCE], open=True, serving=ticket.id)


def test_the_day_closes_and_a_missed_appointment_leaves_the_room_as_it_was():
    day = Day(BRANCH, MONDAY)
    missed = happened("AppointmentMissed", day, at(14), reference="ACDE-FGHJ", service=PASSPORT,
                      start=at(9).isoformat())
    assert domain.evolve(day, missed) is day
    assert domain.evolve(day, happened("DayClosed", day, at(14))).closed and not day.closed


def test_evolve_copies_what_an_event_changes_and_shares_the_rest(branch):
    room = Room(branch)
    first, second = room.walk_in(PASSPORT, at(9)), room.walk_in(PASSPORT, at(9, 1), cpr=OTHER_CPR)
    room.open("1", [PASSPORT], at(9, 2))
    before = room.day
    ticket, _ = room.call("1", at(9, 3))
    assert ticket.id == first.id and before.tickets[first.id] is first and first.status == "waiting"
    assert before.counters["1"].serving is None and room.day.counters["1"].serving == first.id
    assert room.day.tickets[second.id] is before.tickets[second.id]
    with pytest.raises(FrozenInstanceError):
        ticket.status = "served"


# -- estimates -----------------------------------------------------------------------------------------

def test_estimated_wait_from_the_catalogue_then_from_measured_service_times(branch):
    room = Room(branch)
    assert domain.estimated_wait_minutes(room.day, branch, PASSPORT, 1) == 0
    assert domain.estimated_wait_minutes(room.day, branch, PASSPORT, 3) == 40  # 2 ahead x 20 min, 1 counter
    assert domain.estimated_wait_minutes(room.day, branch, RESIDENCE, 2) == 30
    room.open("1", [PASSPORT], at(9))
    for minute, lasted in ((0, 10), (20, 14)):
        ticket = room.walk_in(PASSPORT, at(9, minute), cpr=next_cpr())
        room.call("1", at(9, minute))
        room.serve(ticket, at(9, minute + lasted))
    assert domain.average_service_minutes(room.day, PASSPORT, 20) == 12
    assert domain.estimated_wait_minutes(room.day, branch, PASSPORT, 1) == 0
    assert domain.estimated_wait_minutes(room.day, branch, PASSPORT, 3) == 24   # measured: 12 min a visit
    assert domain.estimated_wait_minutes(room.day, branch, RESIDENCE, 2) == 30  # not measured yet


def test_estimated_wait_divides_by_the_open_counters_of_the_service(branch):
    room = Room(branch)
    room.open("1", [PASSPORT], at(9))
    room.open("2", [PASSPORT, RESIDENCE], at(9))
    room.open("3", [RESIDENCE], at(9))
    room.open("4", [PASSPORT], at(9))
    room.record(domain.close_counter(room.day, "4"), at(9))
    assert [domain.estimated_wait_minutes(room.day, branch, PASSPORT, n) for n in (1, 2, 3, 4, 5)] == \
        [0, 20, 20, 40, 40]
    assert [domain.estimated_wait_minutes(room.day, branch, RESIDENCE, n) for n in (1, 2, 3, 4)] == [0, 30, 30, 60]


# -- opening hours in local time -------------------------------------------------------------------------

@pytest.mark.parametrize("instant, open_", [
    (datetime(2026, 12, 7, 3, 59, tzinfo=UTC), False),   # 06:59 in Bahrain
    (datetime(2026, 12, 7, 4, 0, tzinfo=UTC), True),     # 07:00
    (datetime(2026, 12, 7, 10, 59, tzinfo=UTC), True),   # 13:59
    (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), False),   # 14:00
    (datetime(2026, 12, 6, 22, 0, tzinfo=UTC), False),   # 01:00 on Monday, Sunday evening in UTC
    (datetime(2026, 12, 11, 7, 0, tzinfo=UTC), False),   # Friday 10:00
    (datetime(2026, 12, 16, 7, 0, tzinfo=UTC), False),   # National Day 10:00
    (datetime(2026, 12, 15, 21, 30, tzinfo=UTC), False),  # 00:30 on National Day
])
def test_is_open_reads_local_time(branch, instant, open_):
    assert schedule.is_open(branch, instant) is open_


def test_mall_branches_close_between_their_periods(branches):
    mall = branches["traffic-dana-mall"]
    assert [schedule.is_open(mall, at(hh, mm)) for hh, mm in ((8, 59), (9, 0), (12, 59), (13, 0), (15, 59), (16, 0),
                                                             (20, 59), (21, 0))] == \
        [False, True, True, False, False, True, True, False]
    assert schedule.closing_time(mall, MONDAY) == at(21)


def test_closing_time_is_the_end_of_the_last_period(branch):
    closes = schedule.closing_time(branch, MONDAY)
    assert closes == at(14) and closes.astimezone(UTC) == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    assert closes.utcoffset() == timedelta(hours=3)
    assert schedule.closing_time(branch, FRIDAY) is None
    assert schedule.closing_time(branch, FRIDAY + timedelta(days=1)) is None
    assert schedule.closing_time(branch, HOLIDAY) is None


def test_local_day_of_an_instant():
    assert schedule.local_day(datetime(2026, 12, 6, 21, 30, tzinfo=UTC)) == MONDAY  # 00:30 on Monday in Bahrain
    assert schedule.local_day(datetime(2026, 12, 7, 20, 59, tzinfo=UTC)) == MONDAY
