"""The one fold of the booking log: a booking after each of its events, as pure functions over plain data.

Every reader of the log folds with `evolve`, so none can read an event differently: the bookings table projected
event by event or rebuilt page by page (projection.py), and a slot's bookings at a past instant (history.py). A
booking is a row of the bookings table as the log describes it: instants naive UTC as stored, `version` 0 (the
commands' optimistic lock, which a replay leaves out of its comparison).
"""
from functools import lru_cache

from shared.clock import parse_instant, to_db


@lru_cache(maxsize=1 << 16)
def db_instant(text: str):
    """An event's instant as the table stores it. Cached: a replay meets each slot's start many times."""
    return to_db(parse_instant(text))


def _booked(_, event) -> dict:
    p, person, at = event.payload, event.payload["person"], to_db(event.occurred_at)
    return {"reference": p["reference"], "version": 0, "cpr": person["cpr"], "branch": p["branch"],
            "service": p["service"], "start": db_instant(p["start"]), "end": db_instant(p["end"]),
            "status": "active", "name": person["name"], "mobile": person.get("mobile"),
            "email": person.get("email"), "language": person["language"], "channel": p["channel"],
            "created_at": at, "updated_at": at}


def _status(status: str):
    """A step closing a booking as `status`; a change to no booking makes none."""
    return lambda booking, _: None if booking is None else {**booking, "status": status}


def _rescheduled(booking: dict | None, event) -> dict | None:
    p = event.payload
    return None if booking is None else {**booking, "start": db_instant(p["start"]), "end": db_instant(p["end"])}


# PersonErased has no step: once the person's key is gone, their SlotBooked already reads "[erased]".
STEPS = {
    "booking.SlotBooked": _booked,
    "booking.BookingCancelled": _status("cancelled"),
    "booking.BookingExpired": _status("expired"),
    "booking.BookingRescheduled": _rescheduled,
}


def evolve(booking: dict | None, event) -> dict | None:
    """The booking after `event` (upcast to its latest version): SlotBooked makes it, a change to no booking (None)
    leaves none, any other event leaves it as it is. `{}` stands for a booking whose earlier events were written
    elsewhere (a replay's earlier page): what comes back is then only what the event changed."""
    step = STEPS.get(event.type)
    return booking if step is None else step(booking, event)
