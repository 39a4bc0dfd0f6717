"""Replays read the log in pages and fold them in bulk: the rebuilt tables are those the per-event projections
give, whatever the page boundaries, and the comparison still names the rows that differ. SQLite and PostgreSQL.
(Availability's replay: tests/unit/availability/test_replay.py.)"""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import shared.projection
from services.availability import projection as availability
from services.booking import projection as booking
from services.booking import replay as booking_replay
from shared import schedule
from shared.clock import LOCAL, UTC
from shared.contracts import upcast
from shared.events import NewEvent
from shared.projection import Logs, read_log

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
A, B = datetime(2026, 12, 7, 7, 0, tzinfo=LOCAL), datetime(2026, 12, 7, 7, 20, tzinfo=LOCAL)


def _history() -> list[tuple[datetime, NewEvent]]:
    def booked(n, start, version=2):
        payload = {"reference": f"AAAA-000{n}", "branch": BRANCH, "service": SERVICE, "start": start.isoformat(),
                   "end": (start + timedelta(minutes=20)).isoformat(),
                   "person": {"cpr": f"9001{n}2345", "name": f"Person {n}", "mobile": None, "email": None,
                              "language": "ar"}}
        return start, NewEvent("booking.SlotBooked", payload if version == 1 else {**payload, "channel": "app"},
                               "npra", version=version)

    def change(type_, n, slot, **extra):
        return slot, NewEvent(f"booking.{type_}", {"reference": f"AAAA-000{n}", "branch": BRANCH,
                                                    "service": SERVICE, **extra}, "npra")
    utc_a = A.astimezone(UTC)  # the same instant spelt another way is the same slot
    return [booked(1, A, version=1), booked(2, utc_a), booked(3, B), change("BookingCancelled", 2, A,
            start=utc_a.isoformat(), cancelled_by="person"),
            change("BookingRescheduled", 3, A, previous_start=B.isoformat(), start=A.isoformat(),
                   end=(A + timedelta(minutes=20)).isoformat()),
            booked(4, B), change("BookingExpired", 4, B, start=B.isoformat()), booked(5, B),
            change("BookingCancelled", 1, A, start=A.isoformat(), cancelled_by="centre")]


@pytest.fixture
def logged(open_db, monkeypatch):
    """The booking db with the history logged, its live table projected event by event, and replays paging two
    events at a time."""
    monkeypatch.setattr(shared.projection, "PAGE", 2)
    booking_db = open_db("booking", booking.metadata)
    for start, new in _history():
        with booking_db.transaction() as uow:
            stream = schedule.slot_stream(BRANCH, SERVICE, start)
            uow.append(stream, uow.store.stream_version(stream), [new])
    with booking_db.transaction() as uow:
        events = [upcast(e) for e in uow.store.read_all()]
        for event in events:
            booking.project(uow, event)
    return booking_db


def direct(db, booking_db):
    """Logs as `mawaeed replay --direct` reads them: the booking log straight from its database."""
    return Logs(db, open_source=lambda service: booking_db)


def test_read_log_pages_through_the_log_opening_personal_fields_or_reading_only_some(logged):
    booking_db = logged
    whole = list(read_log(booking_db, page=2))
    assert [e.position for e in whole] == list(range(1, 10))
    assert whole[0].payload["person"]["name"] == "Person 1"
    some = list(read_log(booking_db, types=["booking.BookingRescheduled"], fields=availability.BOOKING_FIELDS))
    assert [(e.position, e.payload) for e in some] == [(5, {"branch": BRANCH, "service": SERVICE,
                                                            "start": A.isoformat(), "previous_start": B.isoformat()})]


def test_batched_replays_rebuild_what_the_per_event_projections_built(logged):
    booking_db = logged
    [rebuilt] = booking_replay.replay(booking_db, direct(booking_db, booking_db))
    assert rebuilt.identical


def test_the_comparison_names_the_rows_that_differ(logged):
    booking_db = logged
    with booking_db.transaction() as uow:
        uow.execute(sa.delete(booking.bookings).where(booking.bookings.c.reference == "AAAA-0005"))
    [rebuilt] = booking_replay.replay(booking_db, direct(booking_db, booking_db))
    live_only, rebuilt_only = rebuilt.differences["bookings"]
    assert live_only == [] and [row[0] for row in rebuilt_only] == ["AAAA-0005"]
