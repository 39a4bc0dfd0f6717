"""Rebuilding availability's booked places per slot from the booking log and comparing them with the live ones
(`mawaeed replay availability`, and the replay bench)."""
from shared.projection import rebuild_and_compare as rebuild_tables
from shared.eventstore import Database
from services.availability import projection


def rebuild_and_compare(live: Database, booking_events, progress=None) -> dict:
    """`booking_events`: the booking log, from the feed or, with only the fields counting reads,
    `read_log(booking's database, fields=projection.BOOKING_FIELDS)`."""
    return rebuild_tables(live, booking_events, projection.rebuild_booked_places, ["slot_bookings"],
                          progress=progress, batched=True)

