"""A slot's bookings as they stood at a past instant, folded from the booking log (time travel)."""
from datetime import datetime

from shared.clock import parse_instant
from shared.contracts import upcast
from shared.eventstore import Database


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
            p = event.payload
            if event.type == "booking.SlotBooked":
                bookings[p["reference"]] = {"reference": p["reference"], "branch": p["branch"], "service": p["service"],
                                            "start": parse_instant(p["start"]), "status": "active",
                                            "channel": p["channel"], "booked_at": event.occurred_at.isoformat()}
            elif event.type == "booking.BookingRescheduled" and p["reference"] in bookings:
                bookings[p["reference"]]["start"] = parse_instant(p["start"])
            elif event.type in ("booking.BookingCancelled", "booking.BookingExpired") and p["reference"] in bookings:
                bookings[p["reference"]]["status"] = "cancelled" if event.type.endswith("Cancelled") else "expired"
        after = page[-1].position
    return _in(bookings, branch, service, start)


def _in(bookings: dict, branch: str, service: str, start: datetime) -> list[dict]:
    return [{k: v for k, v in b.items() if k != "start"} for b in bookings.values()
            if (b["branch"], b["service"], b["start"]) == (branch, service, start)]
