"""The `subscribe` entrypoint: a service method consumes the events of one subscription (shared/topology.py).

Events of a subscription are applied one at a time, in the order the broker delivers them (the relay
publishes in log order), because projections that replace state are only right when applied in order.
nameko's own event_handler acks a message whose handler failed (requeue_on_error=False) or requeues it
forever (True). Here a failed event is retried in place with backoff, a bounded number of times, then moved
to the subscription's dead-letter queue with the error, logged and counted: never acked away silently.
"""
import logging
import traceback

import eventlet
from eventlet.event import Event as Done
from eventlet.queue import LightQueue
from kombu import Connection, Producer
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer

from shared import metrics
from shared.contracts import from_dict, upcast
from shared.errors import ContractError
from shared.topology import SUBSCRIPTIONS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def backoff_seconds(attempt: int) -> float:
    return min(5.0, 0.1 * 2 ** (attempt - 1))


class EventSubscriber(Consumer):
    def __init__(self, subscription: str, max_attempts: int = MAX_ATTEMPTS, **kwargs):
        self.subscription_name = subscription
        self.max_attempts = max_attempts
        super().__init__(queue=None, requeue_on_error=True, **kwargs)

    def setup(self):
        self.subscription = SUBSCRIPTIONS[self.subscription_name]
        self.queue = self.subscription.queue()
        self._inbox = LightQueue()
        super().setup()

    def start(self):
        self._applier = self.container.spawn_managed_thread(self._apply_in_order)

    def stop(self):
        super().stop()
        self._applier.kill()  # what it had not acked yet the broker delivers again

    def handle_message(self, body, message):
        self._inbox.put((body, message))  # the consumer thread only queues: applying happens in order below

    def _apply_in_order(self):
        while True:
            body, message = self._inbox.get()
            self._process(body, message)

    def _process(self, body, message):
        try:
            event = upcast(from_dict(body))
        except ContractError as exc:  # a poison message: no retry can fix it
            self._dead_letter(message, body, f"contract: {exc}")
            return
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            done = Done()
            try:
                self.container.spawn_worker(self, (event,), {}, context_data=self.unpack_message_headers(message),
                                            handle_result=lambda _ctx, result=None, exc_info=None:
                                            (done.send(exc_info), (result, exc_info))[1])
            except ContainerBeingKilled:
                self.queue_consumer.requeue_message(message)
                return
            exc_info = done.wait()
            if exc_info is None:
                self.queue_consumer.ack_message(message)
                return
            metrics.HANDLER_FAILURES.labels(self.subscription_name).inc()
            reason = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            if attempt < self.max_attempts:
                log.warning("%s failed on %s %s (attempt %d of %d): %s; retrying", self.subscription_name,
                            event.wire_name, event.event_id, attempt, self.max_attempts, reason)
                eventlet.sleep(backoff_seconds(attempt))
        self._dead_letter(message, body, reason)

    def _dead_letter(self, message, body, reason: str) -> None:
        """Move a message to the dead-letter queue; ack the original only once that publish is confirmed."""
        config = self.container.config
        dead_letters = self.subscription.dead_letter_queue()
        try:
            with Connection(config["AMQP_URI"], transport_options=dict(
                    config.get("TRANSPORT_OPTIONS") or {}, confirm_publish=True)) as conn:
                Producer(conn.channel()).publish(
                    body, exchange="", routing_key=dead_letters.name, declare=[dead_letters], serializer="json",
                    delivery_mode=2, headers={"x-consumer": self.subscription_name, "x-error": reason[:1000]})
        except Exception:
            log.exception("could not dead-letter a message of %s; requeueing it", self.subscription_name)
            eventlet.sleep(backoff_seconds(self.max_attempts))
            self.queue_consumer.requeue_message(message)
            return
        metrics.DEAD_LETTERS.labels(self.subscription_name).inc()
        log.error("%s gave up on an event and moved it to %s: %s", self.subscription_name, dead_letters.name, reason)
        self.queue_consumer.ack_message(message)


subscribe = EventSubscriber.decorator
