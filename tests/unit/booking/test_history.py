"""A slot's bookings at a past instant (services/booking/history.py), folded from a small booking log, on SQLite
and PostgreSQL. The export tests read the same log (tests/unit/test_export_and_history.py)."""
from datetime import datetime, timedelta

import pytest

from shared.clock import UTC, clock
from shared.events import NewEvent
from services.booking import history, projection

START = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
STREAM = "slot-npra-isa-town-passport-renewal-20261208T0400Z"
PERSON = {"cpr": "900112345", "name": "فاطمة علي", "mobile": "+97333001122", "email": "f@example.com",
          "language": "ar"}


@pytest.fixture
def db(open_db, monkeypatch):
    monkeypatch.setattr(clock, "speed", 0.0)
    clock.travel_to(datetime(2026, 12, 6, 6, 0, tzinfo=UTC))
    database = open_db("booking", projection.metadata)
    with database.transaction() as uow:  # a v1 booking (before channels existed), then a v2 one, then a cancel
        uow.append(STREAM, 0, [NewEvent("booking.SlotBooked", {
            "reference": "AC3D-9FGH", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "end": (START + timedelta(minutes=20)).isoformat(), "person": PERSON},
            "npra", version=1)])
    clock.advance(timedelta(hours=1))
    with database.transaction() as uow:
        uow.append(STREAM, 1, [NewEvent("booking.SlotBooked", {
            "reference": "KM7X-9QRD", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "end": (START + timedelta(minutes=20)).isoformat(), "channel": "app",
            "person": {**PERSON, "cpr": "900112346"}}, "npra")])
    clock.advance(timedelta(hours=1))
    with database.transaction() as uow:
        uow.append(STREAM, 2, [NewEvent("booking.BookingCancelled", {
            "reference": "AC3D-9FGH", "branch": "npra-isa-town", "service": "passport-renewal",
            "start": START.isoformat(), "cancelled_by": "person", "reason": "requested"}, "npra")])
    return database


def test_a_slots_bookings_at_a_past_instant(db):
    def refs(hours):
        return {(b["reference"], b["status"], b["channel"]) for b in history.slot_at(
            db, "npra-isa-town", "passport-renewal", START, datetime(2026, 12, 6, 6, 0, tzinfo=UTC) +
            timedelta(hours=hours, minutes=30))}
    assert refs(0) == {("AC3D-9FGH", "active", "web")}  # v1, upcast: it came from the web
    assert refs(1) == {("AC3D-9FGH", "active", "web"), ("KM7X-9QRD", "active", "app")}
    assert refs(2) == {("AC3D-9FGH", "cancelled", "web"), ("KM7X-9QRD", "active", "app")}


def test_a_moved_booking_leaves_its_slot_for_the_other_and_says_when_it_was_booked(db):
    later = START + timedelta(minutes=20)
    clock.advance(timedelta(hours=1))  # 09:00 UTC
    with db.transaction() as uow:
        uow.append(f"slot-npra-isa-town-passport-renewal-{later:%Y%m%dT%H%MZ}", 0, [NewEvent(
            "booking.BookingRescheduled", {
                "reference": "KM7X-9QRD", "branch": "npra-isa-town", "service": "passport-renewal",
                "previous_start": START.isoformat(), "start": later.isoformat(),
                "end": (later + timedelta(minutes=20)).isoformat()}, "npra")])

    def slot(start, hh):
        return history.slot_at(db, "npra-isa-town", "passport-renewal", start, datetime(2026, 12, 6, hh, 30, tzinfo=UTC))
    assert slot(later, 8) == []
    assert [b["reference"] for b in slot(START, 8)] == ["AC3D-9FGH", "KM7X-9QRD"]
    assert slot(START, 9) == [{"reference": "AC3D-9FGH", "branch": "npra-isa-town", "service": "passport-renewal",
                               "status": "cancelled", "channel": "web", "booked_at": "2026-12-06T09:00:00+03:00"}]
    assert slot(later, 9) == [{"reference": "KM7X-9QRD", "branch": "npra-isa-town", "service": "passport-renewal",
                               "status": "active", "channel": "app", "booked_at": "2026-12-06T10:00:00+03:00"}]
