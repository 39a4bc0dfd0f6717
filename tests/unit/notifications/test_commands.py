"""Recording what sending did (services/notifications/commands.py `record`): outcomes that finished together go
in one transaction, and a message whose stream moved since it was claimed does not take the others down with it.
SQLite and PostgreSQL."""
from datetime import timedelta

from shared.clock import clock
from shared.events import NewEvent
from services.notifications import commands, projection


def schedule(db, key: str, now) -> None:
    with db.transaction() as uow:
        [event] = uow.append(f"notification-{key}", 0, [NewEvent("notifications.NotificationScheduled", {
            "key": key, "kind": "reminder", "channel": "sms", "due_at": now.isoformat(), "reference": "AAAA-0001",
            "ticket_id": None, "source_event_id": "e", "appointment_start": (now + timedelta(days=1)).isoformat(),
            "details": {}})])
        projection.project(uow, event)


def versions(db, *keys) -> list[int]:
    with db.transaction() as uow:
        return [uow.store.stream_version(f"notification-{key}") for key in keys]


def test_outcomes_are_recorded_together_and_one_withdrawn_meanwhile_still_says_it_was_sent(open_db):
    db = open_db("notifications", projection.metadata)
    now = clock.now()
    for key in ("a", "b", "c"):
        schedule(db, key, now)
    with db.transaction() as uow:
        a, b, c = projection.claim_due(uow, now, now + commands.CLAIM)
    assert commands.record(db, [commands.Outcome(a, "NotificationSent", {"to": "+973****22", "attempts": 1}),
                                commands.Outcome(c, attempts=1, retry_at=now + timedelta(minutes=1))]) == 1
    assert versions(db, "a", "c") == [2, 1]  # a retry is bookkeeping, not an event

    with db.transaction() as uow:  # the booking moved while b was being sent: its reminder is withdrawn
        commands._append(uow, b, "NotificationWithdrawn", {"reason": "the booking moved to another time"})
    [c] = [m for m in _claim(db, now + timedelta(minutes=1)) if m["key"] == "c"]
    assert commands.record(db, [commands.Outcome(b, "NotificationSent", {"to": "+973****22", "attempts": 1}),
                                commands.Outcome(c, "NotificationSent", {"to": "+973****22", "attempts": 2})]) == 2
    assert versions(db, "a", "b", "c") == [2, 3, 2]  # b's sending recorded after its withdrawal, c's not lost
    with db.transaction() as uow:
        assert {m["status"] for m in projection.messages_about(uow, "AAAA-0001")} == {"sent"}


def _claim(db, at):
    with db.transaction() as uow:
        return projection.claim_due(uow, at, at + commands.CLAIM)
