"""The broker's side of the promises on the real RabbitMQ (a fresh vhost per test): quorum queues with the topology's
arguments whoever declares them first, every exchange there from the start, the delivery limit as the backstop for
a message that kills its consumer, and `mawaeed dead-letters list|show|replay|discard` on real dead letters."""
import json

import pytest
import requests
from kombu import Connection, Consumer, Producer
from kombu.exceptions import ChannelError
from prometheus_client import REGISTRY

from services import cli
from services.availability.service import AvailabilityService
from services.booking import projection as booking_tables
from services.booking.service import BookingService
from shared import topology
from shared.dependencies import open_database, service_metadata
from shared.messaging import subscribe
from shared.relay import Relay
from services.availability import projection as availability_tables

from tests.integration.conftest import wait_until
from tests.integration.test_event_flow import booking_request, remaining, schedule_known
from tests.support.net import free_port
from tests.support.suite import start_suite

pytestmark = pytest.mark.integration

BOOKINGS = topology.SUBSCRIPTIONS["availability.bookings"]


def queue_info(rabbit_manager, config, name: str) -> dict:
    """The queue as the management API sees it (the tests may use it; the suite and its tools do not)."""
    return rabbit_manager.get_queue(config["AMQP_URI"].rsplit("/", 1)[-1], name)


def depth(config, name: str) -> int:
    with Connection(config["AMQP_URI"]) as conn:
        try:
            return conn.default_channel.queue_declare(name, passive=True).message_count
        except ChannelError:
            return 0


