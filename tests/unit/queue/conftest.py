"""What the queue's tests share: the branch (Isa Town, from the seed catalogue), instants on one Monday, and a
queue database on both backends (SQLite and PostgreSQL) driven as the other services and the people at the
branch would drive it.

The queue learns its catalogue from availability's events and its appointments from booking's: here both are
built as the store would hand them out and applied with the queue's own consumers. The suite's clock is moved
with travel_to and held still while a test runs (its speed set to 0 for the test only), so the instants the store
stamps on events are the instants the commands are given.
"""
import itertools
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared import catalogue
from shared.clock import LOCAL, UTC, clock
from shared.contracts import latest_version, validated_payload
from shared.errors import Conflict
from shared.events import Event
from shared.projection import apply_once
from services.availability import catalogue_file
from services.queue import commands, projection

BRANCH = "npra-isa-town"            # office hours 07:00-14:00 local, Sunday to Thursday
PASSPORT = "passport-renewal"       # prefix P, 20 minutes
RESIDENCE = "residence-permit"      # prefix R, 30 minutes
MONDAY = date(2026, 12, 7)
KEY, PUBLIC_URL = "a-test-feedback-key", "https://mawaeed.example.bh"

_positions = itertools.count(1)


def at(hh: int, mm: int = 0, ss: int = 0, day: date = MONDAY) -> datetime:
    """An instant given in Bahrain local time (on MONDAY unless told)."""
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=LOCAL)


def tick(hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """Move the suite's clock to a local time on MONDAY; the `now` every command is given."""
    clock.travel_to(at(hh, mm, ss))
    return clock.now()


@pytest.fixture(autouse=True)
def still_clock(monkeypatch):
    monkeypatch.setattr(clock, "speed", 0.0)  # restored after each test
    clock.travel_to(at(8))


@pytest.fixture(scope="module")
def branches():
    _, found = catalogue_file.desired(catalogue_file.read())
    return found


@pytest.fixture
def branch(branches):
    return branches[BRANCH]


# -- a queue database, and the other services' events it learns from ------------------------------------

def delivered(type_: str, payload: dict, stream: str, directorate: str | None = None, version: int = 1) -> Event:
    """Another service's event as the queue's consumers receive it."""
    position = next(_positions)
    return Event(event_id=str(uuid.uuid4()), type=type_, version=version, stream_id=stream, stream_version=position,
                 position=position, occurred_at=datetime(2026, 12, 1, tzinfo=UTC), correlation_id=str(uuid.uuid4()),
                 causation_id=None, directorate=directorate, payload=validated_payload(type_, version, payload))


def learn_catalogue(db, walk_ins_per_service: int | None = None) -> None:
    """The seed catalogue's events for Isa Town (and its directorate), applied by the queue's catalogue consumer."""
    source = catalogue_file.read()
    if walk_ins_per_service is not None:  # a busy day, as a platform team would configure it
        source["queue"]["walk_ins_per_service"] = walk_ins_per_service
    for change in catalogue_file.changes(source, {}, {}):
        if change.stream_id in ("directorate-npra", f"branch-{BRANCH}"):
            event = delivered(change.event.type, change.event.payload, change.stream_id, change.event.directorate,
                              latest_version(change.event.type))   # as the catalogue sync writes it
            assert apply_once(db, projection.CATALOGUE_CONSUMER, event, catalogue.project)


def from_booking(db, type_: str, payload: dict) -> Event:
    """A booking event, applied by the queue's bookings consumer."""
    event = delivered(type_, payload, f"slot-{payload['reference']}", "npra")
    assert apply_once(db, projection.BOOKINGS_CONSUMER, event, projection.apply_booking_event)
    return event


def book(db, reference: str, cpr: str, service: str, hh: int, mm: int = 0, language: str = "ar") -> Event:
    start = at(hh, mm)
    return from_booking(db, "booking.SlotBooked", {
        "reference": reference, "branch": BRANCH, "service": service, "start": start.isoformat(),
        "end": (start + timedelta(minutes={PASSPORT: 20, RESIDENCE: 30}[service])).isoformat(),
        "person": {"cpr": cpr, "name": "Person", "mobile": None, "email": None, "language": language}})


def cancel(db, reference: str, service: str, hh: int, mm: int = 0) -> Event:
    return from_booking(db, "booking.BookingCancelled", {"reference": reference, "branch": BRANCH, "service": service,
                                                         "start": at(hh, mm).isoformat(), "cancelled_by": "person"})


@pytest.fixture
def db(open_db):
    database = open_db("queue", projection.metadata)
    learn_catalogue(database)
    return database


# -- the people at the branch, and what the log and tables then hold -------------------------------------

def walk_in(db, service: str, cpr: str, now: datetime, priority: str | None = None) -> dict:
    status, answer = commands.check_in(db, BRANCH, {"walk_in": True, "service": service, "cpr": cpr,
                                                    "language": "en", "priority": priority}, now)
    assert status == 201
    return answer["ticket"]


def arrive(db, reference: str, cpr: str, now: datetime) -> tuple[int, dict]:
    status, answer = commands.check_in(db, BRANCH, {"reference": reference, "cpr": cpr, "priority": None}, now)
    return status, answer["ticket"]


def queue_events(db) -> list[Event]:
    with db.transaction() as uow:
        return [e for e in uow.store.read_all(limit=100_000) if e.source == "queue"]


def appointment_status(db) -> dict:
    table = projection.appointments
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.reference, table.c.status)).all())


