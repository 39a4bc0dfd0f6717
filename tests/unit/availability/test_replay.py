"""Availability's replay (services/availability/replay.py): the slot counts rebuilt from booking's log, read
in pages of a few fields, are those the live consumer counted event by event, and a count changed by hand is
named. SQLite and PostgreSQL."""
from datetime import datetime, timedelta

import pytest

import shared.projection
from shared import schedule
from shared.clock import LOCAL, UTC
from shared.contracts import upcast
from shared.dependencies import service_metadata
from shared.events import NewEvent
from shared.projection import Logs
from services.availability import projection, replay

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
A, B = datetime(2026, 12, 7, 7, 0, tzinfo=LOCAL), datetime(2026, 12, 7, 7, 20, tzinfo=LOCAL)
PERSON = {"cpr": "900112345", "name": "Person", "mobile": None, "email": None, "language": "ar"}

# booking's log: (type, reference, slot, payload) with instants as datetimes; A spelt in UTC is still slot A
LOG = [
    ("SlotBooked", 1, A, {"start": A, "person": PERSON, "version": 1}),   # a v1 event, upcast when read
    ("SlotBooked", 2, A, {"start": A.astimezone(UTC), "person": PERSON, "channel": "app"}),
    ("SlotBooked", 3, B, {"start": B, "person": PERSON, "channel": "web"}),
    ("BookingCancelled", 2, A, {"start": A.astimezone(UTC), "cancelled_by": "person"}),
    ("BookingRescheduled", 3, A, {"previous_start": B, "start": A}),
    ("SlotBooked", 4, B, {"start": B, "person": PERSON, "channel": "counter"}),
    ("BookingExpired", 4, B, {"start": B}),                                 # frees no place
    ("SlotBooked", 5, B, {"start": B, "person": PERSON, "channel": "web"}),
    ("BookingCancelled", 1, A, {"start": A, "cancelled_by": "centre"}),
]


def new_event(type_: str, n: int, payload: dict) -> NewEvent:
    version = payload.pop("version", None)
    if type_ in ("SlotBooked", "BookingRescheduled"):
        payload["end"] = payload["start"] + timedelta(minutes=20)
    payload = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in payload.items()}
    return NewEvent(f"booking.{type_}", {"reference": f"AAAA-000{n}", "branch": BRANCH, "service": SERVICE,
                                         **payload}, "npra", version=version)


@pytest.fixture
def logged(open_db, monkeypatch):
    """(booking's log, availability's db): the log written, its events counted live one by one, and replays
    reading two events a page."""
    monkeypatch.setattr(shared.projection, "PAGE", 2)
    booking_log, availability = open_db("booking", service_metadata()), open_db("availability", projection.metadata)
    for type_, n, slot, payload in LOG:
        with booking_log.transaction() as uow:
            stream = schedule.slot_stream(BRANCH, SERVICE, slot)
            [event] = uow.append(stream, uow.store.stream_version(stream), [new_event(type_, n, dict(payload))])
        with availability.transaction() as uow:
            projection.apply_booking_event(uow, upcast(event))
    return booking_log, availability


def replayed(logged, **options):
    booking_log, availability = logged
    [counted] = replay.replay(availability, Logs(availability, open_source=lambda service: booking_log), **options)
    return counted


def test_the_replay_rebuilds_the_counts_the_live_consumer_made(logged):
    passed = []
    counted = replayed(logged, progress=passed.append)
    assert (counted.what, counted.events, counted.differences) == ("availability slot counts", len(LOG), {})
    assert counted.identical and passed == [2, 4, 6, 8, 9]


def test_the_comparison_names_the_rows_that_differ(logged):
    _, availability = logged
    table = projection.slot_bookings
    with availability.transaction() as uow:
        uow.execute(table.update().values(booked=table.c.booked + 5).where(table.c.start == A.astimezone(UTC)
                                                                                .replace(tzinfo=None)))
    live_only, rebuilt_only = replayed(logged).differences["slot_bookings"]
    assert [row[-1] for row in live_only] == [6] and [row[-1] for row in rebuilt_only] == [1]
