"""psycopg2 under eventlet: a query's wait lets the other greenlets run (psycogreen).

Appends hold no lock of the log until their commit (their positions are given after it, by the sequencer in
shared/eventstore.py), so every wait on the database may yield: nothing another writer waits for is held across
a turn of the hub.
"""
from psycopg2 import extensions


def patch() -> None:
    """Make psycopg2 cooperative (eventlet is imported here, not when the store is: tools need no eventlet)."""
    from psycogreen.eventlet import eventlet_wait_callback
    extensions.set_wait_callback(eventlet_wait_callback)
