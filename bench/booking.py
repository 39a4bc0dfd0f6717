"""Bookings through the HTTP API of a running suite: a saturating burst, the same at half that rate, contention
on a few slots, and the lag from each 201 to its effect in the availability and queue projections.

    python -m bench.booking --booking-url URL --availability-url URL --schema-prefix P [--clients N]

The burst is closed-loop (N clients, each sends its next booking when the last is answered) to find the most the
suite takes. The half-load run is open-loop: bookings start on a fixed schedule whatever the answers do, and each
latency counts from its scheduled start, so a stall shows up in the figures instead of slowing the load down.
"""
import argparse
import asyncio
import random
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import aiohttp
import sqlalchemy as sa

from bench.common import PG_URL, Progress, cpr, emit, log, percentiles_ms
from bench.cpu import CpuMeter, cost_per_item, parse_pids
from bench.flame import FlameGraph
from bench.settle import wait_caught_up

LAG_POLL_SECONDS = 0.005


async def bookable_slots(session, availability_url: str, today: date, days: int) -> list[tuple]:
    """Every (branch, service, start, remaining) the suite offers online from today on, as a person would see it."""
    async with session.get(f"{availability_url}/api/v1/branches") as response:
        branches = await response.json()
    queries = [(b["id"], s["id"], today + timedelta(days=d)) for b in branches for s in b["services"]
               for d in range(days)]
    progress, found = Progress("reading availability", len(queries)), []

    async def one(branch, service, day):
        params = {"branch": branch, "service": service, "date": day.isoformat()}
        while True:
            async with session.get(f"{availability_url}/api/v1/availability", params=params) as response:
                answer = await response.json()
            if response.status != 503:  # OVERLOADED: asked again after its Retry-After
                break
            await asyncio.sleep(float(response.headers.get("Retry-After") or 1))
        assert response.status == 200, answer
        found.extend((branch, service, s["start"], s["remaining"]) for s in answer["slots"]
                     if s["bookable"] and s["remaining"] > 0)
        progress.step()

    for start in range(0, len(queries), 16):  # fewer at once than a service takes in flight (MAWAEED_MAX_IN_FLIGHT)
        await asyncio.gather(*(one(*q) for q in queries[start:start + 16]))
    progress.close()
    return found


class Recorder:
    """Latencies and outcomes of one run; references answered 201 with the moment they were."""

    def __init__(self):
        self.latencies, self.outcomes, self.booked = [], Counter(), {}

    async def book(self, session, url, n, slot, started=None):
        branch, service, start = slot[:3]
        # both channels, as the measurement: notifications plans and sends an email and an SMS
        body = {"cpr": cpr(n), "branch": branch, "service": service, "start": start, "name": f"Bench {n}",
                "mobile": f"+9733{n % 10_000_000:07d}", "email": f"bench{n}@example.com",
                "language": "ar" if n % 2 else "en"}
        started = started or time.perf_counter()
        try:
            async with session.post(f"{url}/api/v1/bookings", json=body) as response:
                answer = await response.json()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.outcomes[f"client error {type(exc).__name__}"] += 1
            return
        answered = time.perf_counter()
        self.latencies.append(answered - started)
        if status == 201:
            self.booked[answer["reference"]] = answered
            self.outcomes["201"] += 1
        else:
            self.outcomes[f"{status} {answer.get('error', {}).get('code', '')}".strip()] += 1

    def summary(self, seconds: float) -> dict:
        shed, errors_5xx = split_5xx(self.outcomes)
        return {"requests": sum(self.outcomes.values()), "booked": self.outcomes["201"], "seconds": round(seconds, 2),
                "bookings_per_s": round(self.outcomes["201"] / seconds, 1), "errors_5xx": errors_5xx, "shed": shed,
                "outcomes": dict(self.outcomes), **percentiles_ms(self.latencies)}


SHED = "503 OVERLOADED"  # a service past MAWAEED_MAX_IN_FLIGHT answers at once, with Retry-After: load shed, not a fault


def split_5xx(outcomes: dict) -> tuple[int, int]:
    """(requests shed as OVERLOADED, other 5xx and client-side failures) of a run's outcomes."""
    shed = outcomes.get(SHED, 0)
    failed = sum(n for k, n in outcomes.items() if (k.startswith("5") or k.startswith("client")) and k != SHED)
    return shed, failed


