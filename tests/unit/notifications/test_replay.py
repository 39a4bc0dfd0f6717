"""The notifications service's replay (services/notifications/replay.py): booking's and the queue's events taken
live by its consumers, the messages they call for sent, failed or withdrawn, and then every table rebuilt from the
logs is the live one; a row changed by hand is named, retry bookkeeping is not. SQLite and PostgreSQL."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from shared import catalogue, vault
from shared.clock import clock
from shared.contracts import types_of
from shared.dependencies import service_metadata
from shared.events import NewEvent
from shared.projection import Logs, apply_once
from services.availability import catalogue_file
from services.notifications import commands, plan, projection, replay
from services.notifications.channels import ChannelError
from tests.support.store import sequenced

BRANCH, SERVICE = "npra-isa-town", "passport-renewal"
FATIMA, ALI, MARYAM = "900112345", "880412345", "850612345"


class Outbox:
    """Email is accepted and kept; every SMS is refused."""

    def __init__(self):
        self.sent = []

    def send(self, message):
        if message.channel == "sms":
            raise ChannelError("the SMS gateway refused it")
        self.sent.append(message)


@pytest.fixture
def story(open_db):
    """(notifications db, the logs its replay reads): a day of bookings and tickets taken live, and what was due
    sent (email), failed (SMS, one attempt allowed) or withdrawn (the erased person's)."""
    db = open_db("notifications", projection.metadata)
    logs = {"booking": open_db("booking", service_metadata()), "queue": open_db("queue", service_metadata())}
    now, settings = clock.now(), plan.Settings(max_attempts=1)
    with db.transaction() as uow:  # the catalogue copy sending reads branch and service names from
        for change in catalogue_file.changes(catalogue_file.read(), {}, {}):
            if change.stream_id in ("directorate-npra", f"branch-{BRANCH}"):
                catalogue.project(uow, change.event)

    def happens(source, stream, type_, erase=None, **payload):
        """An event appended to `source`'s log, then taken by notifications' consumer of that log."""
        with logs[source].transaction() as uow:
            if erase:
                uow.store.vault.forget(vault.subject_of(erase))
            appended = uow.append(stream, uow.store.stream_version(stream), [NewEvent(type_, payload, "npra")])
        [event] = sequenced(logs[source], appended)
        consumer, react = ((projection.BOOKINGS_CONSUMER, commands.on_booking_event) if source == "booking"
                           else (projection.QUEUE_CONSUMER, commands.on_queue_event))
        assert apply_once(db, consumer, event, lambda uow, e: react(uow, e, now, settings))

    def book(reference, cpr, start, mobile=None, email=None, language="ar"):
        happens("booking", reference, "booking.SlotBooked", reference=reference, branch=BRANCH, service=SERVICE,
                start=start.isoformat(), end=(start + timedelta(minutes=20)).isoformat(), channel="web",
                person={"cpr": cpr, "name": "Person", "mobile": mobile, "email": email, "language": language})

    def ticket(type_, ticket_id, **payload):
        happens("queue", "queue-day", f"queue.{type_}", ticket_id=ticket_id, branch=BRANCH, day="2026-12-08",
                **payload)

    later = now.replace(microsecond=0) + timedelta(days=2)
    book("AAAA-0001", FATIMA, later, mobile="+97333001122", email="f@example.com")
    book("AAAA-0002", ALI, later, mobile="+97333001133", language="en")
    happens("booking", "AAAA-0002", "booking.BookingRescheduled", reference="AAAA-0002", branch=BRANCH,
            service=SERVICE, previous_start=later.isoformat(), start=(later + timedelta(days=1)).isoformat(),
            end=(later + timedelta(days=1, minutes=20)).isoformat())
    book("AAAA-0003", MARYAM, now.replace(microsecond=0) + timedelta(hours=5), email="m@example.com")
    happens("booking", "AAAA-0003", "booking.BookingCancelled", reference="AAAA-0003", branch=BRANCH,
            service=SERVICE, start=(now.replace(microsecond=0) + timedelta(hours=5)).isoformat(),
            cancelled_by="person")
    happens("booking", "person", "booking.PersonErased", erase=ALI, subject=vault.subject_of(ALI))
    for ticket_id, number, reference in (("t1", "P-001", "AAAA-0001"), ("t2", "P-002", None)):  # t2: a walk-in
        ticket("CustomerCheckedIn", ticket_id, number=number, service=SERVICE, priority=None, on_time=True,
               kind="appointment" if reference else "walk_in", reference=reference, appointment_start=None,
               cpr=FATIMA, language="ar")
    ticket("TicketCalled", "t1", counter="5", number="P-001", service=SERVICE, lane="appointment")
    ticket("TicketServed", "t1", counter="5", service=SERVICE, wait_seconds=60, service_seconds=300)
    ticket("TicketCalled", "t2", counter="5", number="P-002", service=SERVICE, lane="walk_in")
    outbox = Outbox()
    outbound = commands.Outbound({"email": outbox, "sms": outbox}, settings, "https://mawaeed.example.bh", "key")
    assert commands.dispatch_due(db, outbound, lambda: now, concurrency=1) > 0
    return db, Logs(db, open_source=logs.get)


def test_every_table_rebuilt_from_the_logs_is_the_live_one(story):
    db, logs = story
    with db.transaction() as uow:
        own = uow.store.read_all(limit=10_000)
    assert {e.type for e in own} == set(types_of("notifications"))  # scheduled, sent, failed and withdrawn
    passed = []
    messages, contacts, tickets = replay.replay(db, logs, progress=passed.append)
    assert [(r.what, r.events, r.identical) for r in (messages, contacts, tickets)] == [
        ("messages table", len(own), True), ("contacts table", 6, True), ("tickets table", 5, True)]
    assert passed[-1] == own[-1].position


def test_a_row_changed_by_hand_is_named_and_retry_bookkeeping_is_not(story):
    db, logs = story
    with db.transaction() as uow:
        [reminder] = [m for m in projection.scheduled_reminders(uow, "AAAA-0001") if m["channel"] == "email"]
        projection.retry_later(uow, reminder["key"], 3, clock.now())  # operational state: not history
    assert replay.replay(db, logs)[0].identical
    with db.transaction() as uow:
        uow.execute(sa.update(projection.messages).where(projection.messages.c.key == reminder["key"])
                    .values(status="sent"))
        uow.execute(sa.update(projection.contacts).where(projection.contacts.c.reference == "AAAA-0001")
                    .values(language="en"))
    messages, contacts, tickets = replay.replay(db, logs)
    [live], [rebuilt] = messages.differences["messages"]
    assert (live[0], rebuilt[0]) == (reminder["key"], reminder["key"]) and "sent" in live and "sent" not in rebuilt
    [live], [rebuilt] = contacts.differences["contacts"]
    assert (live[0], "en" in live, "en" in rebuilt) == ("AAAA-0001", True, False)
    assert tickets.identical
