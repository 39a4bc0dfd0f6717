"""The queue's tables (services/queue/projection.py) on both backends: the appointments it learns from booking's
events, and the waiting room, written from what domain.evolve decides; the log projected into empty tables gives
the same rows."""
from datetime import timedelta

import sqlalchemy as sa

from shared import vault
from shared.projection import compare
from services.queue import commands, projection, replay
from tests.unit.queue.conftest import (BRANCH, KEY, MONDAY, PASSPORT, PUBLIC_URL, RESIDENCE, a_day_of_every_kind,
                                       appointment_status, arrive, at, book, cancel, delivered, from_booking,
                                       queue_events, tick, walk_in)


# -- appointments, from booking's events ------------------------------------------------------------------

def test_booking_events_keep_the_days_appointments(db):
    tuesday = MONDAY + timedelta(days=1)
    book(db, "ACDE-FGHJ", "900112345", PASSPORT, 9, language="en")
    book(db, "KMNP-QRTW", "851254321", RESIDENCE, 9)
    book(db, "XY34-679A", "880312345", PASSPORT, 10)
    cancel(db, "KMNP-QRTW", RESIDENCE, 9)
    from_booking(db, "booking.BookingRescheduled", {
        "reference": "XY34-679A", "branch": BRANCH, "service": PASSPORT, "previous_start": at(10).isoformat(),
        "start": at(11, 40, day=tuesday).isoformat(), "end": at(12, day=tuesday).isoformat()})
    assert appointment_status(db) == {"ACDE-FGHJ": "active", "KMNP-QRTW": "cancelled", "XY34-679A": "active"}
    with db.transaction() as uow:
        monday = {a["reference"]: a for a in projection.appointments_of(uow, BRANCH, MONDAY)}
        moved = projection.load_appointment(uow, "XY34-679A")
    assert sorted(monday) == ["ACDE-FGHJ", "KMNP-QRTW"]
    due = monday["ACDE-FGHJ"]
    assert (due["cpr"], due["subject"], due["service"], due["start"], due["language"]) == \
        ("900112345", vault.subject_of("900112345"), PASSPORT, at(9), "en")
    assert (moved["day"], moved["start"]) == ("2026-12-08", at(11, 40, day=tuesday))


def test_a_person_erased_by_booking_is_forgotten_by_the_queue_too(db):
    ticket = walk_in(db, PASSPORT, "900112345", tick(9))
    walk_in(db, PASSPORT, "900112346", tick(9, 1))
    erased = delivered("booking.PersonErased", {"subject": vault.subject_of("900112345")}, "person-x")
    with db.transaction() as uow:
        projection.apply_booking_event(uow, erased)
    cprs = {e.payload["ticket_id"]: e.payload["cpr"] for e in queue_events(db) if e.type == "queue.CustomerCheckedIn"}
    assert cprs[ticket["id"]] == "[erased]" and "900112346" in cprs.values()  # the log reads erased; others stay
    with db.transaction() as uow:
        day = projection.load_day(uow, BRANCH, MONDAY)
    assert day.tickets[ticket["id"]].cpr == "[erased]" and len(day.waiting()) == 2  # the queue itself is unchanged


def test_a_day_kept_since_before_an_erasure_never_writes_the_cpr_back(db):
    """Tables are written in the columns an event changed only: a command deciding on a day it kept from before
    the erasure (another replica's, say) changes the ticket's status, and its CPR stays erased."""
    ticket = walk_in(db, PASSPORT, "900112345", tick(9))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    erased = delivered("booking.PersonErased", {"subject": vault.subject_of("900112345")}, "person-x")
    with db.transaction() as uow:
        projection.apply_booking_event(uow, erased)
    commands.call_next(db, BRANCH, "1", tick(9, 1))
    tickets = projection.tickets
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tickets).where(tickets.c.id == ticket["id"])).one()
    assert (row.status, row.counter, row.cpr, row.subject) == ("called", "1", "[erased]", vault.subject_of("900112345"))


# -- the waiting room, from the queue's own events --------------------------------------------------------

def test_the_log_projected_into_empty_tables_gives_the_same_rows(db):
    a_day_of_every_kind(db)
    with replay.scratch(db) as fresh:
        with fresh.transaction() as uow:
            for event in queue_events(db):
                projection.project(uow, event)
        assert {name: compare(db, fresh, name, set()) for name in ("tickets", "counters", "days")} == \
            {"tickets": None, "counters": None, "days": None}
    assert appointment_status(db)["XY34-679A"] == "missed"


def test_the_day_counts_appointments_since_the_last_walk_in(db):
    now = tick(8, 40)
    for n in range(5):
        book(db, f"APPT-{n:04d}", f"9201{n:05d}", PASSPORT, 9)
        arrive(db, f"APPT-{n:04d}", f"9201{n:05d}", now)
    walk_ins = [walk_in(db, PASSPORT, cpr, tick(8, 50))["id"] for cpr in ("900212345", "900312345")]
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    lanes = []
    for minute in range(7):
        called = commands.call_next(db, BRANCH, "1", tick(9, minute))
        commands.served(db, called["ticket"]["id"], tick(9, minute, 30), KEY, PUBLIC_URL)
        lanes.append(called["lane"])
    assert lanes == ["appointment"] * 3 + ["walk_in"] + ["appointment"] * 2 + ["walk_in"]
    calls = [e.payload for e in queue_events(db) if e.type == "queue.TicketCalled"]
    assert [c["ticket_id"] for c in calls if c["lane"] == "walk_in"] == walk_ins
    with db.transaction() as uow:
        assert projection.load_day(uow, BRANCH, MONDAY).appointments_since_walk_in == 0