async def closed_loop(session, url, slots, clients: int, first_n: int) -> dict:
    recorder, progress, queue = Recorder(), Progress(f"burst, {clients} clients", len(slots)), list(slots)
    queue.reverse()

    async def client():
        while queue:
            n = first_n + len(queue)
            await recorder.book(session, url, n, queue.pop())
            progress.step()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    progress.close()
    return recorder.summary(time.perf_counter() - started) | {"clients": clients}, recorder


async def open_loop(session, url, slots, rate: float, first_n: int) -> dict:
    recorder, progress, tasks = Recorder(), Progress(f"half load, {rate:.0f}/s", len(slots)), []
    started = time.perf_counter()
    for i, slot in enumerate(slots):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(recorder.book(session, url, first_n + i, slot, started=due))
        task.add_done_callback(lambda _t: progress.step())
        tasks.append(task)
    await asyncio.gather(*tasks)
    progress.close()
    return recorder.summary(time.perf_counter() - started) | {"offered_per_s": round(rate, 1)}, recorder


class LagWatch:
    """Polls PostgreSQL for the moment each booking's SlotBooked was applied by a consumer: the availability
    projection and the queue service record every event they apply in their processed_events."""

    def __init__(self, prefix: str, consumers: dict[str, str]):
        self.engine = sa.create_engine(PG_URL)
        self.prefix, self.consumers = prefix, consumers
        self.seen = {name: {} for name in consumers}  # consumer -> reference -> when seen
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.after = {name: 0 for name in consumers}

    def run(self):
        with self.engine.connect() as conn:
            while not self.stopping.is_set():
                for name, (schema, consumer) in self.consumers.items():
                    rows = conn.execute(sa.text(
                        f'SELECT p.position, e.payload::json->>\'reference\' FROM "{self.prefix}{schema}".processed_events p '
                        f'JOIN "{self.prefix}booking".events e ON e.event_id = p.event_id '
                        "WHERE p.consumer = :consumer AND p.position > :after AND e.type = 'booking.SlotBooked'"),
                        {"consumer": consumer, "after": self.after[name]}).all()
                    now = time.perf_counter()
                    for position, reference in rows:
                        self.seen[name].setdefault(reference, now)
                        self.after[name] = max(self.after[name], position)
                    conn.rollback()
                time.sleep(LAG_POLL_SECONDS)

    def lags(self, booked: dict[str, float], wait: float = 10.0) -> dict:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not all(set(booked) <= set(s) for s in self.seen.values()):
            time.sleep(0.05)
        answer = {}
        for name, seen in self.seen.items():
            lags = [max(0.0, seen[ref] - at) for ref, at in booked.items() if ref in seen]
            answer[name] = {"applied": len(lags), "missing": len(booked) - len(lags), **percentiles_ms(lags)}
        return answer

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.engine.dispose()


SUITE = ("availability", "booking", "queue", "notifications", "insights")


def settled_cost(meter: CpuMeter | None, idle: tuple | None, prefix: str, bookings: int) -> dict | None:
    """Close the meter's window once every consumer has caught up; CPU ms per booking by process, idle removed."""
    if meter is None:
        return None
    late = wait_caught_up(prefix, SUITE)
    busy, seconds = meter.close()
    per_booking = cost_per_item(busy, seconds, *idle, bookings)
    log(f"  CPU per booking (ms): {per_booking}, total {sum(per_booking.values()):.1f}"
        + (f"; still behind after the wait: {late}" if late else ""))
    return {"ms_per_booking": per_booking, "total_ms": round(sum(per_booking.values()), 2),
            "window_s": round(seconds, 2), "cpu_s": {k: round(v, 3) for k, v in busy.items()},
            "idle_s": round(idle[1], 2), "idle_cpu_s": {k: round(v, 3) for k, v in idle[0].items()},
            "bookings": bookings, "behind_at_close": late}


def slot_stream(slot: tuple) -> str:
    """The booking service's stream of one slot (shared.schedule.slot_stream), from an availability answer."""
    branch, service, start = slot[:3]
    return f"slot-{branch}-{service}-{datetime.fromisoformat(start).astimezone(timezone.utc):%Y%m%dT%H%MZ}"


