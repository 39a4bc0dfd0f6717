"""Book, cancel, reschedule and expire a booking: load, decide with rules.py, append at the expected version,
write the bookings table (projection.py), in one transaction. Also: show a booking, and erase a person.

The decision "is there room" is guarded by the slot's stream: every booking into a slot appends to that
stream at the version read with the count of the slot's bookings, so two bookings racing for the last place
cannot both commit. A command that loses such a race is decided again from fresh state.
"""
import logging
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa

from shared import catalogue, schedule, vault
from shared.clock import LOCAL, from_db, to_db
from shared.errors import NotFound
from shared.eventstore import Database, UnitOfWork
from shared.events import NewEvent
from shared.masking import mask_cpr
from shared.retry import retrying
from services.booking import projection, rules
from services.booking.references import new_reference, normalise_reference

log = logging.getLogger(__name__)


def as_answer(row, branch: dict | None) -> dict:
    service = (_named(branch) or {}).get("services", {}).get(row.service, {})
    return {
        "reference": row.reference, "status": row.status, "branch": row.branch, "service": row.service,
        "branch_name_en": (branch or {}).get("name_en"), "branch_name_ar": (branch or {}).get("name_ar"),
        "service_name_en": service.get("name_en"), "service_name_ar": service.get("name_ar"),
        "start": from_db(row.start).astimezone(LOCAL).isoformat(),
        "end": from_db(row.end).astimezone(LOCAL).isoformat(),
        "name": row.name, "language": row.language, "channel": row.channel,
    }


def _named(branch: dict | None) -> dict | None:
    """The branch with the services it no longer offers named too: a booking of a withdrawn service is shown."""
    return schedule.with_former_services(branch) if branch else None


def _guard_room(uow: UnitOfWork, branch: dict, branch_id: str, service_id: str, slot: schedule.Slot,
                now: datetime) -> tuple[str, int]:
    """(slot stream, expected version) when the slot has room; a booking committed after the count moves the
    version, and the append fails. A place cancelled less than the branch's release delay ago is still taken."""
    stream = schedule.slot_stream(branch_id, service_id, slot.start)
    delay = schedule.release_delay(branch)
    version, taken = projection.slot_version_and_taken(uow, stream, branch_id, service_id, slot.start,
                                                       now - delay if delay else None)
    rules.check_room(slot, taken)
    return stream, version


def book(db: Database, request: dict, now: datetime, max_active: int) -> dict:
    cpr, branch_id, service_id = request["cpr"], request["branch"], request["service"]
    channel = request.get("channel", "web")

    def decide():
        with db.transaction() as uow:
            branch = catalogue.load_branch(uow, branch_id)
            slot = rules.bookable_slot(branch, branch_id, service_id, request["start"], now)
            projection.claim_person(uow, cpr)
            active = [rules.ActiveBooking(r.reference, r.service, from_db(r.start))
                      for r in projection.active_bookings(uow, cpr, now)]
            rules.check_person(active, service_id, max_active)
            stream, version = _guard_room(uow, branch, branch_id, service_id, slot, now)
            person = {k: request.get(k) for k in ("cpr", "name", "mobile", "email", "language")}
            row = dict(reference=new_reference(), version=1, branch=branch_id, service=service_id,
                       start=to_db(slot.start), end=to_db(slot.end), status="active", channel=channel,
                       created_at=to_db(now), updated_at=to_db(now), **person)
            projection.insert(uow, row)
            uow.append(stream, version, [NewEvent("booking.SlotBooked", {
                "reference": row["reference"], "branch": branch_id, "service": service_id,
                "start": slot.start.isoformat(), "end": slot.end.isoformat(), "person": person,
                "channel": channel,
            }, branch["directorate"])])  # last: the log's append lock is held from here to the commit
            return as_answer(SimpleNamespace(**row), branch)

    return retrying("booking", "book", decide)


def _load_own(uow: UnitOfWork, reference: str, cpr: str):
    row = projection.booking(uow, normalise_reference(reference))
    rules.check_owner(row, cpr)
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
            start = from_db(row.start)
            if not rules.check_cancel(row.status, start, now):
                return as_answer(row, branch)  # cancelled already
            _cancel(uow, row, (branch or {}).get("directorate"), now, "person", "requested")
            return as_answer(projection.booking(uow, row.reference), branch)

    return retrying("booking", "cancel", decide)


def _cancel(uow: UnitOfWork, row, directorate: str | None, now: datetime, cancelled_by: str, reason: str,
            cause=None) -> None:
    """Record a booking's cancellation on its slot's stream (freeing the place) and in its row."""
    start = from_db(row.start)
    stream = schedule.slot_stream(row.branch, row.service, start)
    projection.bump(uow, row.reference, row.version)
    uow.append(stream, uow.store.stream_version(stream), [NewEvent("booking.BookingCancelled", {
        "reference": row.reference, "branch": row.branch, "service": row.service,
        "start": start.isoformat(), "cancelled_by": cancelled_by, "reason": reason,
    }, directorate, causation_id=cause and cause.event_id, correlation_id=cause and cause.correlation_id)])
    projection.update(uow, row.reference, status="cancelled", updated_at=to_db(now))