@contextmanager
def rejected(code: str, error: type = Conflict):
    """The block raises `error` with this code."""
    with pytest.raises(error) as excinfo:
        yield
    assert excinfo.value.code == code, excinfo.value.message


def a_day_of_every_kind(db) -> dict:
    """A morning at the branch that records every kind of queue event, then the day's close: an appointment
    called, recalled, served and rated; a priority walk-in transferred, called again and not showing; a walk-in
    called and one waiting, both closed out; a counter closed; a booking nobody came for. Returns the ids of the
    three who were called, by kind."""
    book(db, "ACDE-FGHJ", "900112345", PASSPORT, 9)
    book(db, "XY34-679A", "880312345", PASSPORT, 10)  # never comes
    _, booked = arrive(db, "ACDE-FGHJ", "900112345", tick(8, 45))
    walked = walk_in(db, PASSPORT, "900212345", tick(8, 50))
    elderly = walk_in(db, RESIDENCE, "900312345", tick(8, 51), priority="elderly")
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.open_counter(db, BRANCH, "2", [PASSPORT, RESIDENCE], tick(9))
    assert commands.call_next(db, BRANCH, "1", tick(9, 1))["ticket"]["id"] == booked["id"]
    assert commands.call_next(db, BRANCH, "2", tick(9, 1))["ticket"]["id"] == elderly["id"]
    commands.recall(db, booked["id"], tick(9, 2, 30))
    served = commands.served(db, booked["id"], tick(9, 10), KEY, PUBLIC_URL)
    commands.transfer(db, elderly["id"], PASSPORT, tick(9, 11))
    assert commands.call_next(db, BRANCH, "1", tick(9, 12))["ticket"]["id"] == elderly["id"]  # a priority still
    assert commands.call_next(db, BRANCH, "2", tick(9, 12))["ticket"]["id"] == walked["id"]
    commands.no_show(db, elderly["id"], tick(9, 13))
    commands.rate(db, served["feedback"]["token"], 4, "Quick", KEY)
    walk_in(db, PASSPORT, "900412345", tick(9, 15))
    commands.close_counter(db, BRANCH, "1", tick(9, 20))
    commands.close_day(db, BRANCH, MONDAY)
    return {"appointment": booked["id"], "priority": elderly["id"], "walk_in": walked["id"]}
