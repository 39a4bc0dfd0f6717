"""Scale out: the booking burst through the gateway against one, then two (or more) replicas of the booking and
queue services on the same schemas, and call-next from four counters spread over the queue's replicas.

    python -m bench.scale [--replicas 1,2] [--bookings 1000] [--clients 32]

For each count: a fresh distributed suite (bench/suite.py) with that many booking and queue processes behind the
gateway (it spreads requests, the least busy replica first); bookings/s, p99, shed; CPU ms per booking by
process from /proc (bench/cpu.py, idle removed, closed once every subscription has caught up); then the check
that nothing was doubled or lost: every reference answered 201 is in booking's log exactly once and nothing else
is, availability's booked places equal the log's bookings, the queue's appointments, insights' bookings and
notifications' confirmations (one per channel: email and SMS) each hold every reference once; and no ticket was
called twice by the queue's replicas.
"""
import argparse
import asyncio
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import sqlalchemy as sa

from bench import queue as queue_bench
from bench.booking import bookable_slots, closed_loop
from bench.common import PG_URL, emit, log
from bench.cpu import CpuMeter, cost_per_item
from bench.settle import wait_caught_up
from bench.suite import SERVICES, Suite

CHANNELS = 2  # the burst's bookings give an email and a mobile: a confirmation on each


def ledger(answered, seen: dict[str, int], each: int = 1) -> dict:
    """How a projection's count per reference compares with the references answered 201: `missing` (fewer than
    `each`), `doubled` (more), `unexpected` (there, but never answered 201: a booking whose answer was lost)."""
    answered = set(answered)
    return {"missing": sum(1 for ref in answered if seen.get(ref, 0) < each),
            "doubled": sum(1 for ref, n in seen.items() if n > each),
            "unexpected": sum(1 for ref in seen if ref not in answered)}


def counts(conn, sql: str) -> dict[str, int]:
    return {key: n for key, n in conn.execute(sa.text(sql)).all()}


def nothing_lost_or_doubled(prefix: str, answered) -> dict:
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            in_log = counts(conn, f"""SELECT payload::json->>'reference', count(*) FROM "{prefix}booking".events
                                      WHERE type = 'booking.SlotBooked' GROUP BY 1""")
            places = conn.execute(sa.text(f'SELECT coalesce(sum(booked), 0) FROM "{prefix}availability".slot_bookings'
                                          )).scalar()
            checks = {
                "log": ledger(answered, in_log),
                "queue appointments": ledger(answered, counts(
                    conn, f'SELECT reference, count(*) FROM "{prefix}queue".appointments GROUP BY 1')),
                "insights bookings": ledger(answered, counts(
                    conn, f'SELECT reference, count(*) FROM "{prefix}insights".bookings GROUP BY 1')),
                "notifications confirmations": ledger(answered, counts(
                    conn, f"""SELECT reference, count(*) FROM "{prefix}notifications".messages
                              WHERE kind = 'confirmation' GROUP BY 1"""), each=CHANNELS),
            }
            called_twice = conn.execute(sa.text(
                f"""SELECT count(*) FROM (SELECT payload::json->>'ticket_id' FROM "{prefix}queue".events
                    WHERE type = 'queue.TicketCalled' GROUP BY 1 HAVING count(*) > 1) twice""")).scalar()
    finally:
        engine.dispose()
    checks["availability places"] = {"booked": int(places), "log": sum(in_log.values()),
                                     "differ": int(places) != sum(in_log.values())}
    checks["tickets called twice"] = called_twice
    checks["ok"] = (not any(v[k] for v in checks.values() if isinstance(v, dict) and "missing" in v
                            for k in ("missing", "doubled", "unexpected"))
                    and not checks["availability places"]["differ"] and not called_twice)
    return checks


async def one_run(args, replicas: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mawaeed-bench-scale-"))
    try:
        suite = Suite(workdir, replicas={"booking": replicas, "queue": replicas})
        log(f"  starting the suite with {replicas} booking and {replicas} queue process(es)")
        suite.start()
        try:
            today = datetime.fromisoformat(suite.now).date()
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
                slots = await bookable_slots(session, suite.gateway_url, today, args.days)
                places = [s for s in slots for _ in range(s[3])][:args.bookings]
                meter = CpuMeter(suite.pids(), PG_URL)
                meter.open()
                await asyncio.sleep(args.idle_seconds)
                idle = meter.close()
                meter.open()
                burst, recorder = await closed_loop(session, suite.gateway_url, places, args.clients, 0)
                late = wait_caught_up(suite.prefix, SERVICES)
                busy, seconds = meter.close()
                meter.stop()
            per_booking = cost_per_item(busy, seconds, *idle, burst["booked"])
            calls = await queue_bench.main(SimpleNamespace(
                queue_url=suite.gateway_url, branch="npra-isa-town", service="passport-renewal",
                waiting=args.waiting, calls=args.calls, counters=4, token=suite.staff_token(), queue_pid=None))
            wait_caught_up(suite.prefix, SERVICES)
            checks = nothing_lost_or_doubled(suite.prefix, recorder.booked)
        finally:
            suite.stop()
    except BaseException:
        log(f"  the suite's logs are kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    log(f"  {replicas} replica(s): {burst['bookings_per_s']}/s, p99 {burst['p99_ms']} ms, shed {burst['shed']}; "
        f"CPU per booking {sum(per_booking.values()):.1f} ms; nothing lost or doubled: {checks['ok']}")
    return {"replicas": {"booking": replicas, "queue": replicas}, "burst": burst,
            "cpu": {"ms_per_booking": per_booking, "total_ms": round(sum(per_booking.values()), 2),
                    "window_s": round(seconds, 2), "bookings": burst["booked"], "behind_at_close": late,
                    "cpu_s": {k: round(v, 3) for k, v in busy.items()},
                    "idle_s": round(idle[1], 2), "idle_cpu_s": {k: round(v, 3) for k, v in idle[0].items()}},
            "call_next_four_counters": calls["call_next_many_counters"], "checks": checks}


async def main(args) -> dict:
    runs = []
    for replicas in [int(n) for n in args.replicas.split(",")]:
        runs.append(await one_run(args, replicas))
    return {"clients": args.clients, "bookings": args.bookings, "cores": _cores(), "runs": runs}


def _cores() -> int:
    import os
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="1,2", help="booking and queue processes, one run per count")
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--idle-seconds", type=float, default=5)
    parser.add_argument("--waiting", type=int, default=100, help="walk-ins waiting before the calls")
    parser.add_argument("--calls", type=int, default=60, help="call-next calls from 1, then from 4 counters")
    emit(asyncio.run(main(parser.parse_args())))
