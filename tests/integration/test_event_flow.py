"""Events between booking and availability on real RabbitMQ and PostgreSQL: delivery, redelivery, crashes
around the outbox, retries and dead letters."""
import json
from datetime import datetime

import pytest
import requests
import sqlalchemy as sa
from kombu import Connection, Producer
from kombu.exceptions import ChannelError
from prometheus_client import REGISTRY

from shared import topology
from shared.clock import clock
from shared.messaging import subscribe
from shared.relay import Relay
from shared.dependencies import open_database
from services.availability import projection as availability_tables
from services.availability.service import AvailabilityService
from services.booking import commands, projection as booking_tables
from services.booking.service import BookingService

from tests.integration.conftest import wait_until
from tests.support.suite import start_suite

pytestmark = pytest.mark.integration

SLOT = {"branch": "npra-isa-town", "service": "passport-renewal", "start": "2026-12-07T07:00:00+03:00"}
DAY = {"branch": SLOT["branch"], "service": SLOT["service"], "date": "2026-12-07"}


def booking_request(cpr="900112345", **overrides):
    return {"cpr": cpr, "name": "Fatima Ali", "language": "ar", "email": "fatima@example.com", **SLOT, **overrides}


def remaining(config) -> int:
    answer = requests.get(f"{config['base_url']}/api/v1/availability", params=DAY, timeout=5).json()
    return next(s["remaining"] for s in answer["slots"] if s["start"] == SLOT["start"])


def schedule_known(db) -> bool:
    with db.transaction() as uow:
        return uow.execute(sa.select(sa.func.count()).select_from(booking_tables.metadata.tables["branches"])) \
            .scalar_one() == 13


def handled(consumer: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("mawaeed_events_handled_total", {"consumer": consumer, "outcome": outcome}) or 0


def queue_depth(config, name: str) -> int:
    """Messages waiting in a queue; 0 while nobody has declared it yet."""
    with Connection(config["AMQP_URI"]) as conn:
        try:
            return conn.default_channel.queue_declare(name, passive=True).message_count
        except ChannelError:
            return 0


def test_a_booking_reaches_the_availability_projection(config, runner_factory):
    start_suite(runner_factory, config)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    response = requests.post(f"{config['base_url']}/api/v1/bookings", json=booking_request(), timeout=5)
    assert response.status_code == 201, response.text
    wait_until(lambda: remaining(config) == 2)
    with booking_db.transaction() as uow:
        assert uow.store.head() == 1
    wait_until(lambda: not _outbox(booking_db))  # confirmed by RabbitMQ, then forgotten


def test_a_redelivered_event_changes_nothing(config, runner_factory):
    start_suite(runner_factory, config)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    assert requests.post(f"{config['base_url']}/api/v1/bookings", json=booking_request(), timeout=5).status_code == 201
    wait_until(lambda: remaining(config) == 2)
    with booking_db.transaction() as uow:
        event = uow.store.read_all()[0]
    duplicates_before = handled("availability.bookings", "duplicate")
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        for _ in range(3):  # what a relay that crashed before forgetting would send again
            producer.publish(event.to_dict(), exchange=topology.exchange("booking"), routing_key=event.wire_name,
                             serializer="json", delivery_mode=2)
    wait_until(lambda: handled("availability.bookings", "duplicate") == duplicates_before + 3)
    assert remaining(config) == 2


def test_an_event_committed_but_never_published_is_published_after_a_restart(config, runner_factory):
    first = start_suite(runner_factory, config)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    first.stop()  # the crash: nothing runs between the commit below and the next start

    booking = commands.book(booking_db, {**booking_request(), "start": datetime.fromisoformat(SLOT["start"])}, clock.now(), 3)
    events = booking_tables.metadata.tables["events"]
    with booking_db.transaction() as uow:  # committed, but no relay ran to number it and put it in the outbox
        assert uow.execute(sa.select(sa.func.count()).where(events.c.position.is_(None))).scalar_one() == 1
        assert not uow.store.read_all()

    start_suite(runner_factory, config)
    wait_until(lambda: remaining(config) == 2)
    wait_until(lambda: not _outbox(booking_db))
    with booking_db.transaction() as uow:
        assert [e.payload["reference"] for e in uow.store.read_all()] == [booking["reference"]]


def _outbox(db) -> list:
    with db.transaction() as uow:
        return uow.execute(sa.select(db.tables["outbox"])).all()


def test_an_event_published_but_not_forgotten_is_counted_once(config, runner_factory):
    first = start_suite(runner_factory, config)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    first.stop()
    commands.book(booking_db, {**booking_request(), "start": datetime.fromisoformat(SLOT["start"])},
                  clock.now(), 3)

    class CrashBeforeForgetting(Relay):
        def forget(self, positions):
            raise SystemExit("crashed after the confirm, before the outbox delete")

    with pytest.raises(SystemExit):
        CrashBeforeForgetting(booking_db, "booking", config["AMQP_URI"]).publish_pending()
    assert len(_outbox(booking_db)) == 1  # still there: it will be published a second time

    duplicates_before = handled("availability.bookings", "duplicate")
    start_suite(runner_factory, config)
    wait_until(lambda: remaining(config) == 2)
    wait_until(lambda: not _outbox(booking_db))
    # applied once (from the log on start-up), then both broker copies arrive and are dropped as duplicates
    wait_until(lambda: handled("availability.bookings", "duplicate") == duplicates_before + 2)
    assert remaining(config) == 2


class BrokenAvailability(AvailabilityService):
    """Availability whose booking projection always fails, to see retries and the dead-letter queue."""

    @subscribe(availability_tables.BOOKINGS_CONSUMER, max_attempts=3)
    def on_booking_event(self, event):
        raise RuntimeError("the projection is broken")


def test_a_failing_handler_is_retried_then_dead_lettered(config, runner_factory):
    failures_before = REGISTRY.get_sample_value("mawaeed_handler_failures_total",
                                                {"consumer": "availability.bookings"}) or 0
    start_suite(runner_factory, config, BrokenAvailability, BookingService)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    assert requests.post(f"{config['base_url']}/api/v1/bookings", json=booking_request(), timeout=5).status_code == 201
    wait_until(lambda: queue_depth(config, "availability.bookings.dead-letter") == 1, timeout=15)
    assert REGISTRY.get_sample_value("mawaeed_handler_failures_total",
                                     {"consumer": "availability.bookings"}) == failures_before + 3
    assert queue_depth(config, "availability.bookings") == 0  # not acked away, not stuck: moved
    assert remaining(config) == 3


def test_a_message_that_breaks_its_contract_goes_straight_to_the_dead_letters(config, runner_factory):
    start_suite(runner_factory, config)
    booking_db = open_database(config, "booking", booking_tables.metadata)
    wait_until(lambda: schedule_known(booking_db))
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        Producer(conn.channel()).publish(json.loads('{"type": "booking.SlotBooked", "payload": {}}'),
                                         exchange=topology.exchange("booking"),
                                         routing_key="booking.SlotBooked.v1", serializer="json")
    wait_until(lambda: queue_depth(config, "availability.bookings.dead-letter") == 1)
    assert remaining(config) == 3
