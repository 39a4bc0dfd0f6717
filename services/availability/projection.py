"""The availability service's tables: the catalogue's (shared/catalogue.py keeps them from its own log), booked
places per slot and the cancellations that freed places (from the booking service's events). All are rebuildable
from the logs."""
from datetime import datetime

import sqlalchemy as sa

from shared import catalogue
from shared.clock import from_db, parse_instant, to_db
from shared.events import Event
from shared.projection import pages as in_pages
from shared.dependencies import service_metadata
from shared.eventstore import UnitOfWork

metadata = service_metadata()
catalogue.catalogue_tables(metadata)
slot_bookings = sa.Table(
    "slot_bookings", metadata,
    sa.Column("branch", sa.String(64), primary_key=True),
    sa.Column("service", sa.String(64), primary_key=True),
    sa.Column("start", sa.DateTime, primary_key=True),  # naive UTC
    sa.Column("booked", sa.Integer, nullable=False),
)
# Each cancellation, with when it freed its place: a branch with a release delay counts the place as taken until
# cancelled_at + delay (shared.schedule.release_delay), so a place handed over by cancelling is not there at once.
cancelled_places = sa.Table(
    "cancelled_places", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("branch", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),          # naive UTC
    sa.Column("cancelled_at", sa.DateTime, nullable=False),   # naive UTC
    sa.Index("ix_cancelled_places_slot", "branch", "service", "start"),
)

BOOKINGS_CONSUMER = "availability.bookings"


# -- booked places ---------------------------------------------------------------------------------------

# What each booking event does to the places of slots, written once for the live count and the replay:
# (branch, service, start as the event spells it, +1 a place taken or -1 a place freed).
MOVES = {
    "booking.SlotBooked": lambda p: [(p["branch"], p["service"], p["start"], +1)],
    "booking.BookingCancelled": lambda p: [(p["branch"], p["service"], p["start"], -1)],
    "booking.BookingRescheduled": lambda p: [(p["branch"], p["service"], p["previous_start"], -1),
                                             (p["branch"], p["service"], p["start"], +1)],
}
# All that MOVES reads of a booking event (shared.projection.read_log's `fields`).
BOOKING_FIELDS = ["branch", "service", "start", "previous_start"]


def moves(event: Event) -> list[tuple[str, str, str, int]]:
    """The places `event` moves (none for the booking events that move no place, such as an expiry)."""
    rule = MOVES.get(event.type)
    return rule(event.payload) if rule else []


def cancellation(event: Event) -> dict | None:
    """The cancelled_places row of a cancellation, None for any other event."""
    if event.type != "booking.BookingCancelled":
        return None
    p = event.payload
    return {"event_id": event.event_id, "branch": p["branch"], "service": p["service"],
            "start": to_db(parse_instant(p["start"])), "cancelled_at": to_db(event.occurred_at)}


# built once, with parameters: a booking event is one statement, not a statement built, keyed and cached each time
_MOVE_PLACES = slot_bookings.update().where(
    slot_bookings.c.branch == sa.bindparam("key_branch"), slot_bookings.c.service == sa.bindparam("key_service"),
    slot_bookings.c.start == sa.bindparam("key_start")).values(booked=slot_bookings.c.booked + sa.bindparam("delta"))


def apply_booking_event(uow: UnitOfWork, event: Event) -> None:
    """Count places per slot. Each move is an increment, so the counts do not depend on delivery order."""
    for branch, service, start_iso, delta in moves(event):
        start = to_db(parse_instant(start_iso))
        if uow.execute(_MOVE_PLACES, {"key_branch": branch, "key_service": service, "key_start": start,
                                      "delta": delta}).rowcount == 0:
            uow.execute(slot_bookings.insert(), {"branch": branch, "service": service, "start": start, "booked": delta})
    if row := cancellation(event):
        uow.execute(cancelled_places.insert(), row)


def booked_counts(uow: UnitOfWork, branch: str, service: str, since: datetime, until: datetime) -> dict:
    """Booked places by slot start (aware UTC) for one branch and service, starts in [since, until)."""
    naive, table = [to_db(t) for t in (since, until)], slot_bookings
    rows = uow.execute(sa.select(table.c.start, table.c.booked).where(
        table.c.branch == branch, table.c.service == service, table.c.start >= naive[0], table.c.start < naive[1]))
    return {from_db(r.start): r.booked for r in rows}


def held_counts(uow: UnitOfWork, branch: str, service: str, since: datetime, until: datetime,
                cancelled_after: datetime) -> dict:
    """Places still held by cancellations made after `cancelled_after` (now minus the branch's release delay), by
    slot start (aware UTC), starts in [since, until)."""
    naive, table = [to_db(t) for t in (since, until)], cancelled_places
    rows = uow.execute(sa.select(table.c.start, sa.func.count()).where(
        table.c.branch == branch, table.c.service == service, table.c.start >= naive[0], table.c.start < naive[1],
        table.c.cancelled_at > to_db(cancelled_after)).group_by(table.c.start))
    return {from_db(start): held for start, held in rows}


def rebuild_booked_places(uow: UnitOfWork, pages) -> None:
    """apply_booking_event over a whole log into an empty table (a replay): the moves are summed per slot in
    memory, which grows with the slots and not with the log, and the counts written a page at a time."""
    moved = {}
    for page in pages:
        cancelled = [row for row in map(cancellation, page) if row]
        if cancelled:
            uow.execute(cancelled_places.insert(), cancelled)
        for event in page:
            for branch, service, start, delta in moves(event):
                key = (branch, service, start)
                moved[key] = moved.get(key, 0) + delta
    counts = {}
    for (branch, service, start), delta in moved.items():  # two spellings of one instant are one slot
        key = (branch, service, to_db(parse_instant(start)))
        counts[key] = counts.get(key, 0) + delta
    del moved
    for rows in in_pages({"branch": b, "service": s, "start": t, "booked": n} for (b, s, t), n in counts.items()):
        uow.execute(slot_bookings.insert(), rows)
