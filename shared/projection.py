"""Projections: apply an event once, whatever the broker redelivers; rebuild one from its log and compare."""
import tempfile
import time

import sqlalchemy as sa

from shared import metrics
from shared.contracts import Event, upcast
from shared.store import Database, make_engine


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


def rebuild_and_compare(live: Database, events, apply, tables: list[str], ignore: dict | None = None,
                        progress=None) -> dict:
    """Apply `events` to empty copies of `tables` (a scratch SQLite database with the service's metadata) and
    compare them row by row with the live tables, leaving out `ignore[table]` columns (operational state such
    as retry counters or optimistic-locking versions). Returns events, seconds and, per table that differs,
    the rows only the live one has and the rows only the rebuilt one has."""
    ignore = ignore or {}
    with tempfile.TemporaryDirectory(prefix="mawaeed-replay-") as directory:
        fresh = Database(make_engine(f"sqlite:///{directory}/replay.sqlite3"), live.metadata)
        fresh.create_tables()
        try:
            started, count = time.perf_counter(), 0
            with fresh.transaction() as uow:
                for event in events:
                    apply(uow, upcast(event))  # a projection is written for the latest version of each event
                    count += 1
                    if progress:
                        progress(event.position)
            seconds = time.perf_counter() - started

            def rows(db, name):
                table = db.tables[name]
                columns = [c for c in table.columns if c.name not in ignore.get(name, set())]
                with db.transaction() as uow:
                    return {tuple(r) for r in uow.execute(sa.select(*columns))}

            differences = {}
            for name in tables:
                ours, theirs = rows(live, name), rows(fresh, name)
                if ours != theirs:
                    differences[name] = (sorted(ours - theirs, key=str), sorted(theirs - ours, key=str))
        finally:
            fresh.dispose()
    return {"events": count, "seconds": seconds, "differences": differences}
