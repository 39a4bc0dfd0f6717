"""Our event store beside a peer, pyeventsourcing's PostgreSQL recorder, on the same database and workload.

`python -m bench.peer [--events E] [--concurrency N] [--repeat R]`:
- appends: E events, one per transaction, into E/10 streams, N writer threads. Each thread owns its streams
  (stream i belongs to thread i % N) and appends to them round-robin with the expected version it knows, so both
  stores do optimistic concurrency but no append conflicts: we measure the stores, not retries. Ours counts an
  append as done when it has its position: a sequencer thread runs beside the writers (as the relay does), and
  the clock stops when the last event is sequenced;
- the raw baseline: PostgreSQL INSERT+COMMIT of one row at the same concurrency (bench.baselines);
- read-all: the whole log in order, in pages of 1000.
The three append figures are measured R times, interleaved (ours, theirs, raw, ours, ...), each side into a fresh
scratch schema dropped afterwards; the result is the median of the R, with the lowest and highest beside it.
No eventlet: plain threads.
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

from bench.baselines import postgres_insert_commit, run_threads, watch  # noqa: E402
from bench.common import PG_URL, emit  # noqa: E402
from shared.events import NewEvent  # noqa: E402
from shared.eventstore import Database, event_tables, make_engine  # noqa: E402

EVENT_TYPE = "queue.TicketCalled"  # a real contract with no personal fields: the Vault leaves it alone
PAGE = 1000
NOTES = [
    "Same PostgreSQL, separate scratch schemas, the same JSON payload bytes; one event per append transaction.",
    "Ours (shared.eventstore, SQLAlchemy Core + psycopg2, engine from make_engine with pool_pre_ping, i.e. a SELECT 1 "
    "per pool checkout): the payload is validated against its marshmallow contract, Vault.seal (a no-op for this "
    "type) and json.dumps; then BEGIN (its own round trip with psycopg2), one call of append_events, which checks "
    "the stream's max(stream_version) and inserts the event with no position and takes no lock of the log, and "
    "COMMIT: concurrent commits share a WAL flush. Beside the writers, one sequencer thread (Database.sequence, "
    "what the relay runs) gives committed events their gap-free positions, hash chain and outbox rows in batches, "
    "one short transaction each under the log's advisory lock; an append counts when it is sequenced. UNIQUE"
    "(stream_id, stream_version), UNIQUE(event_id), UNIQUE(position) and indexes on (type, position) and on seq "
    "where unsequenced are maintained. Latency percentiles are an append's own (to its COMMIT).",
    "Raw: bench.baselines.postgres_insert_commit, one row per transaction, each thread on its own psycopg2 "
    "connection, for a few seconds at the same concurrency.",
    "Theirs (eventsourcing 9.5.6 PostgresApplicationRecorder.insert_events, psycopg 3 pool, originator_id_type="
    "text, enable_db_functions off): one pipelined transaction of SET LOCAL lock_timeout, LOCK TABLE ... IN "
    "EXCLUSIVE MODE (which serialises every append to the table, for the same commit-order reason), NOTIFY, and "
    "an INSERT from unnest() of a composite type RETURNING notification_id (a bigserial), prepared on the "
    "server after psycopg 3's 5th use; then COMMIT. It checks the expected version only through the PRIMARY KEY "
    "(originator_id, originator_version), so it does not read the stream, and it does no validation and has no "
    "outbox.",
    "Read-all (median of 3 passes over the whole log of the last repetition, each table ANALYZEd first as "
    "autovacuum would have: without statistics PostgreSQL reads a page by sorting the whole table): ours is EventStore.read_all(after, 1000) in one transaction per page, returning Event objects "
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


def analyze(table: str) -> None:
    """Table statistics, as autovacuum gathers them on a live log; a table just filled has none, and the planner
    then reads a page of the log by sorting the whole table."""
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(f"ANALYZE {table}")
    conn.close()


def ours(work, events: int, schema: str, read: bool = True) -> dict:
    metadata = sa.MetaData()
    event_tables(metadata)  # = shared.dependencies.service_metadata(), which would import nameko and eventlet
    db = Database(make_engine(PG_URL, schema, pool_size=len(work) + 1), metadata, schema)
    db.create_tables()
    try:
        writing, sequenced, failed = threading.Event(), [0], []

        def sequencer():  # the relay's part: it is rung after every commit; here it simply keeps going
            try:
                while writing.is_set() or sequenced[0] < events:
                    done = db.sequence()
                    sequenced[0] += done
                    if not done:
                        time.sleep(0.001)
            except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
                failed.append(exc)

        def append(stream_id, expected, n):
            with db.transaction() as uow:
                uow.append(stream_id, expected, [NewEvent(EVENT_TYPE, payload(n), directorate="npra")])

        writing.set()
        thread = threading.Thread(target=sequencer, daemon=True)
        thread.start()
        cpu = time.process_time()
        appends = timed_appends("ours: appends", work, append)
        writing.clear()
        drained = time.perf_counter()
        thread.join()
        drain = time.perf_counter() - drained  # from the last commit to the last event sequenced
        cpu = time.process_time() - cpu
        if failed:
            raise failed[0]
        seconds = appends["seconds"] + drain
        appends = {**appends, "seconds": round(seconds, 2), "appends_per_s": round(events / seconds, 1),
                   "sequencing_tail_s": round(drain, 3), "client_cpu_us_per_append": round(cpu / events * 1e6)}
        with db.engine.connect() as conn:  # gap-free positions 1..E, each in the outbox, the chain unbroken
            head, rows, unsequenced = conn.execute(sa.text(
                "SELECT max(position), count(*), count(*) - count(position) FROM events")).one()
            outboxed = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
        assert head == rows == outboxed == events and unsequenced == 0, (head, rows, outboxed, unsequenced)
        if not read:
            return appends
        analyze(f'"{schema}".events')

        def read_page(after):
            with db.transaction() as uow:
                page = uow.store.read_all(after, PAGE)
            return len(page), page[-1].position if page else after
        read_all = timed_read_all("ours: read-all", events, read_page)
        return {**appends, "read_all_events_per_s": read_all,
                "driver": f"psycopg2 {psycopg2.__version__.split()[0]} via SQLAlchemy {sa.__version__}"}
    finally:
        db.dispose()


def theirs(work, events: int, schema: str, read: bool = True) -> dict:
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
        cpu = time.process_time()
        appends = timed_appends("theirs: appends", work, append)
        appends["client_cpu_us_per_append"] = round((time.process_time() - cpu) / events * 1e6)
        if not read:
            return appends
        analyze(f'"{schema}".stored_events')

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


def measured(run, *args, **kwargs):
    """`run(*args)`, tried again when PostgreSQL had no connection slot left (others share this server)."""
    for attempt in range(6):
        try:
            return run(*args, **kwargs)
        except (psycopg2.OperationalError, psycopg.OperationalError, sa.exc.OperationalError) as exc:
            if "too many clients" not in str(exc) or attempt == 5:
                raise
            print(f"no connection slot left on PostgreSQL; trying {run.__name__} again in 10 s", file=sys.stderr)
            time.sleep(10)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "all": [round(v, 3) for v in values]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="append measurements per side (median reported)")
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="length of each raw INSERT+COMMIT run")
    parser.add_argument("--only", choices=["ours", "theirs"], help="run one side (for profiling)")
    args = parser.parse_args(argv)
    if "eventlet" in sys.modules:  # imported by shared.eventstore; it must not have patched anything
        from eventlet import patcher
        assert not any(patcher.is_monkey_patched(m) for m in ("socket", "select", "thread", "time"))

    work = plan(args.events, args.concurrency)
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    result = {"events": args.events, "streams": max(1, args.events // 10), "concurrency": args.concurrency,
              "event_type": EVENT_TYPE, "repeat": args.repeat}
    runs = {"ours": [], "theirs": [], "raw": []}
    sides = [side for side in ("ours", "theirs") if args.only in (None, side)]
    try:
        for rep in range(args.repeat):
            last = rep == args.repeat - 1
            for side in sides:
                schema = f"bench_peer_{side}_{os.getpid()}_{rep}"

                def run_side():
                    try:
                        if side == "theirs":
                            with admin.cursor() as cur:
                                cur.execute(f'CREATE SCHEMA "{schema}"')  # Database.create_tables makes its own
                        return (ours if side == "ours" else theirs)(work, args.events, schema, read=last)
                    finally:
                        with admin.cursor() as cur:
                            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                runs[side].append(measured(run_side))
                print(f"{side} #{rep + 1}: {runs[side][-1]}", file=sys.stderr)
            if args.only is None:
                runs["raw"].append(measured(postgres_insert_commit, args.concurrency, args.raw_seconds))
                print(f"raw #{rep + 1}: {runs['raw'][-1]}", file=sys.stderr)
    finally:
        admin.close()
    for side in sides:  # the last run's figures, its append rate replaced by the median of all runs
        rates = [run["appends_per_s"] for run in runs[side]]
        result[side] = {**runs[side][-1], "appends_per_s": round(statistics.median(rates), 1),
                        "appends_per_s_spread": spread(rates)}
    if runs["raw"]:
        rates = [run["ops_per_s"] for run in runs["raw"]]
        result["raw_insert_commit"] = {"ops_per_s": round(statistics.median(rates), 1), "spread": spread(rates),
                                       "p99_ms": runs["raw"][-1]["p99_ms"],
                                       "synchronous_commit": runs["raw"][-1]["synchronous_commit"]}
    if "ours" in result and "theirs" in result:
        # each repetition's ratio (its runs were side by side, under the same load), then their median
        appends = [o["appends_per_s"] / t["appends_per_s"] for o, t in zip(runs["ours"], runs["theirs"])]
        result["ratio_ours_over_theirs"] = {
            "appends_per_s": round(statistics.median(appends), 3), "appends_per_s_spread": spread(appends),
            "read_all_events_per_s": round(result["ours"]["read_all_events_per_s"]
                                           / result["theirs"]["read_all_events_per_s"], 3),
            "read_all_parsed": round(result["ours"]["read_all_events_per_s"]
                                     / result["theirs"]["read_all_json_events_per_s"], 3)}
        over_raw = [o["appends_per_s"] / r["ops_per_s"] for o, r in zip(runs["ours"], runs["raw"])]
        result["ratio_ours_over_raw_insert_commit"] = {"appends_per_s": round(statistics.median(over_raw), 3),
                                                       "spread": spread(over_raw)}
    result["notes"] = NOTES
    emit(result)


if __name__ == "__main__":
    main()
