"""The availability service's projections: the catalogue (from its own log) and booked places per slot
(from the booking service's events). Both are rebuildable from the logs."""
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


def slot_table(name: str, meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        name, meta,
        sa.Column("branch", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("start", sa.DateTime, primary_key=True),  # naive UTC
        sa.Column("booked", sa.Integer, nullable=False),
    )


slot_bookings = slot_table("slot_bookings", metadata)

BOOKINGS_CONSUMER = "availability.bookings"


# -- booked places ---------------------------------------------------------------------------------------

def _add(uow: UnitOfWork, table: sa.Table, branch: str, service: str, start_iso: str, delta: int) -> None:
    start = to_db(parse_instant(start_iso))
    where = sa.and_(table.c.branch == branch, table.c.service == service, table.c.start == start)
    if uow.execute(table.update().where(where).values(booked=table.c.booked + delta)).rowcount == 0:
        uow.execute(table.insert().values(branch=branch, service=service, start=start, booked=delta))


def apply_booking_event(uow: UnitOfWork, event: Event, table: sa.Table = slot_bookings) -> None:
    """Count places per slot. Each event moves one place, so the counts do not depend on delivery order."""
    p = event.payload
    if event.type == "booking.SlotBooked":
        _add(uow, table, p["branch"], p["service"], p["start"], +1)
    elif event.type == "booking.BookingCancelled":
        _add(uow, table, p["branch"], p["service"], p["start"], -1)
    elif event.type == "booking.BookingRescheduled":
        _add(uow, table, p["branch"], p["service"], p["previous_start"], -1)
        _add(uow, table, p["branch"], p["service"], p["start"], +1)


def booked_counts(uow: UnitOfWork, branch: str, service: str, since: datetime, until: datetime,
                  table: sa.Table = slot_bookings) -> dict:
    """Booked places by slot start (aware UTC) for one branch and service, starts in [since, until)."""
    naive = [to_db(t) for t in (since, until)]
    rows = uow.execute(sa.select(table.c.start, table.c.booked).where(
        table.c.branch == branch, table.c.service == service, table.c.start >= naive[0], table.c.start < naive[1]))
    return {from_db(r.start): r.booked for r in rows}


# All that counting places reads of a booking event (shared.projection.read_log's `fields`).
BOOKING_FIELDS = ["branch", "service", "start", "previous_start"]


def rebuild_booked_places(uow: UnitOfWork, pages, table: sa.Table = slot_bookings) -> None:
    """apply_booking_event over a whole log into an empty table (a replay): the moves are summed per slot in
    memory, which grows with the slots and not with the log, and the counts written a page at a time."""
    moves = {}
    for page in pages:
        for event in page:
            p, type_ = event.payload, event.type
            if type_ == "booking.SlotBooked":
                key = (p["branch"], p["service"], p["start"])
                moves[key] = moves.get(key, 0) + 1
            elif type_ == "booking.BookingCancelled":
                key = (p["branch"], p["service"], p["start"])
                moves[key] = moves.get(key, 0) - 1
            elif type_ == "booking.BookingRescheduled":
                freed, taken = (p["branch"], p["service"], p["previous_start"]), (p["branch"], p["service"], p["start"])
                moves[freed] = moves.get(freed, 0) - 1
                moves[taken] = moves.get(taken, 0) + 1
    counts = {}
    for (branch, service, start), delta in moves.items():  # two spellings of one instant are one slot
        key = (branch, service, to_db(parse_instant(start)))
        counts[key] = counts.get(key, 0) + delta
    del moves
    for rows in in_pages({"branch": b, "service": s, "start": t, "booked": n} for (b, s, t), n in counts.items()):
        uow.execute(table.insert(), rows)
