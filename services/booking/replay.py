"""Rebuilding the bookings table from the booking log and comparing it with the live one (`mawaeed replay
booking`, and the replay bench). Commands write the table directly, so this checks that the two agree."""
from shared.projection import read_log, rebuild_and_compare as rebuild_tables
from shared.eventstore import Database
from services.booking import projection


def rebuild_and_compare(live: Database, progress=None) -> dict:
    return rebuild_tables(live, read_log(live), projection.rebuild, ["bookings"],
                          {"bookings": {"version", "created_at", "updated_at"}}, progress, batched=True)
