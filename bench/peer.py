"""Our event store beside a peer, pyeventsourcing's PostgreSQL recorder, on the same database and workload.

`python -m bench.peer [--events E] [--concurrency N]`:
- appends: E events, one per transaction, into E/10 streams, N writer threads. Each thread owns its streams
  (stream i belongs to thread i % N) and appends to them round-robin with the expected version it knows, so both
  stores do optimistic concurrency but no append conflicts: we measure the stores, not retries;
- read-all: the whole log in order, in pages of 1000.
Each side gets its own scratch schema, dropped at the end. No eventlet: plain threads.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import warnings
from urllib.parse import urlsplit

import psycopg
import psycopg2
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # shared.eventstore imports it; see NOTES

from bench.baselines import run_threads, watch  # noqa: E402
from bench.common import PG_URL, emit  # noqa: E402
from shared.events import NewEvent  # noqa: E402
from shared.eventstore import Database, event_tables, make_engine  # noqa: E402

EVENT_TYPE = "queue.TicketCalled"  # a real contract with no personal fields: the Vault leaves it alone
PAGE = 1000
NOTES = [
    "Same PostgreSQL, separate scratch schemas, the same JSON payload bytes; one event per append transaction.",
    "Ours (shared.eventstore, SQLAlchemy Core + psycopg2, engine from make_engine with pool_pre_ping, i.e. a SELECT 1 "
    "per pool checkout): before any lock, the payload is validated against its marshmallow contract, Vault.seal "
    "(a no-op for this type) and json.dumps; then BEGIN (its own round trip with psycopg2), and one round trip "
    "of two statements: "
    "pg_advisory_xact_lock(7263011, hashtext(schema)), which serialises every append to the schema's log so "
    "positions are gap-free and in commit order, then one INSERT ... SELECT that reads max(position) and the "
    "stream's max(stream_version), inserts only if that version is the expected one, and inserts the outbox row "
    "(planned on every call: psycopg2 sends it as text, no prepared statement); then COMMIT. UNIQUE(stream_id, "
    "stream_version) and UNIQUE(event_id) and an index on (type, position) are maintained on every insert.",
    "Theirs (eventsourcing 9.5.6 PostgresApplicationRecorder.insert_events, psycopg 3 pool, originator_id_type="
    "text, enable_db_functions off): one pipelined transaction of SET LOCAL lock_timeout, LOCK TABLE ... IN "
    "EXCLUSIVE MODE (which serialises every append to the table, for the same commit-order reason), NOTIFY, and "
    "an INSERT from unnest() of a composite type RETURNING notification_id (a bigserial), prepared on the "
    "server after psycopg 3's 5th use; then COMMIT. It checks the expected version only through the PRIMARY KEY "
    "(originator_id, originator_version), so it does not read the stream, and it does no validation and has no "
    "outbox.",
    "Read-all (median of 3 passes over the whole log): ours is EventStore.read_all(after, 1000) in one transaction per page, returning Event objects "
    "with json-decoded payloads (Vault.open is a no-op here). Theirs is select_notifications(start, 1000) in "
    "autocommit, returning Notification objects whose state stays bytes; read_all_json_events_per_s also "
    "json-decodes every state, which their application layer would do as well before building domain events.",
    "shared.eventstore imports eventlet (through shared.greenpg) but nothing here patches anything: plain threads.",
]


def payload(n: int) -> dict:
    return {"ticket_id": f"t-{n:07d}", "branch": "npra-isa-town", "day": "2026-12-07", "counter": "C1",
            "number": f"P-{n % 1000:03d}", "service": "passport-renewal", "lane": "walk_in"}


def plan(events: int, concurrency: int) -> list[list[tuple[str, int, int]]]:
    """Per thread, its appends in order: (stream_id, expected_version, event number), 10 per stream."""
    streams = max(1, events // 10)
    work: list[list[tuple[str, int, int]]] = [[] for _ in range(concurrency)]
    for n in range(events):
        stream, version = n % streams, n // streams
        work[stream % concurrency].append((f"queue-bench-{stream:06d}", version, n))
    return work


def timed_appends(label: str, work, append) -> dict:
    """Every thread appends its planned events in order, each `append(stream, expected, n)` timed."""
    def setup(i):
        todo = iter(work[i])

        def step():
            item = next(todo, None)
            if item is None:
                return False
            append(*item)
        return step, None

    result = run_threads(label, len(work), setup, total=sum(map(len, work)))
    return {"appends": result["ops"], "seconds": result["seconds"], "appends_per_s": result["ops_per_s"],
            **{k: v for k, v in result.items() if k.endswith("_ms")}}


def timed_read_all(label: str, total: int, read_page, passes: int = 3) -> float:
    """Median events/s of `passes` reads of the whole log with `read_page(after) -> (count, next_after)`.

    A pass lasts a few seconds, so one alone is at the mercy of whatever else the machine is doing."""
    rates, done, errors = [], [0], []

    def read():
        try:
            for _ in range(passes):
                count, after, started = 0, 0, time.perf_counter()
                while True:
                    n, after = read_page(after)
                    count, done[0] = count + n, done[0] + n
                    if n < PAGE:
                        break
                if count != total:
                    raise RuntimeError(f"{label}: read {count} events, expected {total}")
                rates.append(count / (time.perf_counter() - started))
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
    reader = threading.Thread(target=read, daemon=True)  # the main thread draws the progress bar
    reader.start()
    watch(label, total * passes, lambda: done[0], reader.is_alive)
    reader.join()
    if errors:
        raise errors[0]
    return round(statistics.median(rates), 1)


def ours(work, events: int, schema: str) -> dict:
    metadata = sa.MetaData()
    event_tables(metadata)  # = shared.dependencies.service_metadata(), which would import nameko and eventlet
    db = Database(make_engine(PG_URL, schema, pool_size=len(work)), metadata, schema)
    db.create_tables()
    try:
        def append(stream_id, expected, n):
            with db.transaction() as uow:
                uow.append(stream_id, expected, [NewEvent(EVENT_TYPE, payload(n), directorate="npra")])
        appends = timed_appends("ours: appends", work, append)

        def read_page(after):
            with db.transaction() as uow:
                page = uow.store.read_all(after, PAGE)
            return len(page), page[-1].position if page else after
        read_all = timed_read_all("ours: read-all", events, read_page)
        with db.engine.connect() as conn:  # gap-free positions 1..E is what the advisory lock buys
            head, rows = conn.execute(sa.text("SELECT max(position), count(*) FROM events")).one()
        assert head == rows == events, (head, rows)
        return {**appends, "read_all_events_per_s": read_all,
                "driver": f"psycopg2 {psycopg2.__version__.split()[0]} via SQLAlchemy {sa.__version__}"}
    finally:
        db.dispose()


def theirs(work, events: int, schema: str) -> dict:
    url = urlsplit(PG_URL)
    datastore = PostgresDatastore(url.path.lstrip("/"), url.hostname, url.port or 5432, url.username or "",
                                  url.password or "", schema=schema, pool_size=len(work),
                                  originator_id_type="text")
    recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
    recorder.create_table()
    try:
        def append(stream_id, expected, n):  # their versions are the event's own version: expected + 1
            state = json.dumps(payload(n), ensure_ascii=False, separators=(",", ":")).encode()
            recorder.insert_events([StoredEvent(stream_id, expected + 1, EVENT_TYPE, state)])
        appends = timed_appends("theirs: appends", work, append)

        def read_page(after, decode=False):
            page = recorder.select_notifications(after + 1, PAGE)
            if decode:
                [json.loads(n.state) for n in page]
            return len(page), page[-1].id if page else after
        return {**appends, "read_all_events_per_s": timed_read_all("theirs: read-all", events, read_page),
                "read_all_json_events_per_s": timed_read_all("theirs: read-all + json", events,
                                                             lambda after: read_page(after, decode=True)),
                # psycopg without its C implementation (psycopg[binary] or [c]) reads far slower
                "driver": f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__} implementation)"}
    finally:
        datastore.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["ours", "theirs"], help="run one side (for profiling)")
    args = parser.parse_args(argv)
    if "eventlet" in sys.modules:  # imported by shared.eventstore; it must not have patched anything
        from eventlet import patcher
        assert not any(patcher.is_monkey_patched(m) for m in ("socket", "select", "thread", "time"))

    work = plan(args.events, args.concurrency)
    schemas = {side: f"bench_peer_{side}_{os.getpid()}" for side in ("ours", "theirs")}
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    result = {"events": args.events, "streams": max(1, args.events // 10), "concurrency": args.concurrency,
              "event_type": EVENT_TYPE}
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schemas["theirs"]}"')  # Database.create_tables makes its own
        for side, run in (("ours", ours), ("theirs", theirs)):
            if args.only in (None, side):
                result[side] = run(work, args.events, schemas[side])
                print(f"{side}: {result[side]}", file=sys.stderr)
    finally:
        with admin.cursor() as cur:
            for schema in schemas.values():
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    if "ours" in result and "theirs" in result:
        result["ratio_ours_over_theirs"] = {
            key: round(result["ours"][key] / result["theirs"][key], 3)
            for key in ("appends_per_s", "read_all_events_per_s")}
    result["notes"] = NOTES
    emit(result)


if __name__ == "__main__":
    main()
