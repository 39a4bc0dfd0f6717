"""The one fold of the booking log (services/booking/fold.py): each event type on its own, and its three users (the
per-event projection, the batched rebuild, the time travel) agreeing on one log, on SQLite and PostgreSQL."""
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

import shared.projection
from shared import schedule, vault
from shared.clock import LOCAL, UTC, clock
from shared.contracts import latest_version, types_of, upcast
from shared.events import Event, NewEvent
from shared.masking import ERASED
from shared.projection import rebuild_and_compare
from services.booking import fold, history, projection
from tests.unit.test_pure_domain import test_a_domain_module_loads_no_infrastructure as loads_no_infrastructure

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
A, B = datetime(2026, 12, 7, 7, 0, tzinfo=LOCAL), datetime(2026, 12, 7, 7, 20, tzinfo=LOCAL)
AT = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def person(n: int, mobile: str | None = None) -> dict:
    return {"cpr": f"9001{n}2345", "name": f"Person {n}", "mobile": mobile, "email": None, "language": "ar"}


def booked(n: int, start: datetime, **extra) -> NewEvent:
    return NewEvent("booking.SlotBooked", {
        "reference": f"AAAA-000{n}", "branch": BRANCH, "service": SERVICE, "start": start.isoformat(),
        "end": (start + timedelta(minutes=20)).isoformat(), "person": person(n), "channel": "app", **extra}, "npra")


def changed(type_: str, n: int, **payload) -> NewEvent:
    return NewEvent(f"booking.{type_}", {"reference": f"AAAA-000{n}", "branch": BRANCH, "service": SERVICE,
                                         **payload}, "npra")


def moved(n: int, previous: datetime, start: datetime) -> NewEvent:
    return changed("BookingRescheduled", n, previous_start=previous.isoformat(), start=start.isoformat(),
                   end=(start + timedelta(minutes=20)).isoformat())


def cancelled(n: int, start: datetime = A) -> NewEvent:
    return changed("BookingCancelled", n, start=start.isoformat(), cancelled_by="person")


def expired(n: int, start: datetime = A) -> NewEvent:
    return changed("BookingExpired", n, start=start.isoformat())


def stored(new: NewEvent, at: datetime = AT) -> Event:
    """`new` as the store hands it out, upcast."""
    return upcast(Event(str(uuid.uuid4()), new.type, new.version or latest_version(new.type), "s", 1, 1, at, "c",
                        None, new.directorate, new.payload))


ROW = {"reference": "AAAA-0001", "version": 0, "cpr": "900112345", "branch": BRANCH, "service": SERVICE,
       "start": datetime(2026, 12, 7, 4, 0), "end": datetime(2026, 12, 7, 4, 20), "status": "active",
       "name": "Person 1", "mobile": "+97333001122", "email": None, "language": "ar", "channel": "app",
       "created_at": AT.replace(tzinfo=None), "updated_at": AT.replace(tzinfo=None)}


# -- each event type -------------------------------------------------------------------------------------

def test_the_fold_has_a_step_for_every_booking_event_but_person_erased():
    assert set(fold.STEPS) == set(types_of("booking")) - {"booking.PersonErased"}


def test_slot_booked_makes_the_row_as_the_table_stores_it():
    event = stored(booked(1, A, person=person(1, "+97333001122")))
    assert fold.evolve(None, event) == ROW
    assert set(ROW) == {c.name for c in projection.bookings.columns}


def test_a_v1_booking_upcast_came_from_the_web():
    old = booked(1, A)
    v1 = NewEvent(old.type, {k: v for k, v in old.payload.items() if k != "channel"}, "npra", version=1)
    assert fold.evolve(None, stored(v1))["channel"] == "web"


def test_cancelled_and_expired_close_the_booking_and_leave_the_given_one_as_it_was():
    before = dict(ROW)
    assert fold.evolve(ROW, stored(cancelled(1))) == {**ROW, "status": "cancelled"}
    assert fold.evolve(ROW, stored(expired(1))) == {**ROW, "status": "expired"}
    assert ROW == before


def test_rescheduled_moves_start_and_end_and_nothing_else():
    assert fold.evolve(ROW, stored(moved(1, A, B))) == {
        **ROW, "start": datetime(2026, 12, 7, 4, 20), "end": datetime(2026, 12, 7, 4, 40)}


