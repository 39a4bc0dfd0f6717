"""Book, cancel and reschedule: load, decide with rules.py, append at the expected version, in one transaction.

The decision "is there room" is guarded by the slot's stream: every booking into a slot appends to that
stream at the version read before counting the slot's bookings, so two bookings racing for the last place
cannot both commit. A command that loses such a race is decided again from fresh state.
"""
import logging
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from shared import catalogue, schedule, vault
from shared.masking import ERASED
from shared.retry import retrying
from shared.clock import LOCAL, UTC
from shared.events import NewEvent
from shared.errors import ConcurrencyError, Conflict, NotFound
from shared.masking import mask_cpr
from services.booking.references import new_reference, normalise_reference
from shared.eventstore import Database, UnitOfWork
from services.booking import rules
from services.booking.projection import bookings, people

log = logging.getLogger(__name__)

def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _aware(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


def as_answer(row, branch: dict | None) -> dict:
    service = (branch or {}).get("services", {}).get(row.service, {})
    return {
        "reference": row.reference, "status": row.status, "branch": row.branch, "service": row.service,
        "branch_name_en": (branch or {}).get("name_en"), "branch_name_ar": (branch or {}).get("name_ar"),
        "service_name_en": service.get("name_en"), "service_name_ar": service.get("name_ar"),
        "start": _aware(row.start).astimezone(LOCAL).isoformat(), "end": _aware(row.end).astimezone(LOCAL).isoformat(),
        "name": row.name, "language": row.language, "channel": row.channel,
    }


def _guard_room(uow: UnitOfWork, branch_id: str, service_id: str, slot: schedule.Slot) -> tuple[str, int]:
    """(slot stream, expected version) when the slot has room. The version and the count it guards are read in
    one statement, from one snapshot: a booking committed after it moves the version, and the append fails."""
    stream = schedule.slot_stream(branch_id, service_id, slot.start)
    events = uow.tables["events"]
    version, taken = uow.execute(sa.select(
        sa.select(sa.func.coalesce(sa.func.max(events.c.stream_version), 0))
        .where(events.c.stream_id == stream).scalar_subquery(),
        sa.select(sa.func.count()).select_from(bookings).where(
            bookings.c.branch == branch_id, bookings.c.service == service_id, bookings.c.start == _naive(slot.start),
            bookings.c.status == "active").scalar_subquery())).one()
    rules.check_room(slot, taken)
    return stream, version


def _claim_person(uow: UnitOfWork, cpr: str) -> None:
    """Create or bump the person's row. It stays locked until commit, so two bookings by one person take turns
    and the second checks the per-person rules against what the first committed."""
    insert = (postgresql.insert if uow.conn.dialect.name == "postgresql" else sqlite.insert)(people)
    uow.execute(insert.values(cpr=cpr, version=1).on_conflict_do_update(
        index_elements=[people.c.cpr], set_={"version": people.c.version + 1}))


def _bump(uow: UnitOfWork, table: sa.Table, key, key_value: str, version: int) -> None:
    """Compare-and-set a row's version: ConcurrencyError when someone else changed it meanwhile."""
    done = uow.execute(table.update().where(key == key_value, table.c.version == version)
                       .values(version=version + 1)).rowcount
    if done != 1:
        raise ConcurrencyError(f"{table.name} {key_value} changed meanwhile")


def book(db: Database, request: dict, now: datetime, max_active: int) -> dict:
    cpr, branch_id, service_id = request["cpr"], request["branch"], request["service"]
    channel = request.get("channel", "web")

    def decide():
        with db.transaction() as uow:
            branch = catalogue.load_branch(uow, branch_id)
            slot = rules.bookable_slot(branch, branch_id, service_id, request["start"], now)
            _claim_person(uow, cpr)
            active = [rules.ActiveBooking(r.reference, r.service, _aware(r.start)) for r in uow.execute(
                sa.select(bookings.c.reference, bookings.c.service, bookings.c.start).where(
                    bookings.c.cpr == cpr, bookings.c.status == "active", bookings.c.start > _naive(now)))]
            rules.check_person(active, service_id, max_active)
            stream, version = _guard_room(uow, branch_id, service_id, slot)
            person = {k: request.get(k) for k in ("cpr", "name", "mobile", "email", "language")}
            row = dict(reference=new_reference(), version=1, branch=branch_id, service=service_id,
                       start=_naive(slot.start), end=_naive(slot.end), status="active", channel=channel,
                       created_at=_naive(now), updated_at=_naive(now), **person)
            uow.execute(bookings.insert().values(row))
            uow.append(stream, version, [NewEvent("booking.SlotBooked", {
                "reference": row["reference"], "branch": branch_id, "service": service_id,
                "start": slot.start.isoformat(), "end": slot.end.isoformat(), "person": person,
                "channel": channel,
            }, branch["directorate"])])  # last: the log's append lock is held from here to the commit
            return as_answer(SimpleNamespace(**row), branch)

    return retrying("booking", "book", decide)


def _load_own(uow: UnitOfWork, reference: str, cpr: str):
    """The booking, only for the person it belongs to: a wrong CPR looks exactly like an unknown reference."""
    row = uow.execute(sa.select(bookings).where(bookings.c.reference == normalise_reference(reference))).first()
    if row is None or row.cpr != cpr:
        raise NotFound("No booking has this reference and CPR.", code="BOOKING_NOT_FOUND",
                       message_ar="لا يوجد حجز بهذا الرقم المرجعي ورقم الهوية.")
    return row


def get(db: Database, reference: str, cpr: str) -> dict:
    with db.transaction() as uow:
        row = _load_own(uow, reference, cpr)
        return as_answer(row, catalogue.load_branch(uow, row.branch))


def cancel(db: Database, reference: str, cpr: str, now: datetime) -> dict:
    def decide():
        with db.transaction() as uow:
            row = _load_own(uow, reference, cpr)
            branch = catalogue.load_branch(uow, row.branch)
            if row.status == "cancelled":
                return as_answer(row, branch)  # cancelling twice is not an error
            if _aware(row.start) <= now:
                raise Conflict("This appointment has already started and can no longer be cancelled.",
                               code="BOOKING_STARTED", message_ar="بدأ هذا الموعد ولا يمكن إلغاؤه الآن.")
            stream = schedule.slot_stream(row.branch, row.service, _aware(row.start))
            _bump(uow, bookings, bookings.c.reference, row.reference, row.version)
            uow.append(stream, uow.store.stream_version(stream), [NewEvent("booking.BookingCancelled", {
                "reference": row.reference, "branch": row.branch, "service": row.service,
                "start": _aware(row.start).isoformat(), "cancelled_by": "person",
            }, (branch or {}).get("directorate"))])
            uow.execute(bookings.update().where(bookings.c.reference == row.reference)
                        .values(status="cancelled", updated_at=_naive(now)))
            return as_answer(uow.execute(sa.select(bookings).where(bookings.c.reference == row.reference)).one(),
                             branch)

    return retrying("booking", "cancel", decide)


def reschedule(db: Database, reference: str, cpr: str, start: datetime, now: datetime) -> dict:
    def decide():
        with db.transaction() as uow:
            row = _load_own(uow, reference, cpr)
            branch = catalogue.load_branch(uow, row.branch)
            if row.status != "active":
                raise Conflict("A cancelled booking cannot be rescheduled; make a new booking.",
                               code="BOOKING_CANCELLED", message_ar="لا يمكن تغيير موعد حجز ملغى، يرجى إنشاء حجز جديد.")
            if _aware(row.start) <= now:
                raise Conflict("This appointment has already started and can no longer be moved.",
                               code="BOOKING_STARTED", message_ar="بدأ هذا الموعد ولا يمكن تغييره الآن.")
            if start.astimezone(UTC) == _aware(row.start):
                return as_answer(row, branch)  # already there: nothing to do
            slot = rules.bookable_slot(branch, row.branch, row.service, start, now)
            stream, version = _guard_room(uow, row.branch, row.service, slot)
            _bump(uow, bookings, bookings.c.reference, row.reference, row.version)
            uow.append(stream, version, [NewEvent("booking.BookingRescheduled", {
                "reference": row.reference, "branch": row.branch, "service": row.service,
                "previous_start": _aware(row.start).isoformat(), "start": slot.start.isoformat(),
                "end": slot.end.isoformat(),
            }, branch["directorate"])])
            uow.execute(bookings.update().where(bookings.c.reference == row.reference)
                        .values(start=_naive(slot.start), end=_naive(slot.end), updated_at=_naive(now)))
            return as_answer(uow.execute(sa.select(bookings).where(bookings.c.reference == row.reference)).one(),
                             branch)

    return retrying("booking", "reschedule", decide)


def expire(db: Database, consumer: str, event) -> None:
    """The queue says nobody came for a booking: record it as expired (a no-show), once."""
    def decide():
        with db.transaction() as uow:
            if uow.already_processed(consumer, event):
                return
            row = uow.execute(sa.select(bookings).where(bookings.c.reference == event.payload["reference"])).first()
            if row is None or row.status != "active":
                return
            stream = schedule.slot_stream(row.branch, row.service, _aware(row.start))
            _bump(uow, bookings, bookings.c.reference, row.reference, row.version)
            uow.append(stream, uow.store.stream_version(stream), [NewEvent("booking.BookingExpired", {
                "reference": row.reference, "branch": row.branch, "service": row.service,
                "start": _aware(row.start).isoformat()}, event.directorate, causation_id=event.event_id,
                correlation_id=event.correlation_id)])
            uow.execute(bookings.update().where(bookings.c.reference == row.reference).values(status="expired"))

    retrying("booking", "expire", decide)


def erase(db: Database, cpr: str) -> dict:
    """Forget a person: delete their key (every event naming them now reads "[erased]"), scrub this service's
    bookings of them, and record PersonErased so the other services forget their copies too. Counts, slots and
    positions do not change. Erasing twice records nothing new."""
    subject = vault.subject_of(cpr)
    with db.transaction() as uow:
        had_key = uow.store.vault.forget(subject)
        scrubbed = uow.execute(bookings.update().where(bookings.c.cpr == cpr).values(
            cpr=ERASED, name=ERASED,  # as the log now reads them
            mobile=sa.case((bookings.c.mobile.is_(None), None), else_=ERASED),
            email=sa.case((bookings.c.email.is_(None), None), else_=ERASED))).rowcount
        uow.execute(people.delete().where(people.c.cpr == cpr))
        stream = f"person-{subject}"
        version = uow.store.stream_version(stream)
        if had_key or scrubbed or version == 0:
            uow.append(stream, version, [NewEvent("booking.PersonErased", {"subject": subject})])
    log.info("erased person %s: %d bookings scrubbed", mask_cpr(cpr), scrubbed)
    return {"subject": subject, "bookings": scrubbed}
