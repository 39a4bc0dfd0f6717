"""Rebuilding the waiting room from the log (services/queue/replay.py): the suite's replay contract, and the
waiting room as it stood at a past instant."""
from shared.projection import Logs
from services.queue import commands, projection, replay
from tests.unit.queue.conftest import (BRANCH, KEY, MONDAY, PASSPORT, PUBLIC_URL, RESIDENCE, at, book, cancel, tick,
                                       walk_in)


class BookingsAsDelivered(Logs):
    """The logs a replay reads: the queue's own, and booking's as the queue was given it."""

    def __init__(self, db, booking_events):
        super().__init__(db)
        self.booking_events = booking_events

    def of(self, service, fields=None):
        assert service == "booking"
        return iter(self.booking_events)


def test_replay_rebuilds_the_waiting_rooms_and_the_appointments_and_finds_what_differs(db):
    bookings = [book(db, "ACDE-FGHJ", "900112345", PASSPORT, 9), book(db, "XY34-679A", "880312345", PASSPORT, 10),
                cancel(db, "XY34-679A", PASSPORT, 10)]
    walk_in(db, PASSPORT, "900212345", tick(9))
    commands.open_counter(db, BRANCH, "1", [PASSPORT], tick(9))
    commands.call_next(db, BRANCH, "1", tick(9, 1))
    commands.close_day(db, BRANCH, MONDAY)  # ACDE-FGHJ never came
    passed = []
    rooms, appointments = replay.replay(db, BookingsAsDelivered(db, bookings), progress=passed.append)
    assert (rooms.what, rooms.events, rooms.note, rooms.identical) == ("waiting rooms", 7, "of 1 branch days", True)
    assert (appointments.what, appointments.events, appointments.identical) == ("appointments table", 4, True)
    assert passed == [7]  # the position of the queue's log it has read up to

    with db.engine.begin() as conn:  # a live table that no longer tells the log's story
        conn.execute(projection.tickets.update().values(status="served"))
    rooms, _ = replay.replay(db, BookingsAsDelivered(db, bookings))
    assert list(rooms.differences) == [f"{BRANCH} 2026-12-07"]


def test_the_waiting_room_at_a_past_instant_is_what_the_live_view_showed_then(db):
    """`mawaeed at queue`: time travel replays the day's log up to the instant."""
    commands.open_counter(db, BRANCH, "1", [PASSPORT, RESIDENCE], tick(9))
    first = walk_in(db, PASSPORT, "900112345", tick(9, 1))
    walk_in(db, RESIDENCE, "900112346", tick(9, 2))
    commands.call_next(db, BRANCH, "1", tick(9, 5))
    seen_then = commands.waiting_room(db, BRANCH, MONDAY, tick(9, 6))
    commands.served(db, first["id"], tick(9, 20), KEY, PUBLIC_URL)
    walk_in(db, PASSPORT, "900112347", tick(9, 21))
    commands.call_next(db, BRANCH, "1", tick(9, 25))
    assert replay.waiting_room_at(db, BRANCH, at(9, 6)) == seen_then
    assert replay.waiting_room_at(db, BRANCH, at(9, 30)) == commands.waiting_room(db, BRANCH, MONDAY, tick(9, 30))
