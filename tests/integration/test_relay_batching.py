"""The outbox relay on the real RabbitMQ: whole batches published in order under publisher confirms, and nothing
leaves the outbox that the broker did not ack (nacks, confirms that never come, a closed connection)."""
import time
from urllib.parse import urlsplit, urlunsplit

import eventlet
import pytest
import sqlalchemy as sa
from kombu import Connection, Queue, binding
from prometheus_client import REGISTRY

from shared import topology
from shared.events import NewEvent
from shared.relay import Relay
from shared.dependencies import service_metadata

from tests.integration.conftest import wait_until

# RabbitMQ goes with PostgreSQL (the distributed mode); the store itself is tested on both backends elsewhere.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("backend_config", ["postgresql"], indirect=True)]

TAP = "relay-test.tap"  # a queue of the test's own, bound to every event of booking.events


def cancellation(n: int) -> NewEvent:
    return NewEvent("booking.BookingCancelled", {
        "reference": f"REF-{n}", "branch": "npra-isa-town", "service": "passport-renewal",
        "start": "2026-12-07T04:00:00+00:00", "cancelled_by": "person", "reason": "requested"})


def fill(db, count: int, first: int = 1) -> None:
    """Commit `count` events (one transaction, one stream per call), each with its outbox row."""
    with db.transaction() as uow:
        uow.append(f"relay-test-{first}", 0, [cancellation(n) for n in range(first, first + count)])


def outbox(db) -> list[int]:
    table = db.tables["outbox"]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(table.c.position).order_by(table.c.position)).scalars().all()


def tap(amqp_uri: str, name: str = TAP, source: str = "booking", **queue_arguments) -> Queue:
    queue = Queue(name, bindings=[binding(topology.exchange(source), routing_key="#")], durable=True,
                  auto_delete=False, queue_arguments=queue_arguments or None)
    with Connection(amqp_uri) as conn:
        topology.exchange(source)(conn.default_channel).declare()
        queue(conn.default_channel).declare()
    return queue


def received(amqp_uri: str, queue: Queue, expected: int, timeout: float = 15.0) -> list:
    """The next `expected` messages of `queue` (acked), in delivery order."""
    messages = []
    with Connection(amqp_uri) as conn, conn.Consumer(queue, accept=["json"], prefetch_count=500,
                                                     callbacks=[lambda body, m: (messages.append(m), m.ack())]):
        deadline = time.monotonic() + timeout
        while len(messages) < expected:
            conn.drain_events(timeout=max(0.01, deadline - time.monotonic()))
    return messages


def relay_errors() -> float:
    return REGISTRY.get_sample_value("mawaeed_relay_errors_total", {"service": "booking"}) or 0


@pytest.fixture
def db(rabbit_config, open_db):
    return open_db("booking", service_metadata())


@pytest.fixture
def relays():
    """Relay(...) factory; every relay made is stopped at the end."""
    made = []

    def factory(*args, **kwargs):
        made.append(Relay(*args, **kwargs))
        return made[-1]

    factory.made = made
    yield factory
    for relay in made:
        relay.stop()


def test_a_large_outbox_is_published_whole_in_order_in_batches(rabbit_config, db, relays):
    uri = rabbit_config["AMQP_URI"]
    queue = tap(uri)
    fill(db, 1200)
    relay = relays(db, "booking", uri)
    assert [relay.publish_pending() for _ in range(4)] == [500, 500, 200, 0]  # the last round finds nothing
    assert outbox(db) == []

    messages = received(uri, queue, 1200)
    positions = [m.headers["position"] for m in messages]
    assert positions == list(range(1, 1201))  # complete, strictly increasing, no duplicate
    first = messages[0]
    assert first.payload["position"] == 1 and first.payload["type"] == "booking.BookingCancelled"
    assert first.properties["message_id"] == first.headers["event_id"] == first.payload["event_id"]
    assert first.properties["delivery_mode"] == 2
    assert first.delivery_info["routing_key"] == "booking.BookingCancelled.v2"
    with Connection(uri) as conn:  # and the subscribers' own queues, declared by the relay, got them all
        assert conn.default_channel.queue_declare("availability.bookings", passive=True).message_count == 1200


def test_unroutable_events_are_counted_and_still_forgotten(rabbit_config, db, relays):
    # An exchange nobody subscribes to: every publish comes back (Basic.Return) before its ack.
    relay = relays(db, "relaytest", rabbit_config["AMQP_URI"])
    labels = {"service": "relaytest", "type": "booking.BookingCancelled"}
    before = REGISTRY.get_sample_value("mawaeed_events_unroutable_total", labels) or 0
    fill(db, 20)
    assert relay.publish_pending() == 20
    assert outbox(db) == []  # the log keeps them for a catch-up; the broker had nowhere to put them
    assert REGISTRY.get_sample_value("mawaeed_events_unroutable_total", labels) == before + 20


