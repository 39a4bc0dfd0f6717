"""Who listens to what: the broker topology of the suite, declared in one place.

Each service publishes to its topic exchange `{service}.events` with the wire name (`booking.SlotBooked.v1`)
as routing key. Each subscription is a durable queue bound to the event types it wants (any version: the
consumer upcasts), with a dead-letter queue beside it. Publishers declare the queues of their subscribers
before their first publish, so an event committed before its consumer first started is not lost. A live-only
subscription (the pages') has a queue per process instead, declared by that process.

On RabbitMQ the durable queues are quorum queues (replicated, so a node lost in a cluster loses no event), and
every argument of every queue and exchange is built here only: RabbitMQ refuses (PRECONDITION_FAILED) a declaration
whose arguments differ from the queue's, so the publisher (shared/relay.py), the consumer (shared/messaging.py) and
the tools (services/cli/dead_letters.py) must declare exactly the same. The in-memory transport of the embedded
mode ignores queue arguments.
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
    # No arguments: a plain durable topic exchange, so anyone may declare it the same way (examples/subscriber).
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False, delivery_mode=2)


# Why both an in-process retry and a broker delivery limit: the consumer (shared/messaging.py) retries a failing
# handler in place with backoff and then moves the event to the dead letters itself, with the error in x-error; a
# delivery limit alone would only count redeliveries, with no backoff and no error recorded. The limit is the
# backstop for what that code never sees: a message that kills the process (out of memory, a crash in a C library,
# a hang the orchestrator kills), which would otherwise come back first forever and stop the subscription. After
# DELIVERY_LIMIT returns the broker moves it to the dead letters itself (x-death reason `delivery_limit`). Each
# return counts, including the prefetched messages handed back when a consumer stops, so the limit is well above
# what restarts and rolling deploys spend on a healthy message.
DELIVERY_LIMIT = 10
# The dead-letter queue has nobody consuming it: the tools read it with basic.get and give back what they only
# looked at, which counts as a return. RabbitMQ 4 puts a default limit of 20 on every quorum queue and would then
# drop a dead letter on its 20th look (nothing dead-letters a dead letter): a limit nobody reaches instead.
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000


def durable_queue_arguments(dead_letter_queue: str) -> dict:
    """The arguments of a subscription's durable queue (RabbitMQ 3.10 or later)."""
    return {
        "x-queue-type": "quorum",
        # One active consumer at a time keeps the log's order even when a service runs several replicas; the
        # others wait as standbys (quorum queues support it since RabbitMQ 3.8; they refuse basic.get with it).
        "x-single-active-consumer": True,
        "x-delivery-limit": DELIVERY_LIMIT,
        # What the broker gives up on goes to the dead-letter queue through the default exchange ("": routed by
        # queue name), at least once: the broker keeps it until the dead-letter queue confirmed it, which needs
        # reject-publish overflow (there is no length limit, so it never rejects a publish here).
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict:
    return {"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT}


def live_queue_arguments() -> dict:
    # Classic: a quorum queue cannot be exclusive or auto-delete, and these messages are worth a minute at most.
    return {"x-message-ttl": Subscription.LIVE_MESSAGE_TTL_MS, "x-expires": Subscription.LIVE_QUEUE_EXPIRES_MS}


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

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}.dead-letter"

    def queue(self) -> Queue:
        source = exchange(self.source)
        bindings = [binding(source, routing_key=f"{t}.*") for t in self.types]
        if self.live_only:
            return Queue(f"{self.name}.{REPLICA}", bindings=bindings, durable=False, auto_delete=True,
                         queue_arguments=live_queue_arguments())
        return Queue(self.name, bindings=bindings, durable=True, auto_delete=False,
                     queue_arguments=durable_queue_arguments(self.dead_letter_name))

    def dead_letter_queue(self) -> Queue:
        return Queue(self.dead_letter_name, durable=True, auto_delete=False,
                     queue_arguments=dead_letter_queue_arguments())


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
    # every queue replica forgets the days it keeps in memory when a person is erased (one replica applies
    # queue.bookings, the others' days would still name the person)
    Subscription("queue.erasures", "booking", ("booking.PersonErased",), live_only=True),
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
    # insights sums bookings, visits and counter hours into figures (services/insights/); a copy of the catalogue
    # for places offered and scopes
    Subscription("insights.bookings", "booking",
                 ("booking.SlotBooked", "booking.BookingCancelled", "booking.BookingRescheduled",
                  "booking.BookingExpired")),
    Subscription("insights.queue", "queue",
                 ("queue.CustomerCheckedIn", "queue.TicketCalled", "queue.TicketRecalled", "queue.TicketServed",
                  "queue.TicketNoShow", "queue.TicketTransferred", "queue.TicketClosedOut",
                  "queue.SatisfactionRated", "queue.CounterOpened", "queue.CounterClosed", "queue.DayClosed")),
    Subscription("insights.catalogue", "availability", tuple(types_of("availability"))),
]}


def subscriptions_to(source: str) -> list[Subscription]:
    return [s for s in SUBSCRIPTIONS.values() if s.source == source]


def declared_by(source: str) -> list[Subscription]:
    """The subscriptions whose queues `source` declares before its first publish, so an event committed before
    its consumer first started waits for it: all but the live-only ones (each replica declares its own)."""
    return [s for s in subscriptions_to(source) if not s.live_only]


def durable_subscriptions() -> list[Subscription]:
    """The subscriptions with a durable queue and a dead-letter queue (all but the live-only ones)."""
    return [s for s in SUBSCRIPTIONS.values() if not s.live_only]
