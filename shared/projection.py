"""Projections: handlers by event type, applied once whatever the broker redelivers; rebuilt from the log and
compared with the live tables (the one replay contract every service's replay.py follows)."""
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared import metrics
from shared.contracts import latest_version, upcast
from shared.events import Event
from shared.eventstore import ENVELOPE, Database, make_engine, stored_event

PAGE = 5000          # events read, and applied, at a time by a replay
COMPARE_BUCKETS = 256


class Handlers:
    """A projection's handlers by event type. `@handlers.on("booking.SlotBooked")` registers one;
    `handlers(uow, event)` applies the one registered for the event's type and ignores the rest, so a projection
    is a table of small functions rather than a chain of comparisons on event names."""

    def __init__(self):
        self.by_type = {}

    def on(self, *types: str):
        def register(handler):
            for type_ in types:
                if type_ in self.by_type:
                    raise RuntimeError(f"{type_} has two handlers")
                self.by_type[type_] = handler
            return handler
        return register

    @property
    def types(self) -> list[str]:
        return sorted(self.by_type)

    def __call__(self, uow, event: Event) -> None:
        handler = self.by_type.get(event.type)
        if handler is not None:
            handler(uow, event)


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


_latest: dict[str, int] = {}


def latest(event: Event) -> Event:
    """upcast(event), without looking through every contract for an event already at its latest version."""
    if event.type not in _latest:
        _latest[event.type] = latest_version(event.type)
    return event if event.version == _latest[event.type] else upcast(event)


def read_log(db: Database, types: list[str] | None = None, fields: list[str] | None = None, page: int = PAGE):
    """The events of `db`'s log (only `types`, if given), oldest first, read in pages of `page` rows after the
    last position seen, each page in its own short transaction, so memory holds one page.

    With `fields`, each payload holds only those top-level (string) fields, extracted by the database: nothing
    else is parsed, and personal fields are never decrypted (for a projection that only counts, say). Without, payloads
    are whole and their personal fields opened, the keys of a page's people read in one query."""
    events = db.tables["events"]
    envelope = [events.c[name] for name in ENVELOPE[:-1]]

    def query(after):  # with `fields`; whole events are the store's read_all
        rows = sa.select(*envelope, events.c.payload).where(events.c.position > after)
        rows = rows.where(events.c.type.in_(types)) if types else rows
        rows = rows.order_by(events.c.position).limit(page)
        if db.engine.dialect.name == "sqlite":
            return rows.with_only_columns(*envelope, *(sa.func.json_extract(events.c.payload, f"$.{f}")
                                                       for f in fields))
        parsed = rows.add_columns(sa.cast(events.c.payload, JSONB).label("parsed")).subquery()  # parsed once a row
        return sa.select(*(parsed.c[c.name] for c in envelope), *(parsed.c.parsed[f].astext for f in fields)) \
            .order_by(parsed.c.position)

    after = 0
    while True:
        with db.transaction() as uow:
            if fields:
                batch = [stored_event(row[:11], {f: v for f, v in zip(fields, row[11:]) if v is not None})
                         for row in uow.execute(query(after))]
            else:
                batch = uow.store.read_all(after, page, types)
        if not batch:
            return
        yield from batch
        after = batch[-1].position


def pages(items, size: int = PAGE):
    """`items` as lists of up to `size`."""
    iterator = iter(items)
    while page := list(islice(iterator, size)):
        yield page


@dataclass
class Replayed:
    """What one rebuild-and-compare found, in the one shape every replay reports: `differences` maps what differs
    (a table, a branch's day) to (what only the live side has, what only the rebuilt side has)."""
    what: str               # "bookings table", "waiting rooms"
    events: int
    seconds: float
    differences: dict = field(default_factory=dict)
    note: str = ""          # what else is worth saying, e.g. "of 12 branch days"

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Logs:
    """Where a replay reads logs: the service's own (`own()`), and other services' (`of(service)`) through the
    events feed at `feed_url` (showing `authorization()`) or, with `open_source`, straight from their databases
    (`--direct`)."""

    def __init__(self, db: Database, feed_url: str | None = None, open_source=None, authorization=None):
        self.db, self.feed_url, self.open_source, self.authorization = db, feed_url, open_source, authorization

    def own(self, types: list[str] | None = None, fields: list[str] | None = None):
        return read_log(self.db, types, fields)

    def of(self, service: str, fields: list[str] | None = None):
        """Another service's log, upcast as the feed serves it; `fields` narrows payloads when read directly."""
        if self.open_source is not None:
            return read_log(self.open_source(service), fields=fields)
        from shared.feed import read_feed
        return read_feed(self.feed_url, service, authorization=self.authorization)