def test_nacked_events_stay_in_the_outbox_and_go_out_on_a_later_round(rabbit_config, db, relays):
    uri = rabbit_config["AMQP_URI"]
    everything = tap(uri)
    # A real broker-side refusal: a full queue with reject-publish makes RabbitMQ nack what it cannot take.
    full = tap(uri, "relay-test.full", **{"x-max-length": 100, "x-overflow": "reject-publish"})
    fill(db, 250)
    relay = relays(db, "booking", uri)
    errors = relay_errors()

    assert relay.publish_pending() == 100  # acked: the full queue took the first 100
    assert outbox(db) == list(range(101, 251))  # the nacked ones were not forgotten
    assert relay_errors() == errors + 1
    taken = received(uri, full, 100)  # a consumer makes room for 100 more

    assert relay.publish_pending() == 100  # the nacked ones went out again; 201-250 were refused this time
    assert outbox(db) == list(range(201, 251))
    taken += received(uri, full, 100)
    assert relay.publish_pending() == 50
    assert outbox(db) == []
    taken += received(uri, full, 50)
    assert [m.headers["position"] for m in taken] == list(range(1, 251))
    # A queue that took a nacked message gets it again (consumers dedupe by event_id); nothing is missing.
    positions = [m.headers["position"] for m in received(uri, everything, 250 + 150 + 50)]
    assert sorted(set(positions)) == list(range(1, 251))


def test_the_embedded_memory_transport_has_no_confirms_a_publish_is_enough(open_db, relays):
    uri = "memory://localhost/"
    queue = tap(uri, "relay-test.memory", source="relaytest")  # an exchange no subscription listens to
    db = open_db("booking", service_metadata())
    fill(db, 3)
    relay = relays(db, "relaytest", uri)
    assert relay.publish_pending() == 3
    assert outbox(db) == []
    assert [m.headers["position"] for m in received(uri, queue, 3)] == [1, 2, 3]


class Proxy:
    """A TCP proxy in front of RabbitMQ that can stop passing the broker's bytes back (a network that drops one
    direction): the broker gets and stores every publish, but its confirms never reach the relay."""

    def __init__(self, amqp_uri: str):
        parts = urlsplit(amqp_uri)
        self.upstream = (parts.hostname, parts.port or 5672)
        self.server = eventlet.listen(("127.0.0.1", 0))
        self.uri = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:"
                                                    f"{self.server.getsockname()[1]}"))
        self.muted = False
        self.threads = [eventlet.spawn(self._accept)]

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            upstream = eventlet.connect(self.upstream)
            self.threads += [eventlet.spawn(self._pipe, client, upstream, False),
                             eventlet.spawn(self._pipe, upstream, client, True)]

    def _pipe(self, source, target, mutable):
        try:
            while data := source.recv(65536):
                while mutable and self.muted:  # hold what the broker sent until unmuted
                    eventlet.sleep(0.01)
                target.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            target.close()

    def close(self):
        for thread in self.threads:
            thread.kill()
        self.server.close()


@pytest.fixture
def proxy(rabbit_config):
    proxy = Proxy(rabbit_config["AMQP_URI"])
    yield proxy
    proxy.close()


def test_events_whose_confirms_never_come_stay_in_the_outbox(rabbit_config, db, relays, proxy):
    uri = rabbit_config["AMQP_URI"]
    queue = tap(uri)
    relay = relays(db, "booking", proxy.uri, idle_poll_seconds=0.1, confirm_timeout_seconds=1.0)
    db.on_commit(relay.ring)
    runner = eventlet.spawn(relay.run)
    try:
        fill(db, 1)
        wait_until(lambda: outbox(db) == [])  # connected through the proxy, confirms and all
        errors = relay_errors()
        proxy.muted = True
        fill(db, 50, first=2)
        wait_until(lambda: relay_errors() > errors)  # the confirm timeout
        assert outbox(db) == list(range(2, 52))  # published, maybe stored, never confirmed: all kept

        proxy.muted = False  # the loop drops the connection, backs off and connects again
        wait_until(lambda: outbox(db) == [], timeout=20)
        positions = [m.headers["position"] for m in received(uri, queue, 51)]
        assert positions[:51] == list(range(1, 52))  # in order; copies published again may follow (duplicates)
    finally:
        relay.stop()
        runner.wait()


