"""Projections: apply an event once, whatever the broker redelivers."""
import logging

from shared import metrics
from shared.contracts import Event
from shared.store import Database, UnitOfWork

log = logging.getLogger(__name__)


def apply_once(db: Database, consumer: str, event: Event, apply) -> bool:
    """Run `apply(uow, event)` and record the event as processed by `consumer`, in one transaction.

    Returns False (and changes nothing) when the consumer had already processed the event.
    """
    with db.transaction() as uow:
        if uow.already_processed(consumer, event):
            duplicate = True
        else:
            duplicate = False
            apply(uow, event)
    metrics.EVENTS_HANDLED.labels(consumer, "duplicate" if duplicate else "applied").inc()
    return not duplicate


def replay(events, consumer: str, uow: UnitOfWork, apply) -> int:
    """Apply a sequence of events to a fresh projection inside one transaction; returns how many."""
    count = 0
    for event in events:
        if not uow.already_processed(consumer, event):
            apply(uow, event)
            count += 1
    return count