def test_a_change_to_no_booking_makes_none():
    for change in (cancelled(1), expired(1), moved(1, A, B)):
        assert fold.evolve(None, stored(change)) is None


def test_a_change_to_a_booking_written_elsewhere_is_just_the_change():
    assert fold.evolve({}, stored(cancelled(1))) == {"status": "cancelled"}
    assert fold.evolve({"status": "cancelled"}, stored(moved(1, A, B))) == {
        "status": "cancelled", "start": datetime(2026, 12, 7, 4, 20), "end": datetime(2026, 12, 7, 4, 40)}


def test_person_erased_and_other_events_leave_a_booking_as_it_is():
    erased = stored(NewEvent("booking.PersonErased", {"subject": vault.subject_of("900112345")}))
    for booking in (None, {}, ROW):
        assert fold.evolve(booking, erased) is booking


def test_the_fold_is_pure():
    loads_no_infrastructure("services.booking.fold")


# -- its three users agree ---------------------------------------------------------------------------------

def log_every_event_type(db) -> list[Event]:
    """A log of every booking event type over two slots (a v1 booking among them, a person erased), appended an
    hour apart; returns it read back and upcast."""
    v1 = booked(6, B)
    entries = [(A, booked(1, A)), (A, booked(2, A)), (B, booked(3, B)), (A, cancelled(2)), (B, moved(1, A, B)),
               (A, booked(4, A)), (A, expired(4)), (B, cancelled(1, B)), (A, booked(5, A)), (A, moved(3, B, A)),
               (B, NewEvent(v1.type, {k: v for k, v in v1.payload.items() if k != "channel"}, "npra", version=1))]
    clock.travel_to(AT)
    with db.transaction() as uow:
        for start, new in entries:
            stream = schedule.slot_stream(BRANCH, SERVICE, start)
            uow.append(stream, uow.store.stream_version(stream), [new])
            clock.advance(timedelta(hours=1))
        subject = vault.subject_of(person(5)["cpr"])
        uow.store.vault.forget(subject)
        uow.append(f"person-{subject}", 0, [NewEvent("booking.PersonErased", {"subject": subject})])
    with db.transaction() as uow:
        return [upcast(e) for e in uow.store.read_all()]


def test_projection_rebuild_and_history_read_the_log_as_the_fold_does(open_db, monkeypatch):
    monkeypatch.setattr(clock, "speed", 0.0)
    monkeypatch.setattr(shared.projection, "PAGE", 2)  # changes to bookings of earlier pages, too
    db = open_db("booking", projection.metadata)
    events = log_every_event_type(db)
    assert {e.type for e in events} == set(types_of("booking"))
    folded = {}
    for event in events:
        reference = event.payload.get("reference")
        if (booking := fold.evolve(folded.get(reference), event)) is not None:
            folded[reference] = booking
    assert [(b["reference"], b["status"]) for b in folded.values()] == [
        ("AAAA-0001", "cancelled"), ("AAAA-0002", "cancelled"), ("AAAA-0003", "active"), ("AAAA-0004", "expired"),
        ("AAAA-0005", "active"), ("AAAA-0006", "active")]
    assert (folded["AAAA-0005"]["name"], folded["AAAA-0006"]["channel"]) == (ERASED, "web")

    with db.transaction() as uow:  # the live table, event by event
        for event in events:
            projection.project(uow, event)
        live = {row.reference: row._asdict() for row in uow.execute(sa.select(projection.bookings))}
    assert live == folded
    assert rebuild_and_compare(db, events, projection.rebuild, ["bookings"], batched=True).identical
    assert rebuild_and_compare(db, events, projection.project, ["bookings"]).identical

    for start in (A, B):
        slot = history.slot_at(db, BRANCH, SERVICE, start, AT + timedelta(days=1))
        assert slot == [{"reference": b["reference"], "branch": BRANCH, "service": SERVICE, "status": b["status"],
                         "channel": b["channel"], "booked_at": b["created_at"].replace(tzinfo=UTC).astimezone(LOCAL).isoformat()}
                        for b in folded.values() if b["start"] == start.astimezone(UTC).replace(tzinfo=None)]
        assert slot  # both slots hold bookings

