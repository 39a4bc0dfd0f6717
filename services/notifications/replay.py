"""Rebuilding the notifications service's tables and comparing them with the live ones (`mawaeed replay
notifications`): the messages from its own log (retry bookkeeping left out), the contacts from booking's log and
the ticket links from the queue's."""
from shared.eventstore import Database
from shared.projection import Logs, Replayed, rebuild_and_compare
from services.notifications import projection


def replay(db: Database, logs: Logs, progress=None) -> list[Replayed]:
    return [
        rebuild_and_compare(db, logs.own(), projection.project, ["messages"],
                            {"messages": {"attempts", "next_attempt_at", "claimed_until"}}, progress),
        # the subject is a lookup key derived from the CPR: once a person is erased the log no longer yields it
        rebuild_and_compare(db, logs.of("booking"), projection.apply_booking_event, ["contacts"],
                            {"contacts": {"subject"}}),
        rebuild_and_compare(db, logs.of("queue"), projection.apply_queue_event, ["tickets"]),
    ]