def cancel_for_catalogue(db: Database, reference: str, reason: str, cause, now: datetime) -> bool:
    """Cancel one booking the catalogue change `cause` (an availability event) left without a place, as a command
    of its own; True when it cancelled it. Deciding again is harmless: a booking already cancelled, expired or
    started is left alone (rules.closes_for_catalogue), so a redelivered `cause` cancels nothing twice."""
    def decide():
        with db.transaction() as uow:
            row = projection.booking(uow, reference)
            if row is None or not rules.closes_for_catalogue(row.status, from_db(row.start), now):
                return False
            _cancel(uow, row, cause.directorate, now, "system", reason, cause)
            return True

    return retrying("booking", "cancel-for-catalogue", decide)


def reschedule(db: Database, reference: str, cpr: str, start: datetime, now: datetime) -> dict:
    def decide():
        with db.transaction() as uow:
            row = _load_own(uow, reference, cpr)
            branch = catalogue.load_branch(uow, row.branch)
            was = from_db(row.start)
            if not rules.check_reschedule(row.status, was, start, now):
                return as_answer(row, branch)  # there already
            slot = rules.bookable_slot(branch, row.branch, row.service, start, now)
            stream, version = _guard_room(uow, branch, row.branch, row.service, slot, now)
            projection.bump(uow, row.reference, row.version)
            uow.append(stream, version, [NewEvent("booking.BookingRescheduled", {
                "reference": row.reference, "branch": row.branch, "service": row.service,
                "previous_start": was.isoformat(), "start": slot.start.isoformat(),
                "end": slot.end.isoformat(),
            }, branch["directorate"])])
            projection.update(uow, row.reference, start=to_db(slot.start), end=to_db(slot.end),
                              updated_at=to_db(now))
            return as_answer(projection.booking(uow, row.reference), branch)

    return retrying("booking", "reschedule", decide)


def expire(db: Database, consumer: str, event) -> None:
    """The queue says nobody came for a booking: record it as expired (a no-show), once."""
    def decide():
        with db.transaction() as uow:
            if uow.already_processed(consumer, event):
                return
            row = projection.booking(uow, event.payload["reference"])
            if row is None or not rules.expires(row.status):
                return
            start = from_db(row.start)
            stream = schedule.slot_stream(row.branch, row.service, start)
            projection.bump(uow, row.reference, row.version)
            uow.append(stream, uow.store.stream_version(stream), [NewEvent("booking.BookingExpired", {
                "reference": row.reference, "branch": row.branch, "service": row.service,
                "start": start.isoformat()}, event.directorate, causation_id=event.event_id,
                correlation_id=event.correlation_id)])
            projection.update(uow, row.reference, status="expired")

    retrying("booking", "expire", decide)


def bookings_of(db: Database, cpr: str) -> list[dict]:
    """Every booking of one person, at every branch of every directorate, soonest first."""
    with db.transaction() as uow:
        rows = projection.bookings_of(uow, cpr)
        branches = {branch_id: catalogue.load_branch(uow, branch_id) for branch_id in {r.branch for r in rows}}
    return [as_answer(row, branches[row.branch]) for row in rows]


def _known(uow, cpr: str, subject: str) -> bool:
    """Whether this service ever knew the person: a key, a booking or a person row, or an erasure recorded."""
    return bool(uow.store.vault._key(subject, create=False) or projection.bookings_of(uow, cpr)
                or uow.execute(sa.select(projection.people.c.cpr).where(projection.people.c.cpr == cpr)).first()
                or uow.store.stream_version(f"person-{subject}") > 0)


def known(db: Database, cpr: str) -> bool:
    """Whether booking knows the person (asked before an operator confirms an erasure): nothing is written."""
    with db.transaction() as uow:
        return _known(uow, cpr, vault.subject_of(cpr))


def erase(db: Database, cpr: str, actor: dict | None = None, known_elsewhere: bool = False) -> dict:
    """Forget a person: delete their key (every event naming them now reads "[erased]"), scrub this service's
    bookings of them, and record PersonErased (with who asked, `actor`) so the other services forget their
    copies too. Counts, slots and positions do not change. Erasing twice records nothing new. A CPR that no
    service knows (`known_elsewhere`: the queue's walk-ins, as the CLI finds them) is refused, writing nothing:
    a typo must not leave a PersonErased naming someone who never came."""
    subject = vault.subject_of(cpr)
    with db.transaction() as uow:
        if not known_elsewhere and not _known(uow, cpr, subject):
            raise NotFound("Nobody with this CPR is known to the suite.", code="PERSON_UNKNOWN",
                           message_ar="لا يوجد شخص بهذا الرقم الشخصي لدى النظام.")
        had_key = uow.store.vault.forget(subject)
        scrubbed = projection.forget(uow, cpr)
        stream = f"person-{subject}"
        version = uow.store.stream_version(stream)
        if rules.records_erasure(had_key or scrubbed > 0, version > 0):
            uow.append(stream, version, [NewEvent("booking.PersonErased", {"subject": subject}, actor=actor)])
    log.info("erased person %s: %d bookings scrubbed", mask_cpr(cpr), scrubbed)
    return {"subject": subject, "bookings": scrubbed}