def test_the_relay_reconnects_after_the_broker_closes_its_connection(rabbit_config, rabbit_manager, db, relays):
    uri, vhost = rabbit_config["AMQP_URI"], rabbit_config["vhost"]
    queue = tap(uri)
    relay = relays(db, "booking", uri, idle_poll_seconds=0.1)
    db.on_commit(relay.ring)
    runner = eventlet.spawn(relay.run)
    try:
        fill(db, 10)
        wait_until(lambda: outbox(db) == [])
        connections = wait_until(lambda: [c for c in rabbit_manager.get_connections() if c["vhost"] == vhost])
        errors = relay_errors()
        for connection in connections:  # the broker closes it (connection.close, 320 CONNECTION_FORCED)
            rabbit_manager.delete_connection(connection["name"])

        fill(db, 10, first=11)
        wait_until(lambda: outbox(db) == [], timeout=15)
        assert relay_errors() > errors  # the first try after the close failed, the loop reconnected
        positions = [m.headers["position"] for m in received(uri, queue, 20)]
        assert positions == list(range(1, 21))
    finally:
        relay.stop()
        runner.wait()


# -- the sequencer and replicas ---------------------------------------------------------------------------

def unsequenced(db) -> int:
    table = db.tables["events"]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(table.c.position.is_(None))).scalar_one()


def test_events_a_process_committed_but_never_sequenced_are_published_by_a_fresh_relay(rabbit_config, open_db,
                                                                                       relays):
    """A process that died after its commit, before any relay numbered its events: the relay of another (or of
    the restarted) process sequences and publishes them at its next look, without being rung."""
    uri = rabbit_config["AMQP_URI"]
    queue = tap(uri)
    died = open_db("booking", service_metadata(), sequenced_on_commit=False)  # and no relay: it died
    for n in range(3):
        fill(died, 10, first=10 * n + 1)
    assert unsequenced(died) == 30 and outbox(died) == []

    survivor = open_db("booking", service_metadata(), sequenced_on_commit=False)
    relay = relays(survivor, "booking", uri, idle_poll_seconds=0.1)
    runner = eventlet.spawn(relay.run)
    try:
        wait_until(lambda: unsequenced(survivor) == 0 and outbox(survivor) == [])
        messages = received(uri, queue, 30)
        assert [m.headers["position"] for m in messages] == list(range(1, 31))
        assert [m.payload["payload"]["reference"] for m in messages] == [f"REF-{n}" for n in range(1, 31)]
    finally:
        relay.stop()
        runner.wait()


def test_two_replicas_relays_on_one_log_publish_each_event_once(rabbit_config, open_db, relays):
    """Two processes of one service (two engines on one schema), each appending and each running its relay: every
    event is sequenced once and published once, in position order."""
    uri = rabbit_config["AMQP_URI"]
    queue = tap(uri)
    replicas = [open_db("booking", service_metadata(), sequenced_on_commit=False) for _ in range(2)]
    runners = []
    for db in replicas:
        relay = relays(db, "booking", uri, idle_poll_seconds=0.5)
        db.on_commit(relay.ring)
        runners.append(eventlet.spawn(relay.run))

    def writer(w):
        for n in range(20):
            with replicas[(w + n) % 2].transaction() as uow:
                uow.append(f"writer-{w}", n, [cancellation(w * 100 + n)])
            eventlet.sleep(0)

    try:
        with eventlet.Timeout(60):
            for g in [eventlet.spawn(writer, w) for w in range(10)]:
                g.wait()
        wait_until(lambda: unsequenced(replicas[0]) == 0 and outbox(replicas[0]) == [], timeout=30)
        messages = received(uri, queue, 200)
        assert [m.headers["position"] for m in messages] == list(range(1, 201))
        assert len({m.headers["event_id"] for m in messages}) == 200
        time.sleep(1.0)  # anything published twice would be in the queue by now
        with Connection(uri) as conn:
            assert conn.default_channel.queue_declare(TAP, passive=True).message_count == 0
    finally:
        for relay in relays.made:
            relay.stop()
        for runner in runners:
            runner.wait()


def test_with_the_broker_away_committed_events_still_get_their_positions(rabbit_config, open_db, relays):
    """Only publishing waits for the broker: the relay goes on sequencing after each commit while it backs off, so
    the log, its feed and its readers go on (the events stay in the outbox)."""
    db = open_db("booking", service_metadata(), sequenced_on_commit=False)
    relay = relays(db, "booking", "pyamqp://guest:guest@127.0.0.1:1//", idle_poll_seconds=0.1)  # nobody there
    db.on_commit(relay.ring)
    runner = eventlet.spawn(relay.run)
    try:
        wait_until(lambda: relay_errors() > 0)  # it tried the broker and is backing off
        fill(db, 5)
        wait_until(lambda: unsequenced(db) == 0, timeout=10)
        assert outbox(db) == [1, 2, 3, 4, 5]
    finally:
        relay.stop()
        runner.wait()


def test_a_relay_that_finds_the_outbox_turn_taken_skips_its_round(rabbit_config, open_db):
    """Another replica is publishing: this one does not wait behind it (nor publish the same rows)."""
    one, other = (open_db("booking", service_metadata()) for _ in range(2))
    with one.publishing_turn() as first:
        with other.publishing_turn() as second:
            assert (first, second) == (True, False)
    with other.publishing_turn() as again:  # given back: the next round may take it
        assert again is True
