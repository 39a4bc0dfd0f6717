"""A batch subscriber (shared/messaging.py): what waits is applied at once, a failed batch event by event, and
apply_all_once applies each event once in one transaction."""
import sys
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from shared import messaging
from shared.clock import UTC
from shared.dependencies import service_metadata
from shared.events import Event
from shared.messaging import EventSubscriber, apply_all_once


class Container:
    """Runs each worker at once, as nameko's container would in a greenlet, and notes what each was given."""

    def __init__(self, method):
        self.method, self.given = method, []

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.given.append(args[0])
        try:
            self.method(args[0])
        except Exception:
            handle_result(None, None, sys.exc_info())
        else:
            handle_result(None, None)


def subscriber(method, batch: int) -> EventSubscriber:
    entrypoint = EventSubscriber("availability.bookings", max_attempts=2, batch=batch)
    entrypoint.subscription_name, entrypoint.container = "availability.bookings", Container(method)
    return entrypoint


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(messaging, "backoff_seconds", lambda attempt: 0)


def refuse_two(events):
    if any(e.payload["n"] == 2 for e in events):
        raise RuntimeError("event 2 is bad")


def numbers(given) -> list:
    return [[e.payload["n"] for e in g] if isinstance(g, list) else g.payload["n"] for g in given]


def test_a_batch_is_one_worker_when_it_succeeds():
    entrypoint = subscriber(refuse_two, batch=10)
    assert entrypoint._apply_all([event(1), event(3), event(4)], [{}] * 3) == [None, None, None]
    assert numbers(entrypoint.container.given) == [[1, 3, 4]]


def test_a_failed_batch_is_applied_again_event_by_event_and_only_the_bad_one_fails():
    entrypoint = subscriber(refuse_two, batch=10)
    failures = entrypoint._apply_all([event(1), event(2), event(3)], [{}] * 3)
    assert failures[0] is None and failures[2] is None and "event 2 is bad" in failures[1]
    # the batch, then each alone in order, the bad one retried (max_attempts=2)
    assert numbers(entrypoint.container.given) == [[1, 2, 3], [1], [2], [2], [3]]


def test_a_subscriber_without_batch_takes_one_event_at_a_time():
    entrypoint = subscriber(lambda e: None, batch=0)
    assert entrypoint._apply_all([event(1), event(2)], [{}] * 2) == [None, None]
    assert numbers(entrypoint.container.given) == [1, 2]


def event(n: int) -> Event:
    return Event(event_id=str(uuid.uuid4()), type="booking.SlotBooked", version=1, stream_id=f"s-{n}",
                 stream_version=1, position=n, occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
                 correlation_id=str(uuid.uuid4()), causation_id=None, directorate=None, payload={"n": n})


@pytest.fixture
def db(open_db):
    metadata = service_metadata()
    sa.Table("seen", metadata, sa.Column("n", sa.Integer, primary_key=True))
    return open_db("messaging_test", metadata)


def seen(db) -> list[int]:
    with db.transaction() as uow:
        return sorted(uow.execute(sa.select(db.tables["seen"].c.n)).scalars())


def record(uow, e):
    uow.execute(uow.tables["seen"].insert(), {"n": e.payload["n"]})


def test_each_event_of_a_batch_is_applied_once_even_when_delivered_again(db):
    first, second = event(1), event(2)
    assert apply_all_once(db, "test.consumer", [first, second, first], record) == 2  # a copy within the batch
    assert apply_all_once(db, "test.consumer", [second, event(3)], record) == 1  # and one applied before
    assert seen(db) == [1, 2, 3]


def test_a_batch_that_fails_changes_nothing(db):
    def fail_on_two(uow, e):
        if e.payload["n"] == 2:
            raise RuntimeError("broken")
        record(uow, e)

    with pytest.raises(RuntimeError):
        apply_all_once(db, "test.consumer", [event(1), event(2)], fail_on_two)
    assert seen(db) == []
    first = event(1)
    assert apply_all_once(db, "test.consumer", [first], record) == 1  # nothing was recorded as processed
