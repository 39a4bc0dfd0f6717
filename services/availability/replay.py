"""Rebuilding availability's booked places per slot from the booking log and comparing them with the live ones
(`mawaeed replay availability`, and the replay bench)."""
from shared.projection import rebuild_and_compare as rebuild_tables
from shared.store import Database
from services.availability import projection


def rebuild_and_compare(live: Database, booking_events, progress=None) -> dict:
    """`booking_events`: the booking log, from the feed or straight from booking's database."""
    return rebuild_tables(live, booking_events, projection.apply_booking_event, ["slot_bookings"], progress=progress)


def booking_log(booking: Database):
    """The booking log straight from booking's database (`mawaeed replay availability --direct`)."""
    from shared.export import select
    return select(booking, None, None, None)
