"""What the sequencer costs on PostgreSQL, the hash chain included: appends no longer hash (they take no lock and
give no position); the sequencer (shared.eventstore SEQUENCE_FUNCTION) numbers, hashes and outboxes committed
events after them. Nothing asserted: a figure for the README.

`python -m bench.chain_cost [--events E] [--rounds R]`: E one-event appends committed unsequenced into a scratch
log, then sequenced in batches of shared.eventstore.SEQUENCE_BATCH, R rounds; the median round's microseconds per
event in the database are printed. Scratch schema, dropped at the end.
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import psycopg2

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # shared.eventstore imports it

from bench.common import PG_URL, emit  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from shared.events import NewEvent  # noqa: E402
from shared.eventstore import Database, event_tables, make_engine  # noqa: E402


def append(db: Database, events: int, offset: int) -> None:
    for n in range(events):
        with db.transaction() as uow:
            uow.append(f"bench-{offset}-{n:07d}", 0, [NewEvent("queue.TicketCalled", {
                "ticket_id": f"t-{n:07d}", "branch": "npra-isa-town", "day": "2026-12-07", "counter": "C1",
                "number": f"P-{n % 1000:03d}", "service": "passport-renewal", "lane": "walk_in"}, "npra")])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = f"bench_chain_{os.getpid()}"
    metadata = sa.MetaData()
    event_tables(metadata)  # = shared.dependencies.service_metadata(), without importing nameko
    db = Database(make_engine(PG_URL, schema, pool_size=2), metadata, schema)
    db.create_tables()
    try:
        micros = []
        for round_ in range(args.rounds):
            append(db, args.events, round_)
            started = time.perf_counter()
            assert db.sequence() == args.events
            micros.append((time.perf_counter() - started) / args.events * 1e6)
        inside = round(statistics.median(micros), 1)
        print(f"sequencer: {inside} µs per event (numbering, hashing, outbox; {args.events} events x "
              f"{args.rounds} rounds)", file=sys.stderr)
        emit({"events": args.events, "rounds": args.rounds, "sequencer_us_per_event": inside})
    finally:
        db.dispose()
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


if __name__ == "__main__":
    main()