def mawaeed(monkeypatch, capsys, config, *argv) -> tuple[int, str, str]:
    monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])
    monkeypatch.setenv("MAWAEED_DATA_DIR", config["MAWAEED_DATA_DIR"])
    capsys.readouterr()
    status = cli.main(["dead-letters", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_declared_as_topology_says(rabbit_manager, config, subscription) -> None:
    queue = queue_info(rabbit_manager, config, subscription.name)
    assert queue["type"] == "quorum" and queue["durable"] and not queue["auto_delete"]
    assert queue["arguments"] == topology.durable_queue_arguments(subscription.dead_letter_name)
    dead_letters = queue_info(rabbit_manager, config, subscription.dead_letter_name)
    assert dead_letters["type"] == "quorum" and dead_letters["arguments"] == topology.dead_letter_queue_arguments()


# -- declared identically by either side -------------------------------------------------------------------

@pytest.mark.parametrize("backend_config", ["postgresql"], indirect=True)
def test_the_publisher_declares_its_subscribers_queues_as_quorum_queues(rabbit_config, rabbit_manager, open_db):
    relay = Relay(open_db("booking", service_metadata()), "booking", rabbit_config["AMQP_URI"])
    try:
        relay._ensure_producer()  # what it does before its first publish
    finally:
        relay.stop()
    for subscription in topology.declared_by("booking"):
        assert_declared_as_topology_says(rabbit_manager, rabbit_config, subscription)


def test_the_consumer_declares_the_same_queues_and_keeps_one_active_consumer(config, runner_factory, rabbit_manager):
    # Only availability runs: availability.bookings is declared by its consumer, not by booking's relay.
    start_suite(runner_factory, config, AvailabilityService)
    wait_until(lambda: queue_info(rabbit_manager, config, BOOKINGS.name).get("consumers") == 1)
    assert_declared_as_topology_says(rabbit_manager, config, BOOKINGS)


def test_the_live_only_queue_of_the_pages_stays_classic(rabbit_config, rabbit_manager):
    queue = topology.SUBSCRIPTIONS["web.queue"].queue()
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        queue(conn.default_channel).declare()
        info = queue_info(rabbit_manager, rabbit_config, queue.name)
    assert info["type"] == "classic" and info["auto_delete"] and not info["durable"]
    assert "x-queue-type" not in info["arguments"]


def test_every_services_exchange_exists_right_after_start(config, runner_factory):
    """notifications publishes nothing until its first notification, and nobody subscribes to it in the suite:
    its exchange must still be there for an outside subscriber that checks for it at its own start."""
    from services.notifications.service import NotificationsService
    from services.queue.service import QueueService
    start_suite(runner_factory, config, AvailabilityService, BookingService)
    # a runner of their own, on a port of their own: services that create their tables one after the other
    address = f"127.0.0.1:{free_port()}"
    runner_factory({**config, "WEB_SERVER_ADDRESS": address, "MAWAEED_FEED_URL": f"http://{address}"},
                   QueueService, NotificationsService).start()

    def declared(service: str) -> bool:
        with Connection(config["AMQP_URI"]) as conn:
            try:
                topology.exchange(service)(conn.default_channel).declare(passive=True)
                return True
            except ChannelError:
                return False
    for service in ("availability", "booking", "queue", "notifications"):
        wait_until(lambda: declared(service))


# -- the delivery limit: a message that kills its consumer -------------------------------------------------

def test_a_message_its_consumer_never_survives_goes_to_the_dead_letters_at_the_delivery_limit(
        rabbit_config, monkeypatch, capsys):
    config = {**rabbit_config, "MAWAEED_DATA_DIR": "unused"}
    with Connection(rabbit_config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        BOOKINGS.dead_letter_queue()(channel).declare()
        BOOKINGS.queue()(channel).declare()
        Producer(channel).publish({"event_id": "poison", "type": "booking.SlotBooked", "version": 1}, exchange="",
                                  routing_key=BOOKINGS.name, serializer="json", message_id="poison",
                                  headers={"event_id": "poison", "type": "booking.SlotBooked.v1", "position": 7})
    # A consumer that dies with the message in hand: its channel closes without an ack, every time.
    for _ in range(topology.DELIVERY_LIMIT + 1):
        with Connection(rabbit_config["AMQP_URI"]) as conn:
            channel = conn.channel()
            got = []
            with Consumer(channel, [BOOKINGS.queue()], callbacks=[lambda body, m: got.append(m)]):
                conn.drain_events(timeout=5)
            assert got[0].headers["event_id"] == "poison"
    assert depth(rabbit_config, BOOKINGS.name) == 0
    wait_until(lambda: depth(rabbit_config, BOOKINGS.dead_letter_name) == 1)
    status, out, _ = mawaeed(monkeypatch, capsys, config, "list", "--queue", BOOKINGS.name)
    assert status == 0
    assert "poison  booking.SlotBooked.v1  position 7" in out and "delivery limit reached" in out
    assert depth(rabbit_config, BOOKINGS.dead_letter_name) == 1  # listing takes nothing away


# -- the tools on dead letters of a broken consumer -----------------------------------------------------------

BROKEN = {"now": True}


class FlakyAvailability(AvailabilityService):
    """Availability whose booking projection fails until it is fixed (BROKEN["now"] = False)."""

    @subscribe(availability_tables.BOOKINGS_CONSUMER, max_attempts=2)
    def on_booking_event(self, event):
        if BROKEN["now"]:
            raise RuntimeError("the projection is broken")
        AvailabilityService.on_booking_event(self, [event])  # the function as it is: it takes a batch


def applied() -> float:
    return REGISTRY.get_sample_value("mawaeed_events_handled_total",
                                     {"consumer": BOOKINGS.name, "outcome": "applied"}) or 0


@pytest.fixture
def broken():
    BROKEN["now"] = True
    yield BROKEN
    BROKEN["now"] = True


def test_dead_letters_are_listed_shown_replayed_once_and_discarded_with_a_record(
        config, runner_factory, rabbit_manager, monkeypatch, capsys, broken):
    start_suite(runner_factory, config, FlakyAvailability, BookingService)
    wait_until(lambda: schedule_known(open_database(config, "booking", booking_tables.metadata)))
    for cpr in ("900112345", "880254321"):
        answer = requests.post(f"{config['base_url']}/api/v1/bookings", json=booking_request(cpr=cpr), timeout=5)
        assert answer.status_code == 201
    wait_until(lambda: depth(config, BOOKINGS.dead_letter_name) == 2, timeout=20)
    assert queue_info(rabbit_manager, config, BOOKINGS.dead_letter_name)["arguments"] == \
        topology.dead_letter_queue_arguments()  # the consumer declared it as the topology says

    status, out, _ = mawaeed(monkeypatch, capsys, config, "list")
    assert status == 0
    lines = [line.strip() for line in out.splitlines() if "booking.SlotBooked" in line]
    assert len(lines) == 2 and "2 dead letters" in out
    assert all(f"by {BOOKINGS.name}: RuntimeError: the projection is broken" in line for line in lines)
    first, second = (line.split()[0] for line in lines)

    status, out, _ = mawaeed(monkeypatch, capsys, config, "show", "--id", first)
    shown = json.loads(out)
    assert status == 0 and shown["event_id"] == first and shown["headers"]["x-consumer"] == BOOKINGS.name
    assert shown["body"]["payload"]["person"]["cpr"] not in ("900112345", "880254321")
    assert "*****" in shown["body"]["payload"]["person"]["cpr"]
    status, out, _ = mawaeed(monkeypatch, capsys, config, "show", "--id", first, "--clear")
    assert json.loads(out)["body"]["payload"]["person"]["cpr"] in ("900112345", "880254321")

    # Fixed: the first goes back on its queue and is applied, once.
    broken["now"] = False
    applied_before, places_before = applied(), remaining(config)
    status, out, _ = mawaeed(monkeypatch, capsys, config, "replay", "--id", first)
    assert status == 0 and "replayed 1 dead letters" in out
    wait_until(lambda: applied() == applied_before + 1)
    assert remaining(config) == places_before - 1
    assert depth(config, BOOKINGS.dead_letter_name) == 1
    status, _, _ = mawaeed(monkeypatch, capsys, config, "replay", "--id", first)
    assert status == 1  # nothing left of it to replay

    # The second is dropped for good, with a record that names no one.
    status, out, _ = mawaeed(monkeypatch, capsys, config, "discard", "--queue", BOOKINGS.name, "--id", second,
                             "--reason", "booked twice by a test")
    assert status == 0 and "discarded 1 dead letters" in out
    assert depth(config, BOOKINGS.dead_letter_name) == 0
    record_file = f"{config['MAWAEED_DATA_DIR']}/dead-letters/discarded.jsonl"
    with open(record_file, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert [(r["event_id"], r["reason"], r["queue"]) for r in records] == \
        [(second, "booked twice by a test", BOOKINGS.dead_letter_name)]
    assert "900112345" not in json.dumps(records) and "880254321" not in json.dumps(records)
    assert remaining(config) == places_before - 1  # the discarded one was never applied
