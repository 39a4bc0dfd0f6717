"""A national day: every branch of the catalogue through a busy day on the distributed suite, then every projection
replayed from the logs.

    python -m bench.nationalday [--bookings 50000] [--clients 16]

The suite (bench/suite.py: a process per service, the gateway, fresh schemas, a vhost of its own; the counters and
online places of the catalogue multiplied so a month holds the bookings) starts on a working morning at 09:30,
when every branch is open. Through the gateway, at once:
- citizens book `bookings` places over the coming month at every branch (closed loop, `--clients` at once, each
  with an email and a mobile);
- at every branch, for each service, a kiosk checks walk-ins in and a counter calls them, one after another, and
  serves them (one in ten a no-show): about `2 x bookings` queue events (check-in, call, served or no-show).
Measured: the wall time; CPU ms per event (booking's and the queue's logs) by process from /proc, idle removed
(bench/cpu.py); the event lag through the day, from an event's appearing in its source's log to each
subscription's applying it, polled every 100 ms (p50/p99 over the day and per minute); each process's peak RSS
(VmHWM). Then, nothing lost or doubled: every booking answered 201 is once in booking's log, availability's
places, the queue's appointments, insights' bookings, and notifications' confirmations (email and SMS); every
ticket checked in is once in the queue's log and insights' visits, none called twice; and `mawaeed replay
--direct` of availability, booking, queue, notifications and insights gives tables identical to the live ones.
"""
import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from bench.booking import bookable_slots, closed_loop
from bench.common import PG_URL, Progress, cpr, emit, log, percentiles_ms
from bench.cpu import CpuMeter, cost_per_item
from bench.scale import counts, ledger, nothing_lost_or_doubled
from bench.settle import subscriptions_among, wait_caught_up
from bench.suite import ROOT, SERVICES, Suite

QUEUE_EVENTS_PER_WALK_IN = 3  # checked in, called, served or no-show
NO_SHOW_SHARE = 0.1
REPLAYED = ("availability", "booking", "queue", "notifications", "insights")


class LogLag:
    """When each event appeared in its source's log and when each subscription applied it, both as this
    watcher saw them (every `interval` s), for the lag through the day."""

    def __init__(self, prefix: str, services, interval: float = 0.1):
        self.prefix, self.interval = prefix, interval
        self.subscriptions = subscriptions_among(services)
        self.sources = sorted({s.source for s in self.subscriptions})
        self.logged = {source: {} for source in self.sources}        # source -> position -> when seen
        self.applied = {s.name: {} for s in self.subscriptions}      # subscription -> position -> when seen
        self.engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.started = time.monotonic()

    def run(self) -> None:
        after_log = {source: 0 for source in self.sources}
        after_applied = {s.name: 0 for s in self.subscriptions}
        after_seq = {source: 0 for source in self.sources}
        committed = {source: {} for source in self.sources}  # seq -> when first seen committed
        with self.engine.connect() as conn:
            while not self.stopping.wait(self.interval):
                for source in self.sources:
                    now = time.monotonic()
                    # an event counts from its commit, not from its position (given by the sequencer after it)
                    for (seq,) in conn.execute(sa.text(
                            f'SELECT seq FROM "{self.prefix}{source}".events WHERE seq > :s'),
                            {"s": after_seq[source]}):
                        committed[source].setdefault(seq, now)
                        after_seq[source] = max(after_seq[source], seq)
                    for position, seq in conn.execute(sa.text(
                            f'SELECT position, seq FROM "{self.prefix}{source}".events WHERE position > :p'),
                            {"p": after_log[source]}):
                        self.logged[source].setdefault(position, committed[source].pop(seq, now))
                        after_log[source] = max(after_log[source], position)
                for sub in self.subscriptions:
                    now = time.monotonic()
                    for (position,) in conn.execute(sa.text(
                            f'SELECT position FROM "{self.prefix}{sub.name.split(".")[0]}".processed_events '
                            "WHERE consumer = :c AND position > :p"), {"c": sub.name, "p": after_applied[sub.name]}):
                        self.applied[sub.name].setdefault(position, now)
                        after_applied[sub.name] = max(after_applied[sub.name], position)
                conn.rollback()

    def lags(self) -> dict[str, list[tuple[float, float]]]:
        """Per subscription, (seconds into the day the event was logged, its lag in seconds) of each event
        it applied that was logged while watched."""
        found = {}
        for sub in self.subscriptions:
            logged = self.logged[sub.source]
            found[sub.name] = [(logged[position] - self.started, max(0.0, at - logged[position]))
                               for position, at in self.applied[sub.name].items() if position in logged]
        return found

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.engine.dispose()


