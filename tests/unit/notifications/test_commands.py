"""Recording what sending did (services/notifications/commands.py `record`): outcomes that finished together go
in one transaction, and a message whose stream moved since it was claimed does not take the others down with it.
Dispatching (`dispatch_due`): an unexpected error sending one message neither stops nor loses the others, and each
batch claims from the clock as it reads when the batch starts. SQLite and PostgreSQL."""
from datetime import timedelta

from shared import catalogue
from shared.clock import clock
from shared.dependencies import service_metadata
from shared.errors import ConcurrencyError
from shared.events import NewEvent
from shared.projection import apply_once
from services.availability import catalogue_file
from services.notifications import commands, plan, projection
from tests.support.store import sequenced


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


def test_a_message_whose_stream_moves_again_while_recorded_alone_leaves_the_others_recorded(open_db, monkeypatch):
    db = open_db("notifications", projection.metadata)
    now = clock.now()
    for key in ("a", "b", "c"):
        schedule(db, key, now)
    a, b, c = _claim(db, now)
    with db.transaction() as uow:  # b's stream moved since the claim: the batch's record falls back to one by one
        commands._append(uow, b, "NotificationWithdrawn", {"reason": "the booking moved to another time"})
    append = commands._append

    def moved_again(uow, item, *args):
        if item["key"] == "a":  # and a's moves once more while it is recorded on its own
            raise ConcurrencyError("notification-a moved")
        return append(uow, item, *args)

    monkeypatch.setattr(commands, "_append", moved_again)
    sent = {"to": "+973****22", "attempts": 1}
    assert commands.record(db, [commands.Outcome(m, "NotificationSent", sent) for m in (a, b, c)]) == 2
    assert versions(db, "a", "b", "c") == [1, 3, 2]  # a is left claimed: taken again once its claim lapses
    monkeypatch.setattr(commands, "_append", append)
    assert [m["key"] for m in _claim(db, now + commands.CLAIM + timedelta(seconds=1))] == ["a"]


class Channel:
    """Keeps what it was given to send; `poison` kinds raise an error that is no refusal (a bug, a surprise)."""

    def __init__(self, poison=(), clock_reads=None):
        self.poison, self.clock_reads, self.sent, self.tried = poison, clock_reads, [], []

    def send(self, message):
        self.tried.append(message.kind)
        if message.kind in self.poison:
            raise RuntimeError(f"cannot send to {message.to}")  # its text names the person: never recorded
        self.sent.append((message.kind, message.date))


def booked_moved_and_cancelled(open_db, now):
    """A booking made, moved and cancelled: a confirmation, a reschedule and a cancellation due now (by email)."""
    db = open_db("notifications", projection.metadata)
    with db.transaction() as uow:
        for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
            if change.stream_id in ("directorate-npra", "branch-npra-isa-town"):
                catalogue.project(uow, change.event)
    booking = open_db("booking", service_metadata())
    start = now.replace(microsecond=0) + timedelta(days=3)
    common = {"reference": "POIS-0001", "branch": "npra-isa-town", "service": "passport-renewal"}

    def happens(type_, **payload):
        with booking.transaction() as uow:
            appended = uow.append("slot", uow.store.stream_version("slot"), [NewEvent(type_, {**common, **payload},
                                                                                      "npra")])
        [event] = sequenced(booking, appended)
        apply_once(db, projection.BOOKINGS_CONSUMER, event,
                   lambda uow, e: commands.on_booking_event(uow, e, now, plan.Settings()))

    happens("booking.SlotBooked", start=start.isoformat(), end=(start + timedelta(minutes=20)).isoformat(),
            channel="web", person={"cpr": "900112345", "name": "Fatima", "mobile": None,
                                   "email": "f@example.com", "language": "en"})
    later = start + timedelta(days=1)
    happens("booking.BookingRescheduled", previous_start=start.isoformat(), start=later.isoformat(),
            end=(later + timedelta(minutes=20)).isoformat())
    happens("booking.BookingCancelled", start=later.isoformat(), cancelled_by="person")
    return db


def test_a_message_that_raises_an_unexpected_error_is_retried_then_failed_and_the_others_are_sent_once(open_db):
    now = clock.now()
    db = booked_moved_and_cancelled(open_db, now)
    channel = Channel(poison={"confirmation"})
    settings = plan.Settings(max_attempts=2, retry_after_seconds=30)
    outbound = commands.Outbound({"email": channel, "sms": channel}, settings, "https://x.example", "k")

    assert commands.dispatch_due(db, outbound, lambda: now, concurrency=2) == 2  # one batch of all three
    assert sorted(kind for kind, _ in channel.sent) == ["cancellation", "reschedule"]
    assert commands.dispatch_due(db, outbound, lambda: now, concurrency=2) == 0  # the retry waits its backoff
    assert commands.dispatch_due(db, outbound, lambda: now + timedelta(seconds=31), concurrency=2) == 1
    assert commands.dispatch_due(db, outbound, lambda: now + commands.CLAIM * 3, concurrency=2) == 0

    assert sorted(channel.tried) == ["cancellation", "confirmation", "confirmation", "reschedule"]
    with db.transaction() as uow:
        assert {(m["kind"], m["status"], m["attempts"]) for m in projection.messages_about(uow, "POIS-0001")
                if m["kind"] != "reminder"} == {("confirmation", "failed", 2), ("reschedule", "sent", 1),
                                                ("cancellation", "sent", 1)}
        [failed] = [e for e in uow.store.read_all(limit=100) if e.type == "notifications.NotificationFailed"]
    assert failed.payload["reason"].startswith("unexpected RuntimeError at ")
    assert "f@example.com" not in str(failed.payload)


def test_each_batch_claims_from_the_clock_as_it_reads_when_the_batch_starts(open_db, monkeypatch):
    start = clock.now()
    db = booked_moved_and_cancelled(open_db, start)
    reads = []

    def slow_clock():  # each batch takes three minutes, longer than a claim
        reads.append(start + timedelta(minutes=3) * len(reads))
        return reads[-1]

    claims = []
    claim_due = projection.claim_due

    def claim(uow, now, until, limit):
        claims.append((reads[-1], until))
        return claim_due(uow, now, until, limit)

    monkeypatch.setattr(commands.projection, "claim_due", claim)
    channel = Channel()
    outbound = commands.Outbound({"email": channel, "sms": channel}, plan.Settings(), "https://x.example", "k")
    assert commands.dispatch_due(db, outbound, slow_clock, concurrency=1) == 3  # batches of two: two batches
    assert len(claims) == 2
    assert all(until > clock_then for clock_then, until in claims)  # no claim already over when it is made
    assert sorted(date for _, date in channel.sent) == [reads[0], reads[0], reads[1]]  # the email's Date too
