"""The broker topology's arguments (shared/topology.py): quorum queues with a delivery limit and a dead-letter route
for every durable subscription, a quorum dead-letter queue beside each, the pages' live queue classic, all from one
place so that whoever declares first declares the same."""
from shared import topology
from shared.topology import SUBSCRIPTIONS


def test_a_durable_subscription_is_a_quorum_queue_that_dead_letters_into_its_own_dead_letter_queue():
    subscription = SUBSCRIPTIONS["availability.bookings"]
    queue = subscription.queue()
    assert (queue.name, queue.durable, queue.auto_delete) == ("availability.bookings", True, False)
    assert queue.queue_arguments == {
        "x-queue-type": "quorum",
        "x-single-active-consumer": True,
        "x-delivery-limit": topology.DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "availability.bookings.dead-letter",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    dead_letters = subscription.dead_letter_queue()
    assert (dead_letters.name, dead_letters.durable, dead_letters.auto_delete) == \
        ("availability.bookings.dead-letter", True, False)
    assert dead_letters.queue_arguments["x-queue-type"] == "quorum"
    # nothing dead-letters a dead letter, so its limit must be one that looking at it never reaches
    assert dead_letters.queue_arguments["x-delivery-limit"] > 10_000
    assert "x-dead-letter-exchange" not in dead_letters.queue_arguments


def test_every_durable_subscription_dead_letters_into_its_own_queue_and_none_is_left_out():
    durable = topology.durable_subscriptions()
    assert {s.name for s in durable} == {s.name for s in SUBSCRIPTIONS.values() if not s.live_only}
    for subscription in durable:
        arguments = subscription.queue().queue_arguments
        assert arguments["x-dead-letter-routing-key"] == subscription.dead_letter_queue().name
        assert arguments["x-queue-type"] == "quorum"


def test_the_arguments_are_built_afresh_each_time_so_nobody_can_change_anothers_copy():
    first = SUBSCRIPTIONS["queue.bookings"].queue()
    first.queue_arguments["x-delivery-limit"] = 1
    assert SUBSCRIPTIONS["queue.bookings"].queue().queue_arguments["x-delivery-limit"] == topology.DELIVERY_LIMIT


def test_the_live_queue_of_the_pages_stays_classic_auto_delete_and_per_process():
    queue = SUBSCRIPTIONS["web.queue"].queue()
    assert queue.name == f"web.queue.{topology.REPLICA}"
    assert (queue.durable, queue.auto_delete) == (False, True)
    assert "x-queue-type" not in queue.queue_arguments  # quorum queues cannot be auto-delete
    assert queue.queue_arguments == {"x-message-ttl": 60_000, "x-expires": 60_000}
    assert "web.queue" not in {s.name for s in topology.durable_subscriptions()}


def test_the_exchanges_are_plain_durable_topic_exchanges():
    exchange = topology.exchange("notifications")
    assert (exchange.name, exchange.type, exchange.durable, exchange.auto_delete) == \
        ("notifications.events", "topic", True, False)
    assert not exchange.arguments
