"""Availability's booked places per slot (services/availability/projection.py): what each booking event moves,
the live count event by event, and the bulk rebuild a replay folds, on SQLite and PostgreSQL."""
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from shared import topology
from shared.clock import LOCAL, UTC
from shared.contracts import latest_version, validated_payload
from shared.events import Event
from services.availability import projection

BRANCH, PASSPORT, RESIDENCE = "npra-isa-town", "passport-renewal", "residence-permit"
A = datetime(2026, 12, 7, 7, 0, tzinfo=LOCAL)
B, C = A + timedelta(minutes=20), A + timedelta(minutes=40)


def booking(type_: str, reference: str = "AAAA-0001", service: str = PASSPORT, **fields) -> Event:
    """A booking event as availability receives it; instants given as datetimes are written in ISO 8601."""
    payload = {"reference": reference, "branch": BRANCH, "service": service,
               **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}}
    type_ = f"booking.{type_}"
    return Event(str(uuid.uuid4()), type_, latest_version(type_), "s", 1, 1, datetime.now(UTC), "c", None, "npra",
                 validated_payload(type_, latest_version(type_), payload))


def booked(reference: str, start: datetime, service: str = PASSPORT) -> Event:
    return booking("SlotBooked", reference, service, start=start, end=start + timedelta(minutes=20), channel="web",
                   person={"cpr": "900112345", "name": "Person", "language": "ar"})


def cancelled(reference: str, start: datetime) -> Event:
    return booking("BookingCancelled", reference, start=start, cancelled_by="person")


def moved(reference: str, previous: datetime, start: datetime) -> Event:
    return booking("BookingRescheduled", reference, previous_start=previous, start=start,
                   end=start + timedelta(minutes=20))


def counts(uow, service: str = PASSPORT) -> dict:
    """Booked places by local start time of the day of A."""
    day = A.replace(hour=0)
    return {start.astimezone(LOCAL).strftime("%H:%M"): n
            for start, n in projection.booked_counts(uow, BRANCH, service, day, day + timedelta(days=1)).items()}


# -- what an event moves -----------------------------------------------------------------------------------

def test_each_booking_event_moves_its_places():
    assert projection.moves(booked("R1", A)) == [(BRANCH, PASSPORT, A.isoformat(), +1)]
    assert projection.moves(cancelled("R1", A)) == [(BRANCH, PASSPORT, A.isoformat(), -1)]
    assert projection.moves(moved("R1", A, B)) == [(BRANCH, PASSPORT, A.isoformat(), -1),
                                                   (BRANCH, PASSPORT, B.isoformat(), +1)]


def test_an_expiry_or_an_erasure_moves_no_place():
    assert projection.moves(booking("BookingExpired", start=A)) == []
    erased = replace(booked("R1", A), type="booking.PersonErased", version=1, payload={"subject": "0" * 24})
    assert projection.moves(erased) == []


def test_the_moves_cover_what_availability_subscribes_to_and_read_only_the_booking_fields():
    assert sorted(projection.MOVES) == sorted(topology.SUBSCRIPTIONS[projection.BOOKINGS_CONSUMER].types)
    for event in (booked("R1", A), cancelled("R1", A), moved("R1", A, B)):
        narrowed = {k: v for k, v in event.payload.items() if k in projection.BOOKING_FIELDS}
        assert projection.moves(replace(event, payload=narrowed)) == projection.moves(event)


# -- the live count ----------------------------------------------------------------------------------------

@pytest.fixture
def db(open_db):
    return open_db("availability", projection.metadata)


def test_the_count_follows_bookings_cancellations_and_moves(db):
    with db.transaction() as uow:
        for event in (booked("R1", A), booked("R2", A.astimezone(UTC)), booked("R3", B),  # A spelt in UTC is A
                      booked("R4", B, RESIDENCE), cancelled("R2", A), moved("R3", B, C),
                      booking("BookingExpired", "R1", start=A)):
            projection.apply_booking_event(uow, event)
        assert counts(uow) == {"07:00": 1, "07:20": 0, "07:40": 1}
        assert counts(uow, RESIDENCE) == {"07:20": 1}


def test_the_count_does_not_depend_on_delivery_order(db):
    with db.transaction() as uow:
        projection.apply_booking_event(uow, cancelled("R1", A))  # overtook its booking
        assert counts(uow) == {"07:00": -1}
        projection.apply_booking_event(uow, booked("R1", A))
        assert counts(uow) == {"07:00": 0}


def test_booked_counts_reads_starts_from_since_up_to_until(db):
    with db.transaction() as uow:
        for reference, start in (("R1", A), ("R2", B), ("R3", C)):
            projection.apply_booking_event(uow, booked(reference, start))
        assert projection.booked_counts(uow, BRANCH, PASSPORT, B, C) == {B.astimezone(UTC): 1}
        assert projection.booked_counts(uow, "npra-security-complex", PASSPORT, A, C) == {}


def test_the_bulk_rebuild_gives_the_counts_event_by_event_application_gives(open_db):
    events = [booked("R1", A), booked("R2", A.astimezone(UTC)), booked("R3", B), cancelled("R2", A.astimezone(UTC)),
              moved("R3", B, C), booked("R4", C, RESIDENCE), booking("BookingExpired", "R4", RESIDENCE, start=C)]
    live, rebuilt = open_db("availability", projection.metadata), open_db("rebuilt", projection.metadata)
    with live.transaction() as uow:
        for event in events:
            projection.apply_booking_event(uow, event)
        expected = {service: counts(uow, service) for service in (PASSPORT, RESIDENCE)}
    with rebuilt.transaction() as uow:
        projection.rebuild_booked_places(uow, iter([events[:3], events[3:]]))  # pages
        assert {service: counts(uow, service) for service in (PASSPORT, RESIDENCE)} == expected
