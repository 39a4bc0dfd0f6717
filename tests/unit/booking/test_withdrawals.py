"""The booking service's answer to a shrinking catalogue (services/booking/withdrawals.py): bookings that have not
started of a withdrawn service, at a retired branch or on a new holiday are cancelled once each, with a reason
and the availability event as their cause; past ones stay; a redelivery or a resumed crash cancels nothing twice.
Also the release delay as the booking service applies it. On SQLite and PostgreSQL."""
import itertools
import uuid
from datetime import datetime, timedelta

import pytest

from services.availability import catalogue_file
from services.booking import commands, projection, withdrawals
from shared.clock import LOCAL, UTC
from shared.contracts import latest_version, validated_payload
from shared.errors import Conflict, NotFound
from shared.events import Event

BRANCH, PASSPORT, RESIDENCE = "npra-isa-town", "passport-renewal", "residence-permit"
CONSUMER = projection.CATALOGUE_CONSUMER
MONDAY_7 = datetime(2026, 12, 7, 7, 0, tzinfo=LOCAL)     # a passport slot (20 minutes) and a residence one (30)
TUESDAY_8 = datetime(2026, 12, 8, 8, 0, tzinfo=LOCAL)
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=LOCAL)
_positions = itertools.count(1)


def availability_event(type_: str, payload: dict) -> Event:
    position = next(_positions)
    version = latest_version(type_)
    return Event(event_id=str(uuid.uuid4()), type=type_, version=version, stream_id=f"branch-{BRANCH}",
                 stream_version=position, position=position, occurred_at=NOW, correlation_id=str(uuid.uuid4()),
                 causation_id=None, directorate="npra", payload=validated_payload(type_, version, payload))


@pytest.fixture
def db(open_db):
    database = open_db("booking", projection.metadata)
    for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
        if change.stream_id in ("directorate-npra", f"branch-{BRANCH}"):
            withdrawals.on_catalogue_event(database, CONSUMER, availability_event(
                change.event.type, change.event.payload), NOW)
    return database


def book(db, cpr: str, service: str, start: datetime, now: datetime = NOW, language: str = "ar") -> str:
    return commands.book(db, {"cpr": cpr, "branch": BRANCH, "service": service, "start": start, "name": "Person",
                              "language": language, "mobile": "+97333334444"}, now, 3)["reference"]


def status(db, reference: str) -> str:
    with db.transaction() as uow:
        return projection.booking(uow, reference).status


def cancellations(db) -> list[Event]:
    with db.transaction() as uow:
        return [e for e in uow.store.read_all(limit=10_000) if e.type == "booking.BookingCancelled"]


def test_withdrawing_a_service_cancels_its_future_bookings_once_with_a_reason(db):
    due = book(db, "900112345", PASSPORT, MONDAY_7)
    later = book(db, "900112346", PASSPORT, TUESDAY_8)
    other = book(db, "900112347", RESIDENCE, MONDAY_7)
    withdrawn = availability_event("availability.ServiceWithdrawn", {"branch": BRANCH, "service": PASSPORT})

    assert withdrawals.on_catalogue_event(db, CONSUMER, withdrawn, NOW) == 2
    assert (status(db, due), status(db, later), status(db, other)) == ("cancelled", "cancelled", "active")
    logged = cancellations(db)
    assert sorted(e.payload["reference"] for e in logged) == sorted([due, later])
    for event in logged:
        assert (event.version, event.payload["reason"], event.payload["cancelled_by"]) == (2, "service_withdrawn",
                                                                                          "system")
        assert event.causation_id == withdrawn.event_id and event.correlation_id == withdrawn.correlation_id

    assert withdrawals.on_catalogue_event(db, CONSUMER, withdrawn, NOW) == 0   # redelivered: nothing more
    assert len(cancellations(db)) == 2
    with pytest.raises(NotFound):   # and nothing new is taken for it
        book(db, "900112348", PASSPORT, TUESDAY_8)


