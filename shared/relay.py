"""The outbox relay: publishes committed events to the broker and forgets them only after the confirm.

A crash anywhere loses nothing: an event leaves the outbox only after the broker confirmed it, so at worst
an event is published twice, and consumers are idempotent.

A batch is published whole and its confirms collected afterwards (RabbitMQ acks or nacks each delivery tag),
rather than waiting for each message's confirm before the next.

Each round first runs the log's sequencer (Database.sequence): committed appends get their positions and outbox
rows there, including those of a process that died after its commit, whichever replica's relay gets to them. The
relays of several replicas of a service then take turns at the outbox (Database.publishing_turn), so in the
normal case each event is published once.
"""
import logging
import time
from itertools import takewhile

import sqlalchemy as sa
from eventlet.event import Event as Doorbell
from kombu import Connection, Producer

from shared import metrics, topology
from shared.eventstore import Database, EventStore

log = logging.getLogger(__name__)

DEAD_LETTER_LOOK_SECONDS = 60.0


def wire_properties(event_id: str, position: int, wire_name: str) -> dict:
    """How an event travels, besides its JSON body (the catalogue, docs/events/, documents it from here)."""
    return {"routing_key": wire_name, "serializer": "json", "delivery_mode": 2, "message_id": event_id,
            "headers": {"event_id": event_id, "position": position, "type": wire_name}}


