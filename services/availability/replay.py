"""Rebuilding availability's booked places per slot (and the cancellations that freed them) from the booking log
and comparing them with the live ones (`mawaeed replay availability`, and the replay bench)."""
from shared.eventstore import Database
from shared.projection import Logs, Replayed, rebuild_and_compare
from services.availability import projection


def replay(db: Database, logs: Logs, progress=None) -> list[Replayed]:
    """The slot counts and the cancellations that freed places, from booking's log: through the feed, or read
    directly with only the fields counting reads (`projection.BOOKING_FIELDS`: nothing personal is decrypted)."""
    return [rebuild_and_compare(db, logs.of("booking", projection.BOOKING_FIELDS), projection.rebuild_booked_places,
                                ["slot_bookings", "cancelled_places"], progress=progress, batched=True,
                                what="availability slot counts")]
