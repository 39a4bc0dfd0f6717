"""Who listens to what: the broker topology of the suite, declared in one place.

Each service publishes to its topic exchange `{service}.events` with the wire name (`booking.SlotBooked.v1`)
as routing key. Each subscription is a durable queue bound to the event types it wants (any version: the
consumer upcasts), with a dead-letter queue beside it. Publishers declare the queues of their subscribers
before their first publish, so an event committed before its consumer first started is not lost. A live-only
subscription (the pages') has a queue per process instead, declared by that process.
"""
import os
import socket
import uuid
from dataclasses import dataclass

from kombu import Exchange, Queue, binding

from shared.contracts import types_of


# This process, among the replicas of a service: names its live-only queues.
REPLICA = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False, delivery_mode=2)


@dataclass(frozen=True)
class Subscription:
    name: str                 # queue name, also the consumer name in processed_events
    source: str               # the publishing service
    types: tuple[str, ...]    # event types, without version
    # Live only: a consumer without a database (the pages) that neither catches up from the source's feed nor
    # records what it applied; what it missed while away it learns by asking for the current state. Every
    # replica of it needs every event (each has its own screens), so each process gets a queue of its own,
    # which the broker deletes a minute after that process is gone; a message waits there a minute at most.
    live_only: bool = False

    LIVE_MESSAGE_TTL_MS = 60_000
    LIVE_QUEUE_EXPIRES_MS = 60_000

    def queue(self) -> Queue:
        source = exchange(self.source)
        bindings = [binding(source, routing_key=f"{t}.*") for t in self.types]
        if self.live_only:
            return Queue(f"{self.name}.{REPLICA}", bindings=bindings, durable=False, auto_delete=True,
                         queue_arguments={"x-message-ttl": self.LIVE_MESSAGE_TTL_MS,
                                          "x-expires": self.LIVE_QUEUE_EXPIRES_MS})
        # One active consumer at a time keeps the log's order even when a service runs several replicas.
        return Queue(self.name, bindings=bindings, durable=True, auto_delete=False,
                     queue_arguments={"x-single-active-consumer": True})

    def dead_letter_queue(self) -> Queue:
        return Queue(f"{self.name}.dead-letter", durable=True, auto_delete=False)


SUBSCRIPTIONS = {s.name: s for s in [
    # availability counts what each slot has left
    Subscription("availability.bookings", "booking",
                 ("booking.SlotBooked", "booking.BookingCancelled", "booking.BookingRescheduled")),
    # booking keeps the schedule it decides against, and closes the bookings nobody came for
    Subscription("booking.catalogue", "availability", tuple(types_of("availability"))),
    Subscription("booking.missed", "queue", ("queue.AppointmentMissed",)),
    # the queue knows the day's appointments and the branches' services and policies
    Subscription("queue.bookings", "booking",
                 ("booking.SlotBooked", "booking.BookingCancelled", "booking.BookingRescheduled",
                  "booking.PersonErased")),
    Subscription("queue.catalogue", "availability", tuple(types_of("availability"))),
    # notifications tell people about their bookings and their tickets
    Subscription("notifications.bookings", "booking",
                 ("booking.SlotBooked", "booking.BookingCancelled", "booking.BookingRescheduled",
                  "booking.BookingExpired", "booking.PersonErased")),
    Subscription("notifications.queue", "queue",
                 ("queue.CustomerCheckedIn", "queue.TicketCalled", "queue.TicketServed")),
    Subscription("notifications.catalogue", "availability", tuple(types_of("availability"))),
    # the pages push each change of a branch's waiting room to the screens in its hall (services/web/live.py)
    Subscription("web.queue", "queue",
                 ("queue.CustomerCheckedIn", "queue.TicketCalled", "queue.TicketRecalled", "queue.TicketServed",
                  "queue.TicketNoShow", "queue.TicketTransferred", "queue.TicketClosedOut", "queue.CounterOpened",
                  "queue.CounterClosed", "queue.DayClosed"), live_only=True),
]}


def subscriptions_to(source: str) -> list[Subscription]:
    return [s for s in SUBSCRIPTIONS.values() if s.source == source]


def declared_by(source: str) -> list[Subscription]:
    """The subscriptions whose queues `source` declares before its first publish, so an event committed before
    its consumer first started waits for it: all but the live-only ones (each replica declares its own)."""
    return [s for s in subscriptions_to(source) if not s.live_only]
