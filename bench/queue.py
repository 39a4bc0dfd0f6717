"""call-next with a crowded waiting room, through the HTTP API of a running queue service.

    python -m bench.queue --queue-url URL [--waiting 1000] [--calls 300] [--counters 4] [--queue-pid PID]

Checks in `waiting + 2 x calls` walk-ins at one branch, then calls `calls` tickets from one counter alone, and
`calls` more from `counters` counters at once (they take turns on the branch's day): at least `waiting` tickets
wait throughout. Each call is followed by `served`, what a clerk does between two calls; only call-next is timed.
Given the queue process's id, the CPU it spent (utime + stime from /proc, which does not depend on how busy the
machine is) is reported per call-next and its served, and per check-in.
"""
import argparse
import asyncio
import os
import time

import aiohttp

from bench.common import Progress, cpr, emit, log, percentiles_ms


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of process `pid` so far (0 without one)."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(args) -> dict:
    base = f"{args.queue_url}/api/v1"
    branch = args.branch
    # the clerks' calls are signed in: a token of the branch's staff (the suite's development issuer signed it)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as session:
        progress, refused = Progress("checking in walk-ins", args.waiting + 2 * args.calls), []
        check_in_latencies = []

        async def check_in(n):
            started = time.perf_counter()
            for attempt in range(5):  # a 503 says to try again shortly (Retry-After), as a kiosk does
                async with session.post(f"{base}/branches/{branch}/check-ins", json={
                        "walk_in": True, "service": args.service, "cpr": cpr(600_000 + n)}) as response:
                    if response.status == 503 and attempt < 4:
                        await asyncio.sleep(float(response.headers.get("Retry-After") or 1))
                        continue
                    if response.status not in (200, 201):
                        refused.append(f"{response.status} {await response.text()}")
                    break
            check_in_latencies.append(time.perf_counter() - started)
            progress.step()

        arrivals = args.waiting + 2 * args.calls
        cpu_before = cpu_seconds(args.queue_pid)
        for start in range(0, arrivals, 20):  # a busy morning's door, 20 at a time
            await asyncio.gather(*(check_in(n) for n in range(start, min(start + 20, arrivals))))
        progress.close()
        check_in_cpu_ms = (cpu_seconds(args.queue_pid) - cpu_before) * 1000 / arrivals
        if refused:
            raise SystemExit(f"check-in refused: {refused[:3]}")

        async def calls(counters: int) -> dict:
            for counter in range(1, counters + 1):
                async with session.post(f"{base}/branches/{branch}/counters/{counter}/open",
                                        json={"services": [args.service]}) as response:
                    assert response.status == 200, await response.text()
            latencies, outcomes, remaining = [], {}, [args.calls]
            progress = Progress(f"call-next on {counters} counter(s)", args.calls)

            async def counter_loop(counter):
                while remaining[0] > 0:
                    remaining[0] -= 1
                    started = time.perf_counter()
                    async with session.post(f"{base}/branches/{branch}/counters/{counter}/call-next") as response:
                        called = await response.json() if response.status == 200 else None
                        latencies.append(time.perf_counter() - started)
                        outcomes[str(response.status)] = outcomes.get(str(response.status), 0) + 1
                    if called:
                        async with session.post(f"{base}/tickets/{called['ticket']['id']}/served") as response:
                            await response.read()
                    progress.step()

            started, cpu_before = time.perf_counter(), cpu_seconds(args.queue_pid)
            await asyncio.gather(*(counter_loop(c) for c in range(1, counters + 1)))
            seconds, cpu = time.perf_counter() - started, cpu_seconds(args.queue_pid) - cpu_before
            progress.close()
            return {"counters": counters, "calls": len(latencies), "calls_per_s": round(len(latencies) / seconds, 1),
                    "outcomes": outcomes, **percentiles_ms(latencies),
                    **({"queue_cpu_ms_per_call_and_served": round(cpu * 1000 / len(latencies), 2)}
                       if args.queue_pid else {}),
                    "load_average": os.getloadavg()[0]}

        one_counter, many_counters = await calls(1), await calls(args.counters)
        async with session.get(f"{base}/branches/{branch}/queue") as response:
            room = await response.json()
    waiting_after = sum(s["count"] for s in room["waiting"] if s["service"] == args.service)
    log(f"{waiting_after} still waiting")
    return {"branch": branch, "service": args.service, "waiting_at_start": arrivals, "waiting_at_end": waiting_after,
            "call_next_one_counter": one_counter, "call_next_many_counters": many_counters,
            "check_in": {**percentiles_ms(check_in_latencies),
                         **({"queue_cpu_ms": round(check_in_cpu_ms, 2)} if args.queue_pid else {})}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--branch", default="npra-isa-town")
    parser.add_argument("--service", default="passport-renewal")
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--counters", type=int, default=4)
    parser.add_argument("--queue-pid", type=int, default=None,
                        help="the queue process, to report the CPU it spends per call (from /proc)")
    parser.add_argument("--token", default=os.environ.get("MAWAEED_BENCH_TOKEN"),
                        help="a bearer token of the branch's staff (env MAWAEED_BENCH_TOKEN)")
    emit(asyncio.run(main(parser.parse_args())))
