"""A slot's bookings as they stood at a past instant, folded from the booking log (time travel)."""
from datetime import datetime

from shared.clock import LOCAL, from_db, to_db
from shared.contracts import upcast
from shared.eventstore import Database
from services.booking.fold import evolve


def slot_at(db: Database, branch: str, service: str, start: datetime, instant: datetime) -> list[dict]:
    """Every booking that held or had held a place in the slot by `instant`: reference, status, channel."""
    bookings, after = {}, 0
    while True:
        with db.transaction() as uow:
            page = uow.store.read_all(after=after, limit=5000)
        if not page:
            break
        for event in page:
            if event.occurred_at > instant:
                return _in(bookings, branch, service, start)
            event = upcast(event)
            reference = event.payload.get("reference")
            if (booking := evolve(bookings.get(reference), event)) is not None:
                bookings[reference] = booking
        after = page[-1].position
    return _in(bookings, branch, service, start)


def _in(bookings: dict, branch: str, service: str, start: datetime) -> list[dict]:
    # booked_at as every other time a person reads: Bahrain time with its offset
    slot = (branch, service, to_db(start))
    return [{"reference": b["reference"], "branch": b["branch"], "service": b["service"], "status": b["status"],
             "channel": b["channel"], "booked_at": from_db(b["created_at"]).astimezone(LOCAL).isoformat()}
            for b in bookings.values() if (b["branch"], b["service"], b["start"]) == slot]
