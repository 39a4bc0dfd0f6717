"""Rebuilding the bookings table from the booking log and comparing it with the live one (`mawaeed replay
booking`, and the replay bench). Commands write the table directly, so this checks that the two agree."""
from shared.eventstore import Database
from shared.projection import Logs, Replayed, rebuild_and_compare
from services.booking import projection


def replay(db: Database, logs: Logs, progress=None) -> list[Replayed]:
    return [rebuild_and_compare(db, logs.own(), projection.rebuild, ["bookings"],
                                {"bookings": {"version", "created_at", "updated_at"}}, progress, batched=True,
                                what="bookings table")]
