"""The `subscribe` entrypoint: a service method consumes the events of one subscription (shared/topology.py).

Events of a subscription are applied one at a time, in the order the broker delivers them (the relay
publishes in log order), because projections that replace state are only right when applied in order.
Before the first live event, a subscriber catches up from the source's events feed, starting after the last
position it processed: the broker is the fast path, the log is the record. That closes the gap the
in-memory transport of the embedded mode leaves (a crash loses what was published but not yet consumed),
and a subscriber added later learns the whole history. Duplicates between the two paths are dropped by
the processed-event records.
nameko's own event_handler acks a message whose handler failed (requeue_on_error=False) or requeues it
forever (True). Here a failed event is retried in place with backoff, a bounded number of times, then moved
to the subscription's dead-letter queue with the error, logged and counted: never acked away silently. A message
that kills the process before that (so it is never acked and comes back first after each restart) is moved there
by RabbitMQ itself once it reached the queue's delivery limit (shared/topology.py says why both).
`mawaeed dead-letters` (services/cli/dead_letters.py) lists, shows, replays and discards what waits there.

A subscriber declared with `batch=N` takes a list: the events waiting in its inbox when it turns to them (up to N,
and pages of the feed while catching up) are handed over at once, so a projection applies them in one transaction
(`apply_all_once`) rather than paying a transaction, a worker and a round trip for each. Nothing waits to fill a
batch: when events trickle in, each is a batch of one. If a batch fails, its events are applied again one at a
time (the batch rolled back whole), each with its own retries and dead letter, so one bad event never holds
back the others.
"""
import logging
import traceback
from datetime import datetime, timezone
from urllib.error import HTTPError

import eventlet
from eventlet.event import Event as Done
from eventlet.queue import LightQueue
from kombu import Connection, Producer
from nameko.messaging import Consumer

from shared import metrics
from shared.eventstore import Database
from shared.auth import service_credentials
from shared.contracts import from_dict, upcast
from shared.feed import read_feed
from shared.projection import pages
from shared.topology import SUBSCRIPTIONS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def backoff_seconds(attempt: int) -> float:
    return min(5.0, 0.1 * 2 ** (attempt - 1))


