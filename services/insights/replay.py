"""Rebuilding the insights service's tables from the logs and comparing them with the live ones (`mawaeed replay
insights`): the bookings from booking's log, the visits and counter sessions from the queue's, and its copy of
the catalogue from availability's. It keeps no log of its own (its event store stays empty)."""
from shared import catalogue
from shared.eventstore import Database
from shared.projection import Logs, Replayed, rebuild_and_compare
from services.insights import projection


def replay(db: Database, logs: Logs, progress=None) -> list[Replayed]:
    return [
        rebuild_and_compare(db, logs.of("booking"), projection.apply_booking_event, ["bookings"], progress=progress),
        rebuild_and_compare(db, logs.of("queue"), projection.apply_queue_event, ["visits", "counter_sessions"]),
        *catalogue.replay(db, logs),
    ]