def test_a_booking_that_has_started_is_left_as_it_is(db):
    started = book(db, "900112345", PASSPORT, MONDAY_7)
    ahead = book(db, "900112346", PASSPORT, TUESDAY_8)
    on_monday = MONDAY_7 + timedelta(minutes=5)
    retired = availability_event("availability.BranchRetired", {"branch": BRANCH})
    assert withdrawals.on_catalogue_event(db, CONSUMER, retired, on_monday) == 1
    assert (status(db, started), status(db, ahead)) == ("active", "cancelled")
    assert [e.payload["reason"] for e in cancellations(db)] == ["branch_retired"]


def test_a_holiday_declared_over_bookings_cancels_that_day_only(db):
    monday = [book(db, "900112345", PASSPORT, MONDAY_7), book(db, "900112346", RESIDENCE, MONDAY_7 + timedelta(hours=6))]
    tuesday = book(db, "900112347", PASSPORT, TUESDAY_8)
    holiday = availability_event("availability.HolidayDeclared", {"branch": BRANCH, "date": "2026-12-07",
                                                                  "name_en": "Sudden holiday", "name_ar": "عطلة طارئة"})
    assert withdrawals.on_catalogue_event(db, CONSUMER, holiday, NOW) == 2
    assert [status(db, r) for r in monday] == ["cancelled", "cancelled"] and status(db, tuesday) == "active"
    assert {e.payload["reason"] for e in cancellations(db)} == {"holiday"}


def test_a_crash_between_cancellations_resumes_and_cancels_nothing_twice(db, monkeypatch):
    references = [book(db, f"90011234{n}", PASSPORT, MONDAY_7 + timedelta(minutes=20 * n)) for n in range(3)]
    withdrawn = availability_event("availability.ServiceWithdrawn", {"branch": BRANCH, "service": PASSPORT})
    real, calls = commands.cancel_for_catalogue, itertools.count()

    def crashing(*args):
        if next(calls) == 1:
            raise RuntimeError("the process died")
        return real(*args)

    monkeypatch.setattr(commands, "cancel_for_catalogue", crashing)
    with pytest.raises(RuntimeError):
        withdrawals.on_catalogue_event(db, CONSUMER, withdrawn, NOW)
    assert [status(db, r) for r in references] == ["cancelled", "active", "active"]
    monkeypatch.setattr(commands, "cancel_for_catalogue", real)

    assert withdrawals.on_catalogue_event(db, CONSUMER, withdrawn, NOW) == 2   # the delivery again: the rest
    assert [status(db, r) for r in references] == ["cancelled"] * 3
    assert sorted(e.payload["reference"] for e in cancellations(db)) == sorted(references)


def test_a_release_delay_keeps_a_cancelled_place_taken_until_it_has_passed(db):
    delay = availability_event("availability.ReleaseDelaySet", {"branch": BRANCH, "release_delay_minutes": 30})
    withdrawals.on_catalogue_event(db, CONSUMER, delay, NOW)
    holders = [book(db, f"90011234{n}", PASSPORT, MONDAY_7) for n in range(3)]   # the slot's 3 online places
    commands.cancel(db, holders[0], "900112340", NOW)
    with pytest.raises(Conflict) as refused:
        book(db, "900112349", PASSPORT, MONDAY_7, now=NOW + timedelta(minutes=29, seconds=59))
    assert refused.value.code == "SLOT_FULL"
    assert book(db, "900112349", PASSPORT, MONDAY_7, now=NOW + timedelta(minutes=30))


def test_without_a_release_delay_a_cancelled_place_is_free_at_once(db):
    holders = [book(db, f"90011234{n}", PASSPORT, MONDAY_7) for n in range(3)]
    commands.cancel(db, holders[0], "900112340", NOW)
    assert book(db, "900112349", PASSPORT, MONDAY_7, now=NOW)


def test_a_booking_of_a_withdrawn_service_is_still_shown_with_its_names(db):
    reference = book(db, "900112345", PASSPORT, MONDAY_7)
    withdrawals.on_catalogue_event(db, CONSUMER, availability_event(
        "availability.ServiceWithdrawn", {"branch": BRANCH, "service": PASSPORT}), NOW)
    shown = commands.get(db, reference, "900112345")
    assert (shown["status"], shown["service_name_en"], shown["service_name_ar"]) == (
        "cancelled", "Passport renewal", "تجديد جواز السفر")
    assert NOW.astimezone(UTC) < MONDAY_7.astimezone(UTC)