def slot_bookings(prefix: str, slots: list[tuple]) -> dict:
    """Active bookings per contended slot, counted from the booking log itself."""
    engine = sa.create_engine(PG_URL)
    counts = {}
    with engine.connect() as conn:
        for slot in slots:
            kinds = Counter(conn.execute(sa.text(f'SELECT type FROM "{prefix}booking".events WHERE stream_id = :s'),
                                         {"s": slot_stream(slot)}).scalars())
            counts[slot_stream(slot)] = kinds["booking.SlotBooked"] - kinds["booking.BookingCancelled"]
    engine.dispose()
    return counts


async def contention(session, url, slots, clients: int, first_n: int) -> dict:
    """`clients` people at once on a handful of slots: exactly their capacity may succeed."""
    recorder = Recorder()
    started = time.perf_counter()
    await asyncio.gather(*(recorder.book(session, url, first_n + i, slots[i % len(slots)]) for i in range(clients)))
    seconds = time.perf_counter() - started
    capacity = sum(s[3] for s in slots)
    return recorder.summary(seconds) | {"clients": clients, "slots": len(slots), "capacity": capacity}


async def main(args) -> dict:
    today = datetime.fromisoformat(args.now).date()
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        slots = await bookable_slots(session, args.availability_url, today, args.days)
        random.Random(6).shuffle(slots)
        contended, slots = slots[:args.contended_slots], slots[args.contended_slots:]
        places = [s for s in slots for _ in range(s[3])]  # one entry per free place: no booking is refused
        burst_places = places[:args.bookings]
        half_places = places[args.bookings:args.bookings + args.half_bookings]
        log(f"{len(places)} free places in {len(slots)} slots; burst {len(burst_places)}, then {len(half_places)} at half")

        consumers = {"availability": ("availability", "availability.bookings"), "queue": ("queue", "queue.bookings")}
        groups = parse_pids(args.pids) if args.pids else {}
        meter = CpuMeter(groups, PG_URL) if groups else None
        idle = None
        if meter:  # the suite at rest, just before: its idle CPU is not the bookings' cost
            log(f"  measuring the suite at rest for {args.idle_seconds:.0f} s")
            meter.open()
            await asyncio.sleep(args.idle_seconds)
            idle = meter.close()
        with LagWatch(args.schema_prefix, consumers) as watch:
            flame = FlameGraph(groups["booking"][0], args.flame) if args.flame and groups.get("booking") else None
            if meter:
                meter.open()
            burst, burst_recorder = await closed_loop(session, args.booking_url, burst_places, args.clients, 0)
            if flame:
                flame.stop()
            burst["event_lag"] = watch.lags(burst_recorder.booked)
            burst["cpu"] = settled_cost(meter, idle, args.schema_prefix, burst["booked"])
            if flame:
                burst["flame_graph"] = flame.result()
            rate = max(1.0, burst["bookings_per_s"] / 2)
            if meter:
                meter.open()
            half, half_recorder = await open_loop(session, args.booking_url, half_places[:int(rate * args.half_seconds)],
                                                  rate, 200_000)
            half["event_lag"] = watch.lags(half_recorder.booked)
            half["cpu"] = settled_cost(meter, idle, args.schema_prefix, half["booked"])
        if meter:
            meter.stop()
        fight = await contention(session, args.booking_url, contended, args.contention_clients, 400_000)
    counted = slot_bookings(args.schema_prefix, contended)
    fight["booked_per_slot_from_log"] = counted
    fight["overbooked_slots"] = sum(1 for s in contended if counted[slot_stream(s)] > s[3])
    return {"burst": burst, "half_load": half, "contention": fight}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--booking-url", required=True)
    parser.add_argument("--availability-url", required=True)
    parser.add_argument("--schema-prefix", required=True)
    parser.add_argument("--now", required=True, help="the suite's clock (MAWAEED_NOW) at start")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--bookings", type=int, default=4000)
    parser.add_argument("--half-bookings", type=int, default=100_000)
    parser.add_argument("--half-seconds", type=float, default=20)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--contended-slots", type=int, default=4)
    parser.add_argument("--contention-clients", type=int, default=200)
    parser.add_argument("--pids", default="", help="the suite's processes, name=pid[+pid],...: CPU per booking")
    parser.add_argument("--idle-seconds", type=float, default=10, help="the suite at rest before the burst")
    parser.add_argument("--flame", default="", help="a py-spy flame graph (svg) of the booking process's burst")
    emit(asyncio.run(main(parser.parse_args())))