class Relay:
    def __init__(self, db: Database, service: str, amqp_uri: str, transport_options: dict | None = None,
                 batch_size: int = 500, idle_poll_seconds: float = 1.0, confirm_timeout_seconds: float = 30.0):
        self.db = db
        self.service = service
        self.amqp_uri = amqp_uri
        # Confirms are collected per batch below; kombu's confirm_publish would block on each message instead.
        self.transport_options = dict(transport_options or {}, confirm_publish=False)
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.confirm_timeout_seconds = confirm_timeout_seconds
        self.exchange = topology.exchange(service)
        self._connection = None
        self._producer = None
        self._confirms = False  # the channel is in confirm mode (RabbitMQ; memory:// has no confirms)
        self._last_tag = 0      # the delivery tag of the channel's last publish: they count from 1 per channel
        self._awaiting = {}     # delivery tag -> position, published but neither acked nor nacked yet
        self._acked, self._nacked = [], []
        self._doorbell = Doorbell()
        self._running = False
        self._unroutable = set()
        self._subscribed = {t for s in topology.declared_by(service) for t in s.types}
        self._dead_letters_looked_at = None  # monotonic time of the last look at the dead-letter queues

    # -- the loop ----------------------------------------------------------------------------------
    def ring(self) -> None:
        """Called after a commit that appended events: publish now rather than at the next poll."""
        if not self._doorbell.ready():
            self._doorbell.send()

    def run(self) -> None:
        self._running = True
        failures = 0
        while self._running:
            try:
                # Connecting declares the exchange and the subscribers' queues: at start, not at the first event,
                # so a subscriber that checks for `<service>.events` (examples/subscriber) finds it at once.
                self._ensure_producer()
                published = self.publish_pending()
                self._look_at_dead_letters()
                failures = 0
            except Exception:  # broker or database down: keep the events, back off, try again
                failures += 1
                metrics.RELAY_ERRORS.labels(self.service).inc()
                self._count_outbox()  # the depth keeps growing while the broker is down: show it
                log.exception("relay of %s failed (attempt %d); events stay in the outbox", self.service, failures)
                self._disconnect(graceful=False)
                self._back_off(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if published < self.batch_size:
                self._doorbell.wait(timeout=self.idle_poll_seconds)
                self._doorbell = Doorbell()

    def _back_off(self, seconds: float) -> None:
        """Wait before trying again, still giving committed events their positions after each commit: with the
        broker away the log, its feed and its readers go on; only publishing waits."""
        deadline = time.monotonic() + seconds
        while self._running and (left := deadline - time.monotonic()) > 0:
            self._doorbell.wait(timeout=min(left, self.idle_poll_seconds))
            self._doorbell = Doorbell()
            try:
                self.db.sequence()
            except Exception:  # the database is away too: the next round says so
                log.debug("sequencing %s failed while the relay waits", self.service, exc_info=True)

    def stop(self) -> None:
        self._running = False
        self.ring()
        self._disconnect()

    # -- one batch ---------------------------------------------------------------------------------
    def publish_pending(self) -> int:
        """Sequence what was committed, then publish up to one batch from the outbox; returns how many were
        confirmed."""
        self.db.sequence()
        with self.db.publishing_turn() as ours:
            return self._publish_batch() if ours else 0

    def _publish_batch(self) -> int:
        events_t, outbox_t = self.db.tables["events"], self.db.tables["outbox"]
        with self.db.engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(outbox_t)).scalar_one()
            metrics.OUTBOX_PENDING.labels(self.service).set(pending)
            if not pending:
                return 0
            store = EventStore(conn, self.db.metadata)
            rows = conn.execute(sa.select(*store.envelope).join(outbox_t, outbox_t.c.position == events_t.c.position)
                                .order_by(events_t.c.position).limit(self.batch_size)).all()
            events = store.events_of(rows)  # personal fields opened for the subscribers
            conn.rollback()
        producer = self._ensure_producer()
        self._unroutable.clear()
        # Tags of an earlier, failed round may still be acked late: only this round's tags count.
        self._awaiting, self._acked, self._nacked = {}, [], []
        try:
            for event in events:
                producer.publish(event.to_dict(), exchange=self.exchange, mandatory=True,
                                 **wire_properties(event.event_id, event.position, event.wire_name))
                if self._confirms:
                    self._last_tag += 1
                    self._awaiting[self._last_tag] = event.position
                else:  # memory://: no confirms, a publish is as confirmed as it gets
                    self._acked.append(event.position)
            self._wait_for_confirms()
        finally:  # even when the wait failed, what was acked is on the broker
            if self._acked:
                self.forget(self._acked)
                metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(self._acked))
        for event in events:
            if event.event_id in self._unroutable:  # its Basic.Return came before its ack
                metrics.EVENTS_UNROUTABLE.labels(self.service, event.type).inc()
                if event.type in self._subscribed:  # someone should have been listening
                    log.warning("%s %s had no queue bound; it stays in the log for catch-up",
                                event.wire_name, event.event_id)
        if self._nacked:
            metrics.RELAY_ERRORS.labels(self.service).inc()
            log.warning("the broker refused (nack) %d of %d events of %s; they stay in the outbox for the next round",
                        len(self._nacked), len(events), self.service)
        return len(self._acked)

    def _count_outbox(self) -> None:
        try:
            with self.db.engine.connect() as conn:
                pending = conn.execute(sa.select(sa.func.count()).select_from(self.db.tables["outbox"])).scalar_one()
        except Exception:  # the database is down too: the gauge keeps its last value
            return
        metrics.OUTBOX_PENDING.labels(self.service).set(pending)

    def _wait_for_confirms(self) -> None:
        """Read the broker's acks and nacks until every publish of the batch has one; raise after the timeout
        (the events stay in the outbox and the loop reconnects)."""
        deadline = time.monotonic() + self.confirm_timeout_seconds
        while self._awaiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._awaiting)} publishes of {self.service} unconfirmed after "
                                   f"{self.confirm_timeout_seconds} s")
            self._connection.drain_events(timeout=left)  # calls _on_return, _on_ack, _on_nack

    def _settle(self, delivery_tag: int, multiple: bool, outcome: list) -> None:
        # `multiple` settles every tag up to this one; tags were added in ascending order.
        tags = list(takewhile(lambda tag: tag <= delivery_tag, self._awaiting)) if multiple else [delivery_tag]
        outcome.extend(self._awaiting.pop(tag) for tag in tags if tag in self._awaiting)

    def _on_ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, self._acked)

    def _on_nack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple, self._nacked)

    def forget(self, positions: list[int]) -> None:
        """Take confirmed events out of the outbox. A crash before this publishes them again later."""
        outbox_t = self.db.tables["outbox"]
        with self.db.engine.begin() as conn:
            conn.execute(outbox_t.delete().where(outbox_t.c.position.in_(positions)))

    def _on_return(self, exception, exchange, routing_key, message):
        self._unroutable.add(message.properties.get("message_id") or message.headers.get("event_id"))

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._connection = Connection(self.amqp_uri, transport_options=self.transport_options)
            channel = self._connection.channel()
            self._confirms = hasattr(channel, "confirm_select")  # py-amqp; kombu's virtual transports have none
            if self._confirms:
                channel.confirm_select()
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
                self._last_tag = 0  # a new channel counts its delivery tags from 1 again
            self._producer = Producer(channel, exchange=self.exchange, on_return=self._on_return)
            self.exchange(channel).declare()
            for subscription in topology.declared_by(self.service):
                subscription.queue()(channel).declare()
                subscription.dead_letter_queue()(channel).declare()
        return self._producer

    def _look_at_dead_letters(self) -> None:
        """Set the gauge of dead letters waiting for the subscriptions this service declares, once a minute."""
        now = time.monotonic()
        if self._dead_letters_looked_at is not None and now - self._dead_letters_looked_at < DEAD_LETTER_LOOK_SECONDS:
            return
        self._dead_letters_looked_at = now
        channel = self._ensure_producer().channel
        for subscription in topology.declared_by(self.service):
            # Declared as everywhere else (a passive declare of a queue deleted by hand would close the channel).
            waiting = subscription.dead_letter_queue()(channel).queue_declare().message_count
            metrics.DEAD_LETTERS_WAITING.labels(subscription.name).set(waiting)

    def _disconnect(self, graceful: bool = True) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                # After a failure the broker may never answer a Connection.Close (that is maybe why the confirms
                # did not come): drop the socket instead of waiting for its Close-Ok.
                connection.release() if graceful else connection.collect()
            except Exception:  # already broken; nothing to clean up
                pass
