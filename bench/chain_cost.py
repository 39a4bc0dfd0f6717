"""What the hash chain costs an append on PostgreSQL: the same appends into a log at migration 0002 (append_events
without hashing) and one at the head (append_events hashing each event under the log's lock, shared/eventstore.py),
side by side. Nothing asserted: a figure for the README.

`python -m bench.chain_cost [--events E] [--concurrency N] [--rounds R]`: E events, one per transaction, into E/10
streams, N writer threads (each owns its streams: no conflicts), R rounds alternating the two logs (A B, B A, ...) so
that both see the machine in the same state; the median round of each is printed. Scratch schemas, dropped at the end.
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import psycopg2

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # shared.eventstore imports it

from bench.baselines import run_threads  # noqa: E402
from bench.common import PG_URL, emit  # noqa: E402
from shared import migrations  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from shared.events import NewEvent  # noqa: E402
from shared.eventstore import Database, event_tables, make_engine  # noqa: E402

SIDES = {"without hashing (0002)": "0002", "with the hash chain (head)": "head"}


def appends(db: Database, events: int, concurrency: int, offset: int) -> float:
    """Appends per second of `events` one-event appends by `concurrency` threads."""
    streams = max(1, events // 10)
    work = [[] for _ in range(concurrency)]
    for n in range(events):
        work[(n % streams) % concurrency].append((f"bench-{offset}-{n % streams:06d}", n // streams, n))

    def setup(i):
        todo = iter(work[i])

        def step():
            item = next(todo, None)
            if item is None:
                return False
            stream, expected, n = item
            with db.transaction() as uow:
                uow.append(stream, expected, [NewEvent("queue.TicketCalled", {
                    "ticket_id": f"t-{n:07d}", "branch": "npra-isa-town", "day": "2026-12-07", "counter": "C1",
                    "number": f"P-{n % 1000:03d}", "service": "passport-renewal", "lane": "walk_in"}, "npra")])
        return step, None

    return run_threads("appends", concurrency, setup, total=events)["ops_per_s"]


def in_database_us(db: Database, calls: int = 2000) -> float:
    """Microseconds per append_events call inside one transaction, rolled back: the function's own cost, with no
    round trip and no commit, so the hashing is not lost in their noise."""
    with db.engine.connect() as conn:
        started = time.perf_counter()
        conn.exec_driver_sql(f"""DO $$ BEGIN FOR i IN 1..{calls} LOOP PERFORM append_events(7263011,
            'in-db-' || i, 0, now()::timestamp, ARRAY[gen_random_uuid()::text], ARRAY['queue.TicketCalled'],
            ARRAY[1], ARRAY['c'], ARRAY[NULL], ARRAY['npra'], ARRAY[NULL], ARRAY['{{"ticket_id":"t-0000001",
            "branch":"npra-isa-town","day":"2026-12-07","counter":"C1","number":"P-001"}}']); END LOOP; END $$""")
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed / calls * 1e6


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    schemas = {side: f"bench_chain_{n}_{os.getpid()}" for n, side in enumerate(SIDES)}
    dbs = {}
    try:
        for side, revision in SIDES.items():
            engine = make_engine(PG_URL, schemas[side], pool_size=args.concurrency)
            migrations.migrate(engine, schemas[side], "booking", to=revision)
            metadata = sa.MetaData()
            event_tables(metadata)  # = shared.dependencies.service_metadata(), without importing nameko
            dbs[side] = Database(engine, metadata, schemas[side])
        rates = {side: [] for side in SIDES}
        rates, micros = {side: [] for side in SIDES}, {side: [] for side in SIDES}
        for round_ in range(args.rounds):  # A B, then B A: neither always runs second
            for side, db in list(dbs.items())[::1 if round_ % 2 == 0 else -1]:
                rates[side].append(appends(db, args.events, args.concurrency, round_))
                micros[side].append(in_database_us(db))
        result = {side: round(statistics.median(r), 1) for side, r in rates.items()}
        inside = {side: round(statistics.median(m), 1) for side, m in micros.items()}
        before, after = result.values()
        print(f"{'':>28}  {'appends/s':>10}  {'µs per append_events, in the database':>38}", file=sys.stderr)
        for side in SIDES:
            print(f"{side:>28}  {result[side]:10.1f}  {inside[side]:38.1f}", file=sys.stderr)
        print(f"{'hashing costs':>28}  {100 * (1 - after / before):9.1f}%  "
              f"{inside[list(SIDES)[1]] - inside[list(SIDES)[0]]:35.1f} µs  ({args.events} one-event appends x "
              f"{args.rounds} rounds, {args.concurrency} writers)", file=sys.stderr)
        emit({"events": args.events, "concurrency": args.concurrency, "rounds": args.rounds, "appends_per_s": result,
              "cost_percent": round(100 * (1 - after / before), 1), "append_events_us": inside})
    finally:
        for db in dbs.values():
            db.dispose()
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cur:
            for schema in schemas.values():
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


if __name__ == "__main__":
    main()