class EventSubscriber(Consumer):
    def __init__(self, subscription: str, max_attempts: int = MAX_ATTEMPTS, batch: int = 0, **kwargs):
        self.subscription_name = subscription
        self.max_attempts = max_attempts
        self.batch = batch  # 0: the method takes one event; N: a list of up to N events, in delivery order
        self.caught_up = False  # readiness (/health/ready): the start-up catch-up from the log is done
        super().__init__(queue=None, requeue_on_error=True, **kwargs)

    def setup(self):
        self.subscription = SUBSCRIPTIONS[self.subscription_name]
        self.queue = self.subscription.queue()
        self._inbox = LightQueue()
        self.lag = metrics.ConsumerLag(self.subscription_name)
        super().setup()

    def start(self):
        self._declare_dead_letter_queue()
        self._applier = self.container.spawn_managed_thread(self._apply_in_order)

    def _declare_dead_letter_queue(self) -> None:
        """Before any delivery: the broker itself dead-letters into it (the delivery limit) and keeps what it
        cannot route there, so it must exist whether or not this process ever gives up on an event."""
        if self.subscription.live_only:
            return
        config = self.container.config
        try:
            with Connection(config["AMQP_URI"], transport_options=config.get("TRANSPORT_OPTIONS")) as conn:
                self.subscription.dead_letter_queue()(conn.default_channel).declare()
        except Exception:  # the publisher's relay declares it too, and _dead_letter before its first publish
            log.exception("%s could not declare its dead-letter queue yet", self.subscription_name)

    def stop(self):
        super().stop()
        self._applier.kill()  # what it had not acked yet the broker delivers again

    def handle_message(self, body, message):
        self.lag.received(body)
        self._inbox.put((body, message))  # the consumer thread only queues: applying happens in order below

    def _apply_in_order(self):
        self._catch_up()
        self.caught_up = True
        while True:
            waiting = [self._inbox.get()]
            while len(waiting) < max(1, self.batch) and self._inbox.qsize():
                waiting.append(self._inbox.get())
            events, bodies, messages = [], [], []
            for body, message in waiting:
                try:
                    event = upcast(from_dict(body))
                except Exception as exc:  # a poison message (ContractError, or worse): no retry can fix it
                    self._dead_letter(message, body, f"contract: {exc}")
                    self.lag.finished(body)
                    continue
                events.append(event)
                bodies.append(body)
                messages.append(message)
            failures = self._apply_all(events, [self.unpack_message_headers(m) for m in messages])
            for body, message, failure in zip(bodies, messages, failures):
                if failure is None:
                    self.queue_consumer.ack_message(message)
                else:
                    self._dead_letter(message, body, failure)
                self.lag.finished(body)

    def _catch_up(self) -> None:
        """Apply what the source logged after the last event this subscription processed."""
        feed_url = self.container.config.get("MAWAEED_FEED_URL")
        if not feed_url or self.subscription.live_only:  # no database to remember a position in: live events only
            return
        storage = next(d for d in self.container.dependencies if hasattr(d, "db") and hasattr(d, "relay"))
        source, types = self.subscription.source, set(self.subscription.types)
        credentials = service_credentials(self.container.config)
        for attempt in range(1, 31):
            after = storage.db.last_processed_position(self.subscription_name)
            self.lag.head, self.lag.done = max(self.lag.head, after), max(self.lag.done, after)
            try:
                applied = 0
                wanted = (e for e in read_feed(feed_url, source, after, authorization=credentials.authorization)
                          if e.type in types)
                for events in pages(wanted, max(1, self.batch)):
                    bodies = [{"position": e.position, "occurred_at": e.occurred_at.isoformat()} for e in events]
                    for body in bodies:
                        self.lag.received(body)
                    for event, body, failure in zip(events, bodies, self._apply_all(events, [{}] * len(events))):
                        if failure:
                            self._dead_letter(None, event.to_dict(), failure)
                        self.lag.finished(body)
                    applied += len(events)
                if applied:
                    log.info("%s caught up on %d events of %s from its log", self.subscription_name, applied, source)
                return
            except HTTPError as exc:  # answered, but not with this feed: waiting will not change that
                if exc.code >= 500:  # ...unless the source is still starting
                    log.debug("%s: %s feed answered %s; attempt %d", self.subscription_name, source, exc, attempt)
                    eventlet.sleep(min(2.0, 0.1 * attempt))
                    continue
                log.warning("%s: %s does not serve the %s feed (%s); live events only; set MAWAEED_FEED_URL",
                            self.subscription_name, feed_url, source, exc)
                return
            except (OSError, ValueError) as exc:  # the source's feed is not up yet (it may be starting too)
                log.debug("%s: %s feed not answering (%s); attempt %d", self.subscription_name, source, exc, attempt)
                eventlet.sleep(min(2.0, 0.1 * attempt))
        log.warning("%s could not catch up from the %s feed at %s; live events only",
                    self.subscription_name, source, feed_url)

    def _apply_all(self, events: list, contexts: list[dict]) -> list[str | None]:
        """Apply `events` in order; for each, None once applied, else why it failed. A batch subscriber takes them
        in one worker; if that fails (rolled back whole), each is applied again alone, with its retries."""
        if self.batch and len(events) > 1 and self._run(events, contexts[0]) is None:
            return [None] * len(events)
        return [self._apply(event, context) for event, context in zip(events, contexts)]

    def _run(self, argument, context_data: dict):
        """One worker of the service method on `argument` (an event, or a batch's list); its exc_info or None."""
        done = Done()
        self.container.spawn_worker(self, (argument,), {}, context_data=context_data,
                                    handle_result=lambda _ctx, result=None, exc_info=None:
                                    (done.send(exc_info), (result, exc_info))[1])
        return done.wait()

    def _apply(self, event, context_data: dict) -> str | None:
        """Run the service method on `event`, retrying with backoff; None on success, else why it failed."""
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            exc_info = self._run([event] if self.batch else event, context_data)
            if exc_info is None:
                return None
            metrics.HANDLER_FAILURES.labels(self.subscription_name).inc()
            reason = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            if attempt < self.max_attempts:
                log.warning("%s failed on %s %s (attempt %d of %d): %s; retrying", self.subscription_name,
                            event.wire_name, event.event_id, attempt, self.max_attempts, reason)
                eventlet.sleep(backoff_seconds(attempt))
        return reason

    def _dead_letter(self, message, body, reason: str) -> None:
        """Move an event to the dead-letter queue; ack the original only once that publish is confirmed."""
        if self.subscription.live_only:  # nobody would replay it: the next event or resync brings the state anyway
            log.error("%s gave up on an event and dropped it: %s", self.subscription_name, reason)
            if message is not None:
                self.queue_consumer.ack_message(message)
            return
        config = self.container.config
        dead_letters = self.subscription.dead_letter_queue()
        try:
            with Connection(config["AMQP_URI"], transport_options=dict(
                    config.get("TRANSPORT_OPTIONS") or {}, confirm_publish=True)) as conn:
                Producer(conn.channel()).publish(
                    body, exchange="", routing_key=dead_letters.name, declare=[dead_letters], serializer="json",
                    delivery_mode=2, **dead_letter_properties(message, body, self.subscription_name, reason))
        except Exception:
            log.exception("could not dead-letter an event of %s; leaving it to be delivered again",
                          self.subscription_name)
            eventlet.sleep(backoff_seconds(self.max_attempts))
            if message is not None:
                self.queue_consumer.requeue_message(message)
            return
        metrics.DEAD_LETTERS.labels(self.subscription_name).inc()
        log.error("%s gave up on an event and moved it to %s: %s", self.subscription_name, dead_letters.name, reason)
        if message is not None:
            self.queue_consumer.ack_message(message)


def dead_letter_properties(message, body, consumer: str, reason: str) -> dict:
    """The message id and headers of a dead letter: the event's own (type, position, event_id, as the relay sent
    them; from the envelope when it came from the feed) and who gave up on it, why and when, for the tools."""
    headers = {k: v for k, v in ((message.headers or {}) if message is not None else {}).items()
               if not k.startswith("x-")}  # the broker's own (x-delivery-count...) say nothing about this one
    if message is None and isinstance(body, dict):
        headers = {"event_id": body.get("event_id"), "position": body.get("position"),
                   "type": f"{body.get('type')}.v{body.get('version')}"}
    message_id = (message.properties.get("message_id") if message is not None else None) or headers.get("event_id")
    headers.update({"x-consumer": consumer, "x-error": reason[:1000],
                    "x-dead-lettered-at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return {"headers": headers, **({"message_id": message_id} if message_id else {})}


subscribe = EventSubscriber.decorator


def apply_all_once(db: Database, consumer: str, events: list, apply) -> int:
    """shared.projection.apply_once for a batch: `apply(uow, event)` for each event `consumer` had not processed,
    each recorded as processed, all in one transaction (a failure rolls back the whole batch). Returns how many
    were applied."""
    applied = 0
    with db.transaction() as uow:
        for event in events:
            if not uow.already_processed(consumer, event):
                apply(uow, event)
                applied += 1
    metrics.EVENTS_HANDLED.labels(consumer, "applied").inc(applied)
    if applied < len(events):
        metrics.EVENTS_HANDLED.labels(consumer, "duplicate").inc(len(events) - applied)
    return applied