def lag_summary(by_subscription: dict[str, list[tuple[float, float]]]) -> dict:
    """p50/p99 over the whole day and every subscription, p99 per minute of it (the worst named), and p50/p99
    per subscription."""
    lags = [lag for found in by_subscription.values() for lag in found]
    minutes = defaultdict(list)
    for at, lag in lags:
        minutes[int(at // 60)].append(lag)
    per_minute = [{"minute": m, "events": len(v), "p50_ms": percentiles_ms(v)["p50_ms"],
                   "p99_ms": percentiles_ms(v)["p99_ms"]} for m, v in sorted(minutes.items())]
    overall = percentiles_ms([lag for _, lag in lags])
    return {**overall, "events": len(lags), "per_minute": per_minute,
            "worst_minute_p99_ms": max((m["p99_ms"] for m in per_minute), default=None),
            "per_subscription": {name: {**percentiles_ms([lag for _, lag in found]), "events": len(found)}
                                 for name, found in by_subscription.items()}}


def peak_rss_mb(pid: int) -> float | None:
    """The most resident memory a process has had (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Counters:
    """The queue's side of the day: walk-ins checked in at a kiosk and called, served or marked no-show at a
    counter, for every service of every branch, until `walk_ins` have been through."""

    def __init__(self, session, base: str, token: str, branches: dict[str, list[str]], walk_ins: int):
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.lines = [(branch, service) for branch, services in branches.items() for service in services]
        self.walk_ins = walk_ins
        self.checked_in: dict[str, tuple[str, str]] = {}   # ticket id -> (branch, service)
        self.waiting = defaultdict(int)                     # (branch, service) -> checked in, not yet called
        self.outcomes = defaultdict(int)
        self.arrived = 0
        self.rng = random.Random(15)
        self.progress = Progress("queue events", walk_ins * QUEUE_EVENTS_PER_WALK_IN)

    async def post(self, path: str, body=None) -> tuple[int, dict | None]:
        for attempt in range(10):
            async with self.session.post(f"{self.base}/api/v1{path}", json=body, headers=self.headers) as answer:
                payload = await answer.json() if answer.status != 204 else None
                if answer.status == 503 and attempt < 9:  # shed or starting: try again shortly, as a kiosk would
                    await asyncio.sleep(float(answer.headers.get("Retry-After") or 1))
                    continue
                return answer.status, payload
        return 503, None

    async def kiosk(self) -> None:
        while self.arrived < self.walk_ins:
            n = self.arrived
            self.arrived += 1
            branch, service = self.lines[n % len(self.lines)]
            status, answer = await self.post(f"/branches/{branch}/check-ins", {
                "walk_in": True, "service": service, "cpr": cpr(5_000_000 + n), "language": "ar" if n % 2 else "en"})
            self.outcomes[f"check-in {status}"] += 1
            if status in (200, 201):
                self.checked_in[answer["ticket"]["id"]] = (branch, service)
                self.waiting[branch, service] += 1
                self.progress.step()

    async def counter(self, branch: str, service: str, number: int) -> None:
        status, _ = await self.post(f"/branches/{branch}/counters/{number}/open", {"services": [service]})
        if status != 200:
            self.outcomes[f"open {status}"] += 1
            return
        while True:
            status, answer = await self.post(f"/branches/{branch}/counters/{number}/call-next")
            self.outcomes[f"call-next {status}"] += 1
            if status == 204:  # nobody waiting: the clerk looks again in a while (each look costs the queue)
                if self.arrived >= self.walk_ins and not self.waiting[branch, service]:
                    return
                await asyncio.sleep(2)
                continue
            if status != 200:
                await asyncio.sleep(2)
                continue
            self.progress.step()
            self.waiting[branch, service] -= 1
            ticket = answer["ticket"]["id"]
            outcome = "no-show" if self.rng.random() < NO_SHOW_SHARE else "served"
            status, _ = await self.post(f"/tickets/{ticket}/{outcome}")
            self.outcomes[f"{outcome} {status}"] += 1
            self.progress.step()

    async def run(self, kiosks: int) -> None:
        numbers = defaultdict(int)  # a counter per service at each branch, numbered from 1 there

        def number(branch: str) -> int:
            numbers[branch] += 1
            return numbers[branch]
        await asyncio.gather(*(self.kiosk() for _ in range(kiosks)),
                             *(self.counter(branch, service, number(branch)) for branch, service in self.lines))
        self.progress.close()


def tickets_checks(prefix: str, checked_in) -> dict:
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            logged = counts(conn, f"""SELECT payload::json->>'ticket_id', count(*) FROM "{prefix}queue".events
                                      WHERE type = 'queue.CustomerCheckedIn' GROUP BY 1""")
            visits = counts(conn, f'SELECT ticket_id, count(*) FROM "{prefix}insights".visits GROUP BY 1')
    finally:
        engine.dispose()
    return {"queue log check-ins": ledger(checked_in, logged), "insights visits": ledger(checked_in, visits)}


def replay_all(env: dict) -> dict:
    """`mawaeed replay NAME --direct` for each projection: its report line, wall time and peak RSS."""
    results = {}
    for name in REPLAYED:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "replay", name, "--direct"], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        lines = [line for line in output.splitlines() if line.startswith("replayed ")]
        events = sum(int(m.group(1)) for line in lines if (m := re.match(r"replayed (\d+) events", line)))
        results[name] = {"identical": process.returncode == 0 and bool(lines), "events": events,
                         "seconds": round(time.perf_counter() - started, 2),
                         "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                         "report": lines, **({} if process.returncode == 0 else {"differences": output[-2000:]})}
        log(f"  replay {name}: {'identical' if results[name]['identical'] else 'DIFFERS'}, {events} events, "
            f"{results[name]['seconds']} s")
    return results


def walk_in_services(catalogue: dict) -> dict[str, list[str]]:
    """Per branch, the services that take walk-ins (a branch's queue.walk_in_quota of 0 makes one by appointment
    only)."""
    return {b["id"]: [s for s in sorted(b["services"]) if (b.get("queue") or {}).get("walk_in_quota", {}).get(s) != 0]
            for d in catalogue["directorates"] for b in d["branches"]}


async def day(args, suite: Suite) -> dict:
    today = datetime.fromisoformat(suite.now).date()
    branches = walk_in_services(suite.catalogue)
    token = suite.staff_token(*branches)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        slots = await bookable_slots(session, suite.gateway_url, today, args.days)
        random.Random(15).shuffle(slots)
        places = [s for s in slots for _ in range(s[3])][:args.bookings]
        if len(places) < args.bookings:
            log(f"  only {len(places)} free places for {args.bookings} bookings")
        meter = CpuMeter(suite.pids(), PG_URL)
        log(f"  measuring the suite at rest for {args.idle_seconds:.0f} s")
        meter.open()
        await asyncio.sleep(args.idle_seconds)
        idle = meter.close()
        heads = log_heads(suite.prefix)
        counters = Counters(session, suite.gateway_url, token, branches, args.bookings * 2 // QUEUE_EVENTS_PER_WALK_IN)
        with LogLag(suite.prefix, SERVICES) as watch:
            meter.open()
            started = time.perf_counter()
            (burst, recorder), _ = await asyncio.gather(
                closed_loop(session, suite.gateway_url, places, args.clients, 0), counters.run(args.kiosks))
            wall = time.perf_counter() - started
            late = wait_caught_up(suite.prefix, SERVICES, timeout=600)
            busy, seconds = meter.close()
            meter.stop()
        lags = watch.lags()
    logged = {source: head - heads[source] for source, head in log_heads(suite.prefix).items()}
    events = logged["booking"] + logged["queue"]
    per_event = cost_per_item(busy, seconds, *idle, events)
    rss = {name: max(filter(None, (peak_rss_mb(pid) for pid in pids)), default=None)
           for name, pids in suite.pids().items()}
    return {"bookings": burst["booked"], "booking": burst, "queue_events": logged["queue"],
            "walk_ins_checked_in": len(counters.checked_in), "queue_outcomes": dict(counters.outcomes),
            "branches": len(branches), "wall_s": round(wall, 1), "events_per_s": round(events / wall, 1),
            "events_logged": logged,
            "cpu": {"ms_per_event": per_event, "total_ms": round(sum(per_event.values()), 3),
                    "window_s": round(seconds, 1), "items": events, "behind_at_close": late,
                    "cpu_s": {k: round(v, 3) for k, v in busy.items()},
                    "idle_s": round(idle[1], 2), "idle_cpu_s": {k: round(v, 3) for k, v in idle[0].items()}},
            "lag": lag_summary(lags), "peak_rss_mb": rss,
            "answered": list(recorder.booked), "tickets": list(counters.checked_in)}


def log_heads(prefix: str) -> dict[str, int]:
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {source: conn.execute(sa.text(f'SELECT coalesce(max(position), 0) FROM "{prefix}{source}".events'))
                    .scalar() for source in ("availability", "booking", "queue")}
    finally:
        engine.dispose()


def main(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mawaeed-bench-nationalday-"))
    capacity = max(1, -(-args.bookings // 15_000))  # a month of the seed catalogue holds about 20,000 places
    suite = Suite(workdir, capacity=capacity, walk_in_quota=100_000)
    log(f"  starting the suite (counters and online places x {capacity})")
    suite.start()
    try:
        result = asyncio.run(day(args, suite))
        answered, tickets = result.pop("answered"), result.pop("tickets")
        checks = nothing_lost_or_doubled(suite.prefix, answered)
        checks.update(tickets_checks(suite.prefix, tickets))
        result["replays"] = replay_all(suite.env)
    except BaseException:
        log(f"  the suite's logs are kept in {workdir}")
        suite.stop()
        raise
    suite.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    checks["ok"] = (checks["ok"] and not any(v[k] for name, v in checks.items() if name.startswith(("queue log",
                    "insights visits")) for k in ("missing", "doubled", "unexpected"))
                    and all(r["identical"] for r in result["replays"].values()))
    result["checks"] = checks
    result["capacity_factor"] = capacity
    log(f"  national day: {result['bookings']} bookings and {result['queue_events']} queue events at "
        f"{result['branches']} branches in {result['wall_s']} s; lag p99 {result['lag']['p99_ms']} ms; "
        f"CPU per event {result['cpu']['total_ms']} ms; nothing lost or doubled, replays identical: {checks['ok']}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=16, help="citizens booking at once")
    parser.add_argument("--kiosks", type=int, default=4, help="check-ins at once, over every branch")
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--idle-seconds", type=float, default=10)
    emit(main(parser.parse_args()))