# Every service's replay.py has `replay(db, logs, progress=None) -> list[Replayed]`: it rebuilds each of the
# service's projections from the logs into scratch tables and compares them with the live ones. `progress`, if
# given, is called with the positions of the log it mainly reads (its own, or its source's) as it passes them.


def rebuild_and_compare(live: Database, events, apply, tables: list[str], ignore: dict | None = None,
                        progress=None, batched: bool = False, what: str | None = None) -> Replayed:
    """Apply `events` to empty copies of `tables` (a scratch SQLite database with the service's metadata) and
    compare them row by row with the live tables, leaving out `ignore[table]` columns (operational state such
    as retry counters or optimistic-locking versions). The report names `what` (by default the tables) and, per
    table that differs, the rows only the live one has and the rows only the rebuilt one has.

    `apply(uow, event)` is called for each event; with `batched`, `apply(uow, pages)` is called once with an
    iterator over pages (lists) of events, for a projection that folds them in memory and writes in bulk (and
    reads `tables` by primary key only: their other indexes are left out)."""
    ignore = ignore or {}
    with tempfile.TemporaryDirectory(prefix="mawaeed-replay-") as directory:
        fresh = Database(make_engine(f"sqlite:///{directory}/replay.sqlite3"), live.metadata)
        fresh.create_tables()
        if batched:  # bulk writes that look rows up by primary key only: other indexes just slow them down
            with fresh.engine.begin() as conn:
                for name in tables:
                    for index in fresh.tables[name].indexes:
                        if not index.unique:
                            index.drop(conn)
        try:
            started, count = time.perf_counter(), 0

            def upcast_pages():
                nonlocal count
                for page in pages(events, PAGE):
                    count += len(page)
                    yield [latest(e) for e in page]  # a projection is written for the latest version of each event
                    if progress:
                        progress(page[-1].position)

            with fresh.transaction() as uow:
                if batched:
                    apply(uow, upcast_pages())
                else:
                    for page in upcast_pages():
                        for event in page:
                            apply(uow, event)
            seconds = time.perf_counter() - started
            differences = {}
            for name in tables:
                differing = compare(live, fresh, name, ignore.get(name, set()))
                if differing:
                    differences[name] = differing
        finally:
            fresh.dispose()
    return Replayed(what or f"{', '.join(tables)} table{'s' if len(tables) > 1 else ''}", count, seconds,
                    differences)


def _rows(db: Database, name: str, leave_out: set):
    """The rows of a table (without the `leave_out` columns) as tuples, streamed (a server-side cursor)."""
    table = db.tables[name]
    columns = [c for c in table.columns if c.name not in leave_out]
    with db.engine.connect() as conn:
        for partition in conn.execution_options(yield_per=10_000).execute(sa.select(*columns)).partitions():
            yield from map(tuple, partition)


def compare(live: Database, fresh: Database, name: str, leave_out: set) -> tuple[list, list] | None:
    """(rows only live, rows only rebuilt) of a table, or None when both hold the same set of rows.

    In bounded memory whatever the table's size: each side's rows are summed into buckets by their hash, and
    only the rows of buckets whose sums differ are held, to say which rows differ."""
    def sums(db):
        buckets = [0] * COMPARE_BUCKETS
        for row in _rows(db, name, leave_out):
            digest = hash(row)
            buckets[digest % COMPARE_BUCKETS] += digest
        return buckets

    differing = {n for n, (ours, theirs) in enumerate(zip(sums(live), sums(fresh))) if ours != theirs}
    if not differing:
        return None
    ours, theirs = ({row for row in _rows(db, name, leave_out) if hash(row) % COMPARE_BUCKETS in differing}
                    for db in (live, fresh))
    if ours == theirs:  # a row twice on one side: the same set of rows
        return None
    return sorted(ours - theirs, key=str), sorted(theirs - ours, key=str)
