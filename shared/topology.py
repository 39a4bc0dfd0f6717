"""Who listens to what: the broker topology of the suite, declared in one place.

Each service publishes to its topic exchange `{service}.events` with the wire name (`booking.SlotBooked.v1`)
as routing key. Each subscription is a durable queue bound to the event types it wants (any version: the
consumer upcasts), with a dead-letter queue beside it. Publishers declare the queues of their subscribers
before their first publish, so an event committed before its consumer first started is not lost.
"""
from dataclasses import dataclass

from kombu import Exchange, Queue, binding

from shared.contracts import types_of


def exchange(service: str) -> Exchange:
    return Exchange(f"{service}.events", type="topic", durable=True, auto_delete=False, delivery_mode=2)


@dataclass(frozen=True)
class Subscription:
    name: str                 # queue name, also the consumer name in processed_events
    source: str               # the publishing service
    types: tuple[str, ...]    # event types, without version

    def queue(self) -> Queue:
        source = exchange(self.source)
        # One active consumer at a time keeps the log's order even when a service runs several replicas.
        return Queue(self.name, bindings=[binding(source, routing_key=f"{t}.*") for t in self.types],
                     durable=True, auto_delete=False, queue_arguments={"x-single-active-consumer": True})

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
]}


def subscriptions_to(source: str) -> list[Subscription]:
    return [s for s in SUBSCRIPTIONS.values() if s.source == source]
