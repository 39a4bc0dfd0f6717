"""What the booking service does when the catalogue shrinks under its bookings.

The rule: a booking that has not started yet is cancelled by the booking service when the catalogue takes its
place away, with the reason its person is told in their language (the cancellation notice):
    availability.ServiceWithdrawn   the branch no longer offers the service          reason `service_withdrawn`
    availability.BranchRetired      the branch closed down                          reason `branch_retired`
    availability.HolidayDeclared    the branch is closed that day (a new holiday)   reason `holiday`
Bookings that have started or are over are history and stay as they are; so do cancelled and expired ones. A
cancelled holiday, a service offered again or a branch reopened gives nothing back: those people book again.

The booking service hears these events on its catalogue subscription. Its copy of the catalogue changes first,
in its own transaction, so that no new booking of what is gone is taken from then on; then each booking it
leaves without a place is cancelled as a command of its own (commands.cancel_for_catalogue: BookingCancelled
with the availability event as its cause); only then is the event recorded as processed. A crash on the way
delivers the event again (or the catch-up reads it again from availability's log): the copy is set again (the
fold sets state, so twice is once), the bookings already cancelled are no longer active and are passed over,
and the rest are cancelled. A redelivery after the end is dropped as processed, so nothing is cancelled twice.
"""
import logging
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from shared import catalogue
from shared.clock import LOCAL
from shared.eventstore import Database
from shared.projection import apply_once
from services.booking import commands, projection, rules

log = logging.getLogger(__name__)


def _processed(uow, consumer: str, event) -> bool:
    table = uow.tables["processed_events"]
    return uow.execute(sa.select(table.c.position).where(
        table.c.consumer == consumer, table.c.event_id == event.event_id)).first() is not None


def affected(uow, event, now: datetime) -> list[str]:
    """References of the bookings `event` leaves without a place that have not started by `now`."""
    p = event.payload
    if event.type == "availability.ServiceWithdrawn":
        return projection.active_references(uow, p["branch"], now, service=p["service"])
    if event.type == "availability.BranchRetired":
        return projection.active_references(uow, p["branch"], now)
    day = datetime.combine(date.fromisoformat(str(p["date"])), time(0), LOCAL)  # the centres' day
    return projection.active_references(uow, p["branch"], max(now, day - timedelta(microseconds=1)),
                                        before=day + timedelta(days=1))


def on_catalogue_event(db: Database, consumer: str, event, now: datetime) -> int:
    """Keep the catalogue copy and, for an event that takes places away, cancel the bookings it leaves without
    one (as the module says); returns how many were cancelled."""
    reason = rules.CATALOGUE_REASONS.get(event.type)
    if reason is None:
        apply_once(db, consumer, event, catalogue.project)
        return 0
    with db.transaction() as uow:
        if _processed(uow, consumer, event):
            return 0
        catalogue.project(uow, event)  # first, and on its own: from here on nothing new is booked into what is gone
        references = affected(uow, event, now)
    cancelled = sum(commands.cancel_for_catalogue(db, reference, reason, event, now) for reference in references)
    apply_once(db, consumer, event, lambda uow, e: None)  # done: the copy was set above
    if cancelled:
        log.info("%s at %s: cancelled %d bookings (%s)", event.type, event.payload["branch"], cancelled, reason)
    return cancelled
